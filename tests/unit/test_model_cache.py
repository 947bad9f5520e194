"""Models built on first use are put in place whole, and two builders at once do not collide."""

from __future__ import annotations

from pathlib import Path

from router_model.model_cache import build_dir, publish


def built(target: Path, content: str) -> Path:
    partial = build_dir(target)
    (partial / "model.onnx").write_text(content)
    return partial


def test_a_build_is_moved_into_place_whole(tmp_path: Path) -> None:
    target = tmp_path / "encoder"
    partial = built(target, "first")
    assert partial != target and not target.exists()
    assert publish(partial, target, "model.onnx") == target
    assert (target / "model.onnx").read_text() == "first" and not partial.exists()


def test_a_second_builder_keeps_the_first_ones_model(tmp_path: Path) -> None:
    target = tmp_path / "encoder"
    first, second = built(target, "first"), tmp_path / "encoder.partial-other"
    second.mkdir()
    (second / "model.onnx").write_text("second")
    publish(first, target, "model.onnx")
    publish(second, target, "model.onnx")  # another process, finishing later
    assert (target / "model.onnx").read_text() == "first" and not second.exists()


def test_an_unfinished_target_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "encoder"
    target.mkdir()
    (target / "leftover.txt").write_text("no model here")
    publish(built(target, "new"), target, "model.onnx")
    assert sorted(p.name for p in target.iterdir()) == ["model.onnx"]
