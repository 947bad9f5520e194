"""What Envoy should have (one immutable xDS snapshot) and what it has acknowledged.

The cache knows nothing about gRPC: the ADS server (xds_server.py) reads snapshots from it and
reports ACKs and NACKs back. Publishing a snapshot and waiting for Envoy's ACK is how the control
plane orders a reload (see reloader.py).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

log = structlog.get_logger("switchyard.xds")

CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ROUTE_TYPE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"


@dataclass(frozen=True)
class XdsSnapshot:
    version: str
    resources: Mapping[str, Sequence[Any]]  # type URL -> betterproto2 messages


@dataclass
class _StreamState:
    acked: dict[str, str] = field(default_factory=dict)  # type URL -> version


class EnvoyRejected(Exception):
    """Envoy NACKed a snapshot; the message is Envoy's error detail."""


class XdsCache:
    def __init__(self) -> None:
        self._versions = itertools.count(1)
        self.snapshot = XdsSnapshot("0", {})
        self._changed = asyncio.Condition()
        self._streams: dict[int, _StreamState] = {}
        self._subscriptions: dict[int, set[str]] = {}
        self.rejections: dict[str, str] = {}  # version -> Envoy's error detail

    async def publish(self, resources: Mapping[str, Sequence[Any]]) -> str:
        version = str(next(self._versions))
        self.snapshot = XdsSnapshot(version, resources)
        async with self._changed:
            self._changed.notify_all()
        return version

    async def wait_changed(self, seen_version: str) -> XdsSnapshot:
        async with self._changed:
            await self._changed.wait_for(lambda: self.snapshot.version != seen_version)
        return self.snapshot

    # ---- reported by the ADS server --------------------------------------------------------

    def stream_opened(self, stream_id: int) -> None:
        self._streams[stream_id] = _StreamState()
        self._subscriptions[stream_id] = set()

    async def stream_closed(self, stream_id: int) -> None:
        self._streams.pop(stream_id, None)
        self._subscriptions.pop(stream_id, None)
        await self._notify()

    def subscribed(self, stream_id: int, type_url: str) -> None:
        self._subscriptions[stream_id].add(type_url)

    async def ack(self, stream_id: int, type_url: str, version: str) -> None:
        self._streams[stream_id].acked[type_url] = version
        await self._notify()

    async def nack(self, type_url: str, version: str, detail: str) -> None:
        log.error("xds_nack", type_url=type_url, version=version, detail=detail)
        self.rejections[version] = detail
        await self._notify()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _fully_acked(self, version: str) -> bool:
        """Every connected Envoy acknowledged `version` for every type it subscribed to."""
        if not self._streams:
            return False
        return all(
            state.acked.get(type_url) == version
            for stream_id, state in self._streams.items()
            for type_url in self._subscriptions.get(stream_id, ())
        ) and all(self._subscriptions.values())

    async def wait_acked(self, version: str, timeout_s: float) -> bool:
        """True once Envoy ACKed `version`; raise EnvoyRejected on a NACK; False on timeout
        (e.g. no Envoy connected: it will get the newest snapshot when it connects)."""
        def settled() -> bool:
            return version in self.rejections or self._fully_acked(version)

        try:
            async with asyncio.timeout(timeout_s):
                async with self._changed:
                    await self._changed.wait_for(settled)
        except TimeoutError:
            return False
        if version in self.rejections:
            raise EnvoyRejected(self.rejections[version])
        return True
