"""Child processes of `switchyard up` (Envoy, optionally vLLM): started so none outlives us.

Each child gets its own process group (so vLLM's engine workers are stopped with it) and, on
Linux, a parent-death signal, so even a SIGKILLed `switchyard up` leaves no orphan behind.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
from collections.abc import Mapping, Sequence

import structlog

log = structlog.get_logger("switchyard.children")
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = {**os.environ, **(env or {})}
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            env=self.env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        log.info("child_started", child=self.name, pid=self.process.pid)

    async def wait(self) -> int:
        assert self.process is not None
        return await self.process.wait()

    async def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the child's whole process group; SIGKILL what is left after `grace_s`."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        self._signal_group(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace_s)
        except TimeoutError:
            log.warning("child_kill", child=self.name, pid=process.pid)
        self._signal_group(signal.SIGKILL)  # stragglers in the group (e.g. vLLM workers)
        await process.wait()
        log.info("child_stopped", child=self.name, returncode=process.returncode)

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self.process is not None
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
