"""Reloading the policies folder: validate all of it, then publish it in an order that keeps
Envoy and the processor consistent.

1. Envoy gets the union of old and new provider clusters and routes; wait for its ACK.
2. Every processor worker switches to the new snapshot, then the control plane's own (new
   requests use it; requests in flight keep theirs).
3. After a drain period, clusters no policy uses any more are removed from Envoy.

So the processor never names a cluster Envoy does not have. An invalid edit changes nothing: the
last good snapshot keeps serving and the error is logged, counted and shown on /policies.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import structlog

from control_plane.observability.metrics import Metrics
from control_plane.policy.loader import PolicyError, load_policy_set
from control_plane.policy.model import PolicySet, providers_of
from control_plane.routing.router_pool import RouterPool
from control_plane.policy.snapshot import SnapshotStore
from control_plane.xds.cache import EnvoyRejected, XdsCache
from control_plane.xds.envoy_config import xds_resources

log = structlog.get_logger("switchyard.reload")


class Workers(Protocol):
    """The processor workers (control_plane/workers/pool.py)."""

    async def apply(self, generation: int, policy_set: PolicySet, timeout_s: float = ...) -> bool: ...


@dataclass(frozen=True)
class ReloadStatus:
    ok: bool
    errors: tuple[str, ...] = ()
    at: float = 0.0


class Reloader:
    def __init__(
        self, directory: Path, snapshots: SnapshotStore, xds: XdsCache, routers: RouterPool,
        drain_s: float = 30.0, ack_timeout_s: float = 5.0, metrics: Metrics | None = None,
        workers: Workers | None = None,
    ) -> None:
        self.workers = workers
        self.directory = directory
        self.metrics = metrics or Metrics()
        self.snapshots = snapshots
        self.routers = routers
        self.xds = xds
        self.drain_s = drain_s
        self.ack_timeout_s = ack_timeout_s
        self.status = ReloadStatus(ok=True, at=time.time())
        self._lock = asyncio.Lock()
        self._drain: asyncio.Task[None] | None = None
        self.metrics.policy_generation.set(snapshots.generation)

    async def publish_initial(self) -> None:
        """Envoy is not connected yet: it gets this snapshot when it connects."""
        await self.xds.publish(xds_resources(self.snapshots.current.policy_set.providers()))

    async def reload(self) -> bool:
        async with self._lock:
            try:
                new = load_policy_set(self.directory)
            except PolicyError as exc:
                return self._failed([str(p) for p in exc.problems])
            old = self.snapshots.current.policy_set
            if new.versions() == old.versions():
                return True  # an event without a change (a touch, a re-save): nothing to do
            try:  # routers first: a policy whose router cannot be built changes nothing
                snapshot = await self.routers.snapshot(new)
            except Exception as exc:
                log.exception("router_build_failed")
                return self._failed([f"cannot build the routers: {exc}"])
            version = await self.xds.publish(xds_resources(providers_of(old, new)))
            try:
                acked = await self.xds.wait_acked(version, self.ack_timeout_s)
            except EnvoyRejected as exc:
                await self.xds.publish(xds_resources(old.providers()))  # back to what Envoy has
                return self._failed([f"Envoy rejected the configuration: {exc}"])
            if not acked:
                log.warning("xds_ack_timeout", version=version)
            if self.workers is not None:  # only now: Envoy has every cluster the new snapshot names
                await self.workers.apply(self.snapshots.generation + 1, new)
            self.snapshots.swap(snapshot)
            self.status = ReloadStatus(ok=True, at=time.time())
            self.metrics.policy_reloads.labels("ok").inc()
            self.metrics.policy_generation.set(self.snapshots.generation)
            log.info("policies_reloaded", generation=self.snapshots.generation, versions=new.versions())
            if {p.cluster for p in old.providers()} - {p.cluster for p in new.providers()}:
                self._schedule_drain()
            return True

    def _failed(self, errors: list[str]) -> bool:
        self.status = ReloadStatus(ok=False, errors=tuple(errors), at=time.time())
        self.metrics.policy_reloads.labels("error").inc()
        log.error("policy_reload_failed", errors=errors)
        return False

    def _schedule_drain(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
        self._drain = asyncio.ensure_future(self._remove_unused_clusters())

    async def _remove_unused_clusters(self) -> None:
        await asyncio.sleep(self.drain_s)  # requests in flight on the old snapshot finish first
        async with self._lock:
            await self.xds.publish(xds_resources(self.snapshots.current.policy_set.providers()))
            log.info("clusters_drained")

    async def close(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
