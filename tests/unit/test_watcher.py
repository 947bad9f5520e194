"""The policy watcher notices every way editors and tools save files, once per burst."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from control_plane.policy.loader import PolicyError, load_policy_set
from control_plane.policy.watcher import PolicyWatcher
from tests.unit.test_policy_loader import GOOD


class Recorder:
    """A reload callback that records what the folder held each time it was called."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.seen: list[str | None] = []
        self.event = asyncio.Event()

    async def __call__(self) -> bool:
        try:
            self.seen.append(load_policy_set(self.directory).default.router.model)
        except PolicyError:
            self.seen.append(None)
        self.event.set()
        return True

    async def wait_for(self, model: str, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while model not in self.seen:
                self.event.clear()
                await self.event.wait()


def text(model: str) -> str:
    return GOOD.replace("model: Arch-Router", f"model: {model}")


@pytest.fixture(params=["inotify", "poll"])
async def watched(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "default.yaml").write_text(text("v0"))
    recorder = Recorder(tmp_path)
    watcher = PolicyWatcher(tmp_path, recorder, polling=request.param == "poll")
    watcher.start()
    await asyncio.sleep(0.3)  # the polling observer takes its first directory snapshot
    yield tmp_path, recorder
    await watcher.stop()


async def test_in_place_write(watched) -> None:  # type: ignore[no-untyped-def]
    directory, recorder = watched
    with (directory / "default.yaml").open("r+") as f:
        f.truncate(0)
        f.write(text("v1"))
    await recorder.wait_for("v1")


async def test_write_temp_then_rename(watched) -> None:  # type: ignore[no-untyped-def]
    directory, recorder = watched
    (directory / ".default.yaml.swp").write_text(text("v2"))
    os.replace(directory / ".default.yaml.swp", directory / "default.yaml")
    await recorder.wait_for("v2")


async def test_delete_then_create(watched) -> None:  # type: ignore[no-untyped-def]
    directory, recorder = watched
    (directory / "default.yaml").unlink()
    (directory / "default.yaml").write_text(text("v3"))
    await recorder.wait_for("v3")


async def test_several_files_at_once_reload_once(watched) -> None:  # type: ignore[no-untyped-def]
    directory, recorder = watched
    before = len(recorder.seen)
    for name in ("a", "b", "c"):
        (directory / f"{name}.yaml").write_text(text("x"))
    (directory / "default.yaml").write_text(text("v4"))
    await recorder.wait_for("v4")
    await asyncio.sleep(0.5)
    assert len(recorder.seen) - before <= 2  # one burst, not one reload per event


async def test_configmap_symlink_swap(tmp_path: Path) -> None:
    """Kubernetes ConfigMap volumes: files are links through `..data`, swapped atomically."""
    first = tmp_path / "..2026_11_28_01"
    first.mkdir()
    (first / "default.yaml").write_text(text("k1"))
    (tmp_path / "..data").symlink_to(first.name)
    (tmp_path / "default.yaml").symlink_to("..data/default.yaml")
    recorder = Recorder(tmp_path)
    watcher = PolicyWatcher(tmp_path, recorder)
    watcher.start()
    try:
        second = tmp_path / "..2026_11_28_02"
        second.mkdir()
        (second / "default.yaml").write_text(text("k2"))
        (tmp_path / "..data_tmp").symlink_to(second.name)
        os.replace(tmp_path / "..data_tmp", tmp_path / "..data")
        await recorder.wait_for("k2")
    finally:
        await watcher.stop()
