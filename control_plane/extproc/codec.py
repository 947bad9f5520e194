"""A grpclib codec that lets a handler exchange raw protobuf bytes (declared as `bytes`), while
handlers declared with generated message classes keep the usual protobuf encoding."""

from __future__ import annotations

from typing import Any

from grpclib.encoding.proto import ProtoCodec


class RawOrProtoCodec(ProtoCodec):
    def encode(self, message: Any, message_type: Any) -> bytes:
        if message_type is bytes:
            return bytes(message)
        return super().encode(message, message_type)

    def decode(self, data: bytes, message_type: Any) -> Any:
        if message_type is bytes:
            return data
        return super().decode(data, message_type)
