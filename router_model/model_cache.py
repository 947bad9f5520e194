"""Where models built on first use are kept (the ONNX exports, the int8 encoder, the stand-in),
and how a build is put in place: in a folder of its own, moved into place in one rename, so a
half-written folder is never mistaken for a model and two processes building at once (two
workers on a fresh cache) do not write into one folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def cache_root() -> Path:
    """$SWITCHYARD_CACHE, else ~/.cache/switchyard."""
    return Path(os.environ.get("SWITCHYARD_CACHE") or os.path.expanduser("~/.cache/switchyard"))


def build_dir(target: Path) -> Path:
    """An empty folder beside `target` for this process to build it in."""
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    return partial


def publish(partial: Path, target: Path, marker: str) -> Path:
    """Move the finished build `partial` to `target` (complete when it holds `marker`). A target
    without its marker (an older, unfinished layout) is replaced; one another process published
    meanwhile is kept, and this build dropped."""
    if target.exists() and not (target / marker).exists():
        shutil.rmtree(target)
    try:
        partial.rename(target)
    except OSError:
        if not (target / marker).exists():
            raise
        shutil.rmtree(partial, ignore_errors=True)
    return target
