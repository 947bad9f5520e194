"""Reload semantics without Envoy connected: all-or-nothing, deletions, the default is kept."""

from __future__ import annotations

from pathlib import Path

from control_plane.policy.loader import load_policy_set
from control_plane.reloader import Reloader
from control_plane.routing.router_pool import FixedRouterPool
from control_plane.policy.snapshot import Snapshot, SnapshotStore
from control_plane.xds.cache import CLUSTER_TYPE, XdsCache
from tests.support.scripted_router import ScriptedRouter
from tests.unit.test_policy_loader import GOOD


def make(directory: Path) -> tuple[Reloader, SnapshotStore, XdsCache]:
    routers = FixedRouterPool(ScriptedRouter())
    policies = load_policy_set(directory)
    snapshots = SnapshotStore(Snapshot(policies, {name: ScriptedRouter() for name in policies.policies}))
    xds = XdsCache()
    return Reloader(directory, snapshots, xds, routers, drain_s=0, ack_timeout_s=0.05), snapshots, xds


async def test_deleting_a_policy_removes_it_and_deleting_default_is_refused(tmp_path: Path) -> None:
    (tmp_path / "default.yaml").write_text(GOOD)
    (tmp_path / "travel.yaml").write_text(GOOD.replace("timeout_ms: 400", "timeout_ms: 300"))
    reloader, snapshots, _ = make(tmp_path)
    (tmp_path / "travel.yaml").unlink()
    assert await reloader.reload()
    assert list(snapshots.current.policy_set.policies) == ["default"] and snapshots.generation == 2
    (tmp_path / "default.yaml").unlink()
    assert not await reloader.reload()
    assert "default" in snapshots.current.policy_set.policies  # the last good default keeps serving
    assert "no default.yaml" in reloader.status.errors[0]


async def test_invalid_edit_changes_nothing_and_unchanged_content_is_not_a_reload(tmp_path: Path) -> None:
    (tmp_path / "default.yaml").write_text(GOOD)
    reloader, snapshots, xds = make(tmp_path)
    await reloader.publish_initial()
    published = xds.snapshot.version
    assert await reloader.reload()  # same content: nothing published, nothing swapped
    assert (snapshots.generation, xds.snapshot.version) == (1, published)
    (tmp_path / "default.yaml").write_text(GOOD.replace("default_model: small", "default_model: tiny"))
    assert not await reloader.reload()
    assert reloader.status.errors[0].startswith(f"{tmp_path / 'default.yaml'}:19: ")
    assert (snapshots.generation, xds.snapshot.version) == (1, published)


async def test_new_provider_is_published_before_the_processor_switches(tmp_path: Path) -> None:
    (tmp_path / "default.yaml").write_text(GOOD)
    reloader, snapshots, xds = make(tmp_path)
    await reloader.publish_initial()
    edited = GOOD.replace("models:", "  extra:\n    base_url: http://127.0.0.1:9999/v1\nmodels:").replace(
        "{provider: openai}", "{provider: extra}")
    (tmp_path / "default.yaml").write_text(edited)
    assert await reloader.reload()
    clusters = {c.name for c in xds.snapshot.resources[CLUSTER_TYPE]}
    used = {m.provider.cluster for p in snapshots.current.policy_set.policies.values() for m in p.models.values()}
    assert used <= clusters  # every cluster the processor can pick, Envoy has been given
    assert any(name.startswith("openai-") for name in clusters)  # the old one stays until drained
