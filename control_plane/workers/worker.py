"""The worker role: one process answering Envoy's ext_proc streams.

Started by the control plane (pool.py) with the `spawn` method: a fresh interpreter that shares
nothing but what it is given. Every worker listens on the same processor address (SO_REUSEPORT:
the kernel spreads Envoy's connections over the live workers, and a dead worker's socket simply
leaves the group). Snapshots arrive over the worker's pipe, only after Envoy ACKed the clusters
they need; decisions and rate limits are shared through the control plane (shared_state.py).
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import structlog

from control_plane.event_loop import run_loop
from control_plane.extproc.codec import RawOrProtoCodec
from control_plane.extproc.grpc_server import CoalescingServer
from control_plane.extproc.service import ExtProcService
from control_plane.observability import logging_setup, tracing
from control_plane.observability.metrics import Metrics
from control_plane.policy.model import PolicySet
from control_plane.routing.router_pool import RouterPool
from control_plane.policy.snapshot import SnapshotStore
from control_plane.workers.shared_state import RemoteShared, SharedStateClient
from router_model.kinds import RouterFactory

log = structlog.get_logger("switchyard.worker")


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker is told at start (it is pickled into the new process)."""

    index: int
    host: str
    port: int
    shared_state: Path  # the control plane's Unix socket
    log_level: str = "info"
    encoder_threads: int = 1  # onnxruntime's, for the embedding tier (encoder.intra_op_threads)


@dataclass(frozen=True)
class Apply:
    """Control plane -> worker: serve this policy set from now on."""

    generation: int
    policy_set: PolicySet


@dataclass(frozen=True)
class Applied:
    """Worker -> control plane: `generation` is in use (or failed to build: `error`)."""

    generation: int
    error: str | None = None


def main(config: WorkerConfig, pipe: Connection) -> None:
    """The process's entry point."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the control plane, which stops us
    logging_setup.configure(config.log_level)
    tracing.configure()
    structlog.contextvars.bind_contextvars(worker=config.index)
    run_loop(_serve(config, pipe))


async def _serve(config: WorkerConfig, pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    client = SharedStateClient(config.shared_state)
    await client.connect()
    routers = RouterPool(RouterFactory(encoder_threads=config.encoder_threads))
    first: Apply = await loop.run_in_executor(None, pipe.recv)
    snapshots = SnapshotStore(await routers.snapshot(first.policy_set))
    service = ExtProcService(snapshots, RemoteShared(client, Metrics()))
    server = CoalescingServer([service], codec=RawOrProtoCodec())
    await server.start(config.host, config.port, reuse_port=True)
    pipe.send(Applied(first.generation))
    log.info("worker_up", generation=first.generation)
    try:
        while True:
            try:
                message: Apply | None = await loop.run_in_executor(None, pipe.recv)
            except EOFError:  # the control plane is gone: so are we
                break
            if message is None:
                break
            try:
                snapshot = await routers.snapshot(message.policy_set)
            except Exception as exc:  # the control plane built the same routers: rare
                log.exception("worker_router_build_failed", generation=message.generation)
                pipe.send(Applied(message.generation, str(exc)))
                continue
            snapshots.swap(snapshot)
            pipe.send(Applied(message.generation))
    finally:
        server.close()
        await server.wait_closed()
        await routers.close()
        await client.close()
