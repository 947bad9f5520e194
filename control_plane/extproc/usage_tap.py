"""The usage tap: a second ext_proc service, which Envoy runs in observability mode on the direct
path's answers ("send and go": Envoy never waits for it, so it adds nothing to a response's time,
and a tap that is down or slow never touches an answer). It reads each answer's token usage, in
the API the answer speaks, and hands it to the spend accounting by request id.

Envoy sends it the response headers and every body chunk of a request the processor forwarded
straight to a provider, with the processor's decision record (its dynamic metadata, which names
the answer's API and the request id). The guarded path reads its own answers' usage instead
(envoy/bootstrap.yaml turns the tap off on that route).
"""

from __future__ import annotations

from typing import Any

import grpclib.const
import structlog
from grpclib.server import Stream

from control_plane.apis.table import APIS, OPENAI
from control_plane.apis.usage import UsageReader, UsageSink
from control_plane.extproc import wire

log = structlog.get_logger("switchyard.usage_tap")
PROCESS_METHOD = "/envoy.service.ext_proc.v3.ExternalProcessor/Process"


class UsageTap:
    def __init__(self, sink: UsageSink) -> None:
        self.sink = sink

    async def handle(self, stream: Stream[bytes, bytes]) -> None:
        """One answer: nothing is ever sent back (Envoy would ignore it)."""
        reader: UsageReader | None = None
        request_id = ""
        async for raw in stream:
            message = wire.decode_request(raw)
            if message.phase == "response_headers":
                status = message.headers.get(":status", "")
                request_id = message.metadata.get("request_id", "")
                if not status.startswith("2") or not request_id:
                    return  # an error answer costs nothing; an unrouted one is no one's
                api = APIS.get(message.metadata.get("api", OPENAI), APIS[OPENAI])
                self.sink.begin(request_id)
                reader = api.usage_reader("text/event-stream" in message.headers.get("content-type", ""))
                if message.end_of_stream:
                    break
            elif message.phase == "response_body" and reader is not None:
                reader.feed(message.body)
                if message.end_of_stream:
                    break
        if reader is not None:
            self.sink.add(request_id, reader.finish())

    def __mapping__(self) -> dict[str, Any]:
        return {PROCESS_METHOD: grpclib.const.Handler(
            self.handle, grpclib.const.Cardinality.STREAM_STREAM, bytes, bytes)}
