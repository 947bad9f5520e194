"""grpclib's server, with each connection's writes coalesced per event-loop turn.

grpclib writes every HTTP/2 frame it produces at once: an ext_proc answer is response headers,
a message and trailers, each its own send(2). Profiled under load, a worker spent a quarter of
its time in those writes. Frames produced in the same turn of the event loop now leave in one
write, flushed at the end of the turn: the same bytes, in the same order, no later.
"""

from __future__ import annotations

import asyncio
from typing import Any

from grpclib.protocol import H2Protocol
from grpclib.server import Server


class _CoalescingTransport:
    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pending: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        if self._pending and not self._transport.is_closing():
            self._transport.write(b"".join(self._pending))
        self._pending.clear()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # get_extra_info, is_closing, abort, ...
        return getattr(self._transport, name)


class _CoalescingProtocol(H2Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(_CoalescingTransport(transport))  # type: ignore[arg-type]


class CoalescingServer(Server):
    def _protocol_factory(self) -> H2Protocol:
        base = super()._protocol_factory()
        protocol = _CoalescingProtocol(base.handler, base.config, base.h2_config)
        return protocol
