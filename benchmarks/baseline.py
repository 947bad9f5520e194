"""`switchyard up` run from another source tree, so that a benchmark measures before and after a
change in one run, under the same machine noise: export the earlier commit with

    git archive --prefix=before/ <commit> | tar -x -C /tmp

and pass `--baseline /tmp/before`. That tree's code runs on this tree's interpreter and
packages (the change under test must not need new ones)."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.processes import Process, free_port
from harness.stack import PROVIDER_KEYS, Sidecar


def start_sidecar_from(tree: Path, name: str, policies: Path, logs: Path, *extra: str) -> Sidecar:
    """harness.stack.start_sidecar, with `tree`'s packages: `python -m` puts the working folder
    first on sys.path (before this checkout's editable install), and the workers it spawns
    inherit that path."""
    listen, admin, processor, envoy_admin, failover, control = (free_port() for _ in range(6))
    argv = ["/bin/sh", "-c", 'cd "$0" && exec "$@"', str(tree),
            sys.executable, "-m", "control_plane.cli", "up", "--policies", str(policies),
            "--listen", f"127.0.0.1:{listen}", "--admin", f"127.0.0.1:{admin}",
            "--processor", f"127.0.0.1:{processor}", "--envoy-admin", f"127.0.0.1:{envoy_admin}",
            "--failover", f"127.0.0.1:{failover}", "--control", f"127.0.0.1:{control}", *extra]
    env = {**PROVIDER_KEYS, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    process = Process(name, argv, logs, env=env)
    sidecar = Sidecar(process, f"http://127.0.0.1:{listen}/v1", f"http://127.0.0.1:{admin}",
                      f"http://127.0.0.1:{envoy_admin}")
    process.wait_http(f"{sidecar.admin_url}/readyz", 120)
    return sidecar
