"""Log lines from processes sharing one stderr stay whole (the sidecar's workers do)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WRITER = """
import sys
import structlog
from control_plane.observability import logging_setup
logging_setup.configure()
log = structlog.get_logger()
for i in range(1500):
    log.info("decision", worker=sys.argv[1], i=i, pad="x" * 200)
"""


def test_two_unbuffered_writers_never_run_lines_together(tmp_path: Path) -> None:
    # Unbuffered stderr is where a message and its newline can go out as two writes.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    with open(tmp_path / "shared.log", "wb") as shared:
        writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(w)], stderr=shared, env=env)
                   for w in (0, 1)]
        assert [w.wait(timeout=60) for w in writers] == [0, 0]
    lines = (tmp_path / "shared.log").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # raises on two records run together
    assert len(records) == 3000
    assert {r["worker"] for r in records} == {"0", "1"}
