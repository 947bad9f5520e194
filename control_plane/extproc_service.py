"""The ext_proc gRPC service: one flat loop per Envoy stream (= per HTTP request)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import betterproto2
import structlog
from envoy_data_plane.envoy.service.ext_proc.v3 import (
    ExternalProcessorBase,
    ProcessingRequest,
    ProcessingResponse,
)

from control_plane import extproc_messages as messages
from control_plane.processor import RequestProcessor
from control_plane.router_pool import RouterPool
from control_plane.snapshot import SnapshotStore

log = structlog.get_logger("switchyard.extproc")


class ExtProcService(ExternalProcessorBase):
    def __init__(self, snapshots: SnapshotStore, routers: RouterPool) -> None:
        self.snapshots = snapshots
        self.routers = routers

    async def process(
        self, messages_in: AsyncIterator[ProcessingRequest]
    ) -> AsyncIterator[ProcessingResponse]:
        processor: RequestProcessor | None = None
        async for request in messages_in:
            phase, payload = betterproto2.which_one_of(request, "request")
            if phase == "request_headers":
                # The snapshot is taken once per request and kept to its end.
                processor = RequestProcessor(self.snapshots.current, self.routers)
                action = processor.on_request_headers(
                    messages.header_dict(payload.headers), payload.end_of_stream
                )
                yield messages.request_headers_response(action)
            elif phase == "request_body" and processor is not None and processor.policy:
                yield messages.request_body_response(await processor.on_request_body(payload.body))
            else:
                yield messages.pass_through(phase)
