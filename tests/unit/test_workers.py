"""Workers: a reload reaches them only after Envoy's ACK, before the control plane's own swap; the
state they share (turn decisions, rate limits) lives once, in the control plane."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from control_plane.cli import parser
from control_plane.observability.metrics import Metrics
from control_plane.policy.apps import App
from control_plane.policy.loader import load_policy_set, parse_policy
from control_plane.policy.model import PolicySet
from control_plane.reloader import Reloader
from control_plane.routing.router_pool import FixedRouterPool
from control_plane.policy.snapshot import Snapshot, SnapshotStore
from control_plane.routing.cache import CachedDecision
from control_plane.workers.pool import available_cpus, default_count
from control_plane.workers.shared_state import RemoteShared, SharedStateClient, SharedStateServer
from control_plane.xds.cache import XdsCache
from tests.support.scripted_router import ScriptedRouter
from tests.unit.test_policy_loader import GOOD


class RecordingXds(XdsCache):
    def __init__(self, events: list[str]) -> None:
        super().__init__()
        self.events = events

    async def publish(self, resources):  # type: ignore[no-untyped-def]
        self.events.append("envoy: published")
        return await super().publish(resources)

    async def wait_acked(self, version: str, timeout_s: float) -> bool:
        self.events.append("envoy: acked")
        return True


class RecordingWorkers:
    def __init__(self, events: list[str], snapshots: SnapshotStore) -> None:
        self.events = events
        self.snapshots = snapshots
        self.applied: list[tuple[int, PolicySet]] = []

    async def apply(self, generation: int, policy_set: PolicySet, timeout_s: float = 30.0) -> bool:
        # The control plane's own snapshot is still the old one: workers switch first.
        self.events.append(f"workers: generation {generation} (control plane at {self.snapshots.generation})")
        self.applied.append((generation, policy_set))
        return True


async def test_workers_switch_after_envoys_ack_and_before_the_control_plane(tmp_path: Path) -> None:
    (tmp_path / "default.yaml").write_text(GOOD)
    policies = load_policy_set(tmp_path)
    snapshots = SnapshotStore(Snapshot(policies, {n: ScriptedRouter() for n in policies.policies}))
    events: list[str] = []
    workers = RecordingWorkers(events, snapshots)
    reloader = Reloader(tmp_path, snapshots, RecordingXds(events), FixedRouterPool(ScriptedRouter()),
                        drain_s=0, workers=workers)
    (tmp_path / "default.yaml").write_text(GOOD.replace("timeout_ms: 400", "timeout_ms: 300"))
    assert await reloader.reload()
    assert events == ["envoy: published", "envoy: acked", "workers: generation 2 (control plane at 1)"]
    assert snapshots.generation == 2 and workers.applied[0][1] is snapshots.current.policy_set


POLICY = parse_policy(GOOD, "default.yaml", "default")


async def test_one_router_decision_per_turn_across_workers(tmp_path: Path) -> None:
    server = SharedStateServer(tmp_path / "shared.sock", Metrics())
    await server.start()
    one, two = SharedStateClient(server.path), SharedStateClient(server.path)
    await one.connect()
    await two.connect()
    try:
        asked: list[str] = []
        gate = asyncio.Event()

        async def decide() -> CachedDecision:
            asked.append("router")
            await gate.wait()
            return CachedDecision("code", "gpt-4o", "turn-1")

        turns_one = RemoteShared(one, Metrics()).decisions_for(POLICY)
        turns_two = RemoteShared(two, Metrics()).decisions_for(POLICY)
        first = asyncio.ensure_future(turns_one.once("turn-1", decide))
        await asyncio.sleep(0.05)
        twin = asyncio.ensure_future(turns_two.once("turn-1", decide))  # another worker, same turn
        await asyncio.sleep(0.05)
        gate.set()
        assert await first == (CachedDecision("code", "gpt-4o", "turn-1"), False)
        assert await twin == (CachedDecision("code", "gpt-4o", "turn-1"), True)
        assert asked == ["router"]  # single-flight across workers
        assert await turns_two.once("turn-1", decide) == (CachedDecision("code", "gpt-4o", "turn-1"), True)
        assert asked == ["router"]
    finally:
        await one.close()
        await two.close()
        await server.close()


async def test_a_worker_dying_mid_decision_lets_the_others_decide(tmp_path: Path) -> None:
    server = SharedStateServer(tmp_path / "shared.sock", Metrics())
    await server.start()
    dying, other = SharedStateClient(server.path), SharedStateClient(server.path)
    await dying.connect()
    await other.connect()
    try:
        claim = {"op": "claim", "policy": "default", "version": "v1", "max_entries": 10, "ttl_s": 60, "key": "k"}
        assert (await dying.call(claim))["decide"] is True  # it will never settle
        waiting = asyncio.ensure_future(other.call(claim))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await dying.close()
        reply = await asyncio.wait_for(waiting, 5)
        assert reply["decide"] is True and reply.get("kept") is None
    finally:
        await other.close()
        await server.close()


async def test_an_apps_rate_limit_is_shared_by_every_worker(tmp_path: Path) -> None:
    server = SharedStateServer(tmp_path / "shared.sock", Metrics())
    await server.start()
    clients = [SharedStateClient(server.path) for _ in range(2)]
    for client in clients:
        await client.connect()
    try:
        app = App("batch", requests_per_minute=2)
        shared = [RemoteShared(client, Metrics()) for client in clients]
        assert await shared[0].retry_after_s(app) is None
        assert await shared[1].retry_after_s(app) is None
        wait = await shared[0].retry_after_s(app)  # the third request of the minute, on any worker
        assert wait is not None and 1 <= wait <= 30
        assert await shared[1].retry_after_s(App("unlimited")) is None
    finally:
        for client in clients:
            await client.close()
        await server.close()


def test_default_worker_count_follows_the_cores_a_container_may_use(tmp_path: Path) -> None:
    assert [default_count(n) for n in (None, 1, 2, 16)] == [1, 1, 2, 8]
    limit = tmp_path / "cpu.max"
    limit.write_text("150000 100000\n")  # a pod limited to 1.5 CPUs
    assert available_cpus(limit) == min(2, available_cpus(tmp_path / "missing"))
    limit.write_text("max 100000\n")
    assert available_cpus(limit) == available_cpus(tmp_path / "missing") >= 1


def test_workers_flag_needs_at_least_one() -> None:
    assert parser().parse_args(["up", "--workers", "3"]).workers == 3
    with pytest.raises(SystemExit):
        parser().parse_args(["up", "--workers", "0"])
