"""The control plane's processor workers: started, fed snapshots, watched and restarted.

A reload reaches the workers only after Envoy ACKed the clusters the new snapshot names
(control_plane/reloader.py calls `apply` then), and `apply` returns once every live worker
switched: so no worker routes to a cluster Envoy does not have. A worker that dies is restarted
with the current snapshot; meanwhile the kernel sends new ext_proc connections to the others.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any

import structlog

from control_plane.observability import metrics
from control_plane.policy.model import PolicySet
from control_plane.workers.worker import Applied, Apply, WorkerConfig, main
from router_model.encoder import intra_op_threads

log = structlog.get_logger("switchyard.workers")
START_TIMEOUT_S = 120.0  # a fresh interpreter imports everything and builds the routers
RESTART_PAUSE_S = 1.0  # a worker that dies at once is not restarted in a tight loop


@dataclass
class _Worker:
    config: WorkerConfig
    process: SpawnProcess
    pipe: Connection
    generation: int = 0  # the snapshot it serves (0: none yet)
    restarts: int = 0
    started_at: float = field(default_factory=time.monotonic)
    sending: asyncio.Lock = field(default_factory=asyncio.Lock)  # one message at a time on the pipe


class WorkerPool:
    def __init__(self, count: int, host: str, port: int, shared_state: Path, log_level: str = "info") -> None:
        threads = intra_op_threads(available_cpus(), count)
        self.configs = [WorkerConfig(i, host, port, shared_state, log_level, threads) for i in range(count)]
        self._context = multiprocessing.get_context("spawn")
        self._workers: dict[int, _Worker] = {}
        self._current: Apply | None = None
        self._changed = asyncio.Condition()
        self._stopping = False

    # ---- lifecycle ------------------------------------------------------------------------------

    async def start(self, generation: int, policy_set: PolicySet) -> None:
        """Start every worker on this snapshot; return when all serve it."""
        self._current = Apply(generation, policy_set)
        for config in self.configs:
            self._spawn(config)
        await self._wait_all(generation, START_TIMEOUT_S)

    def _spawn(self, config: WorkerConfig, restarts: int = 0) -> None:
        assert self._current is not None
        ours, theirs = self._context.Pipe()
        process = self._context.Process(target=main, args=(config, theirs), name=f"switchyard-worker-{config.index}",
                                        daemon=True)
        process.start()
        theirs.close()
        worker = _Worker(config, process, ours, restarts=restarts)
        self._workers[config.index] = worker
        asyncio.ensure_future(self._send(worker, self._current))
        loop = asyncio.get_running_loop()
        loop.add_reader(ours.fileno(), self._on_message, worker)
        loop.add_reader(process.sentinel, self._on_exit, worker)

    def _on_message(self, worker: _Worker) -> None:
        try:
            message: Applied = worker.pipe.recv()
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(worker.pipe.fileno())
            return
        if message.error is not None:
            log.error("worker_apply_failed", worker=worker.config.index, generation=message.generation,
                      error=message.error)
        else:
            worker.generation = message.generation
        asyncio.ensure_future(self._notify())

    def _on_exit(self, worker: _Worker) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(worker.process.sentinel)
        loop.remove_reader(worker.pipe.fileno())
        worker.pipe.close()
        worker.process.join(0)
        if worker.process.pid is not None:
            metrics.worker_died(worker.process.pid)
        if self._stopping or self._workers.get(worker.config.index) is not worker:
            return
        log.error("worker_died", worker=worker.config.index, pid=worker.process.pid,
                  exitcode=worker.process.exitcode)
        alive_for = time.monotonic() - worker.started_at
        delay = 0.0 if alive_for > RESTART_PAUSE_S else RESTART_PAUSE_S
        loop.call_later(delay, self._restart, worker)

    def _restart(self, worker: _Worker) -> None:
        if self._stopping:
            return
        self._spawn(worker.config, worker.restarts + 1)
        log.info("worker_restarted", worker=worker.config.index, pid=self._workers[worker.config.index].process.pid)

    @staticmethod
    async def _send(worker: _Worker, message: Apply | None) -> None:
        """Off the event loop: a large policy set fills the pipe until the worker reads it."""
        async with worker.sending:
            try:
                await asyncio.to_thread(worker.pipe.send, message)
            except OSError:
                pass  # it is dying: it will be restarted on the current snapshot

    async def stop(self) -> None:
        self._stopping = True
        loop = asyncio.get_running_loop()
        for worker in self._workers.values():
            loop.remove_reader(worker.process.sentinel)
            loop.remove_reader(worker.pipe.fileno())
            await self._send(worker, None)
        deadline = time.monotonic() + 5
        for worker in self._workers.values():
            await asyncio.to_thread(worker.process.join, max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.terminate()
            if worker.process.pid is not None:
                metrics.worker_died(worker.process.pid)

    # ---- snapshots ------------------------------------------------------------------------------

    async def apply(self, generation: int, policy_set: PolicySet, timeout_s: float = 30.0) -> bool:
        """Every worker switches to this snapshot (call it after Envoy's ACK); True once all live
        workers did. A worker started later gets it at its start."""
        self._current = Apply(generation, policy_set)
        await asyncio.gather(*(self._send(w, self._current) for w in self._workers.values()
                               if w.process.is_alive()))
        return await self._wait_all(generation, timeout_s)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _wait_all(self, generation: int, timeout_s: float) -> bool:
        def switched() -> bool:
            return all(w.generation >= generation for w in self._workers.values() if w.process.is_alive())

        try:
            async with asyncio.timeout(timeout_s):
                async with self._changed:
                    await self._changed.wait_for(switched)
        except TimeoutError:
            log.warning("workers_slow_to_switch", generation=generation, workers=self.describe())
            return False
        return True

    @property
    def ready(self) -> bool:
        """Every worker is up and serves the current snapshot."""
        current = self._current.generation if self._current else 0
        return bool(self._workers) and all(
            w.process.is_alive() and w.generation >= current for w in self._workers.values())

    def describe(self) -> list[dict[str, Any]]:
        return [{"index": w.config.index, "pid": w.process.pid, "alive": w.process.is_alive(),
                 "generation": w.generation, "restarts": w.restarts}
                for w in sorted(self._workers.values(), key=lambda w: w.config.index)]


def default_count(cpus: int | None) -> int:
    """One worker per core, at most 8 (the control plane and Envoy need cores too)."""
    return max(1, min(cpus or 1, 8))


def available_cpus(cgroup: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The cores this process may use: its CPU affinity, and in a container its CPU limit (a
    pod limited to 1 CPU on a 64-core node has 1, not 64)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = cgroup.read_text().split()[:2]
    except (OSError, ValueError):
        return cpus
    if quota == "max":
        return cpus
    return max(1, min(cpus, math.ceil(int(quota) / int(period))))



