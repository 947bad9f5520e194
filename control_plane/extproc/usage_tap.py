"""The usage tap: a second ext_proc service, which Envoy runs in observability mode on the direct
path's answers ("send and go": Envoy never waits for it, so it adds nothing to a response's time,
and a tap that is down or slow never touches an answer). It reads each answer's token usage, in
the API the answer speaks, and hands it to the spend accounting by request id.

Envoy sends it every body chunk of the answer to a request the processor forwarded straight to a
provider, with the processor's decision record (its dynamic metadata, which names the answer's
API and the request id). An error answer carries no usage, so its status need not be read. The guarded path reads its own answers' usage instead
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
        """One answer's body, chunk by chunk (each with the decision record): nothing is ever sent
        back (Envoy would ignore it). A stream is told from a whole JSON body by its first byte."""
        reader: UsageReader | None = None
        request_id = ""
        async for raw in stream:
            message = wire.decode_request(raw)
            if message.phase != "response_body":
                continue
            if reader is None:
                request_id = message.metadata.get("request_id", "")
                if not request_id:
                    return  # not a request the processor forwarded
                api = APIS.get(message.metadata.get("api", OPENAI), APIS[OPENAI])
                reader = api.usage_reader(not message.body.lstrip().startswith(b"{"))
                self.sink.begin(request_id)
            reader.feed(message.body)
            if message.end_of_stream:
                break
        if reader is not None:
            self.sink.add(request_id, reader.finish())

    def __mapping__(self) -> dict[str, Any]:
        return {PROCESS_METHOD: grpclib.const.Handler(
            self.handle, grpclib.const.Cardinality.STREAM_STREAM, bytes, bytes)}
