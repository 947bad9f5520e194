"""The ext_proc gRPC service: one flat loop per Envoy stream (= per HTTP request).

It is envoy-data-plane's ExternalProcessorBase (same service and method name), but its handler
exchanges raw bytes through extproc/wire.py: see that module for why.
"""

from __future__ import annotations

from typing import Any

import grpclib.const
import structlog
from envoy_data_plane.envoy.service.ext_proc.v3 import ExternalProcessorBase
from grpclib.server import Stream

from control_plane.extproc import wire
from control_plane.extproc.processor import Forward, RequestProcessor, Shared, SharedState
from control_plane.policy.snapshot import SnapshotStore

log = structlog.get_logger("switchyard.extproc")
PROCESS_METHOD = "/envoy.service.ext_proc.v3.ExternalProcessor/Process"


def _trace_metadata(stream: Stream[bytes, bytes]) -> dict[str, str]:
    """Envoy's tracer puts its span's context on the ext_proc call itself (gRPC metadata): the
    decision span then sits inside Envoy's trace."""
    metadata = stream.metadata
    if not metadata:
        return {}
    return {k: v for k, v in metadata.items() if k in ("traceparent", "tracestate") and isinstance(v, str)}


class ExtProcService(ExternalProcessorBase):
    def __init__(self, snapshots: SnapshotStore, shared: SharedState | None = None) -> None:
        self.snapshots = snapshots
        self.shared = shared or Shared()  # rate limits and decision caches, across requests

    async def handle(self, stream: Stream[bytes, bytes]) -> None:
        processor: RequestProcessor | None = None
        async for raw in stream:
            request = wire.decode_request(raw)
            if request.phase == "request_headers":
                # The snapshot is taken once per request and kept to its end.
                processor = RequestProcessor(self.snapshots.current, self.shared,
                                             _trace_metadata(stream))
                action = await processor.on_request_headers(request.headers, request.end_of_stream)
                await stream.send_message(wire.encode_response(request.phase, action))
                if not (isinstance(action, Forward) and action.want_body):
                    return
            elif request.phase == "request_body" and processor and processor.policy:
                action = await processor.on_request_body(request.body)
                await stream.send_message(wire.encode_response(request.phase, action))
                return
            else:
                await stream.send_message(wire.pass_through(request.phase))
        # Returning closes the stream cleanly, and Envoy stops consulting the processor for this
        # request: a response (an LLM stream may last minutes) holds no gRPC stream open, and a
        # processor restart cannot cut it.

    def __mapping__(self) -> dict[str, Any]:
        return {
            PROCESS_METHOD: grpclib.const.Handler(
                self.handle, grpclib.const.Cardinality.STREAM_STREAM, bytes, bytes
            )
        }
