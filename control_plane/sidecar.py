"""`switchyard up`: the control-plane role (policy watcher and reloader, ADS, access-log sink,
admin, the guarded path, the state workers share), N processor workers (control_plane/workers/)
and Envoy (plus, optionally, vLLM serving the router model), run together in the foreground and
stopped together."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import structlog
from aiohttp import web
from grpclib.server import Server

from control_plane.admin import admin_app
from control_plane.children import Child
from control_plane.extproc.codec import RawOrProtoCodec
from control_plane.failover.circuits import Circuits
from control_plane.failover.runner import Failover
from control_plane.observability import tracing
from control_plane.observability.access_log import AccessLogSink
from control_plane.observability.metrics import Metrics, use_multiprocess_dir
from control_plane.policy.loader import load_policy_set
from control_plane.policy.model import PolicySet
from control_plane.ledger import default_state_dir, open_ledger
from control_plane.reloader import Reloader
from control_plane.spend.accountant import Accountant
from control_plane.routing.router_pool import RouterPool
from control_plane.policy.snapshot import SnapshotStore
from control_plane.policy.watcher import PolicyWatcher
from control_plane.workers.pool import WorkerPool
from control_plane.workers.shared_state import SharedStateServer
from control_plane.xds.cache import XdsCache
from control_plane.xds.envoy_config import ENVOY_LOG_FORMAT, EnvoyPorts, envoy_binary, write_bootstrap
from control_plane.xds.server import AdsServer
from router_model.serving import RouterServing, vllm_command, vllm_env

log = structlog.get_logger("switchyard.up")


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> HostPort:
        host, _, port = text.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"expected HOST:PORT, got {text!r}")
        return cls(host.strip("[]"), int(port))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class SidecarOptions:
    policies: Path
    listen: HostPort
    admin: HostPort
    processor: HostPort  # the workers' ext_proc address (shared: SO_REUSEPORT)
    envoy_admin: HostPort
    control: HostPort = HostPort("127.0.0.1", 50053)  # ADS and the access log, for Envoy
    workers: int = 1  # processor worker processes
    failover: HostPort = HostPort("127.0.0.1", 50052)  # the guarded path's HTTP server
    stream_idle_timeout_s: int = 300  # Envoy closes a stream silent this long
    router_serving: RouterServing | None = None  # also run vLLM with this model
    envoy_binary: str = field(default_factory=envoy_binary)
    run_envoy: bool = True  # False: Envoy runs elsewhere (its own container) from envoy_bootstrap
    envoy_bootstrap: Path | None = None  # where to write the rendered bootstrap
    watch: str = "inotify"  # inotify | poll | off
    drain_s: float = 30.0  # how long a removed provider's cluster outlives the reload
    log_level: str = "info"  # the workers'
    state_dir: Path = field(default_factory=default_state_dir)  # the ledger's SQLite file
    state_url: str | None = None  # redis://host:port/db: the ledger shared by every sidecar


async def _answers_ok(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=1)) as response:
                return response.status == 200
    except (aiohttp.ClientError, OSError, TimeoutError):
        return False


def open_to_anyone(policies: PolicySet, listen: HostPort) -> bool:
    """No app keys, and a listener other hosts can reach: worth a warning at start."""
    try:
        address = socket.gethostbyname(listen.host)
    except OSError:
        return policies.apps is None  # unknown: warn rather than stay quiet
    return policies.apps is None and not ipaddress.ip_address(address).is_loopback


def _readiness_urls(options: SidecarOptions) -> list[str]:
    """Ready = Envoy is ready, and the router model too when `up` serves it."""
    urls = [f"http://{options.envoy_admin}/ready"] if options.run_envoy else []
    if options.router_serving is not None:
        serving = options.router_serving
        urls.append(f"http://{serving.host}:{serving.port}/health")
    return urls


async def _all_ready(urls: list[str]) -> bool:
    return all(await asyncio.gather(*(_answers_ok(url) for url in urls)))


async def _announce_ready(ready: Callable[[], Awaitable[bool]]) -> None:
    while not await ready():
        await asyncio.sleep(0.5)
    log.info("ready")
    print("Switchyard is ready.", flush=True)


def _children(options: SidecarOptions, workdir: Path) -> list[Child]:
    """vLLM (when asked) and Envoy, from the bootstrap rendered for these addresses."""
    ports = EnvoyPorts(
        listen_address=options.listen.host,
        listen_port=options.listen.port,
        admin_port=options.envoy_admin.port,
        processor_address=options.processor.host,
        processor_port=options.processor.port,
        control_address=options.control.host,
        control_port=options.control.port,
        failover_address=options.failover.host,
        failover_port=options.failover.port,
        stream_idle_timeout_s=options.stream_idle_timeout_s,
    )
    bootstrap = write_bootstrap(ports, options.envoy_bootstrap or workdir / "envoy.yaml")
    children = []
    if options.router_serving is not None:
        serving = options.router_serving
        children.append(Child("router", vllm_command(serving), vllm_env(serving)))
    if options.run_envoy:
        children.append(Child("envoy", [
            options.envoy_binary, "-c", str(bootstrap), "--log-level", "warn",
            "--log-format", ENVOY_LOG_FORMAT,
            "--disable-hot-restart", "--base-id-path", str(workdir / "base-id"),
            "--use-dynamic-base-id",
        ]))
    return children


async def run(options: SidecarOptions) -> int:
    if tracing.configure():
        log.info("tracing_on", endpoint=os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                 or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    policies = load_policy_set(options.policies)  # a bad first load is fatal: fail fast
    workdir = Path(tempfile.mkdtemp(prefix="switchyard-"))
    (workdir / "metrics").mkdir()
    use_multiprocess_dir(workdir / "metrics")  # workers record there too; /metrics sums them
    if open_to_anyone(policies, options.listen):
        log.warning("no_app_keys", listen=str(options.listen),
                    message="the listener is reachable from other hosts and no apps.yaml declares "
                            "app keys: anyone who reaches it spends your provider keys")
    metrics = Metrics()
    # What apps spent, for budgets and /usage: kept across restarts, and across sidecars with Redis.
    ledger = await open_ledger(options.state_dir, options.state_url, metrics)
    routers = RouterPool()
    snapshots = SnapshotStore(await routers.snapshot(policies))
    shared_state = SharedStateServer(workdir / "shared-state.sock", metrics, ledger)
    await shared_state.start()
    workers = WorkerPool(options.workers, options.processor.host, options.processor.port,
                         shared_state.path, options.log_level)
    xds = XdsCache()
    reloader = Reloader(options.policies, snapshots, xds, routers, drain_s=options.drain_s,
                        metrics=metrics, workers=workers)
    await reloader.publish_initial()
    # The control plane's gRPC server for Envoy: ADS (clusters and routes) and the access log
    # (request metrics). ext_proc streams go to the workers.
    # The request log line, metrics and spend of every request settle here (spend/accountant.py),
    # from Envoy's access log (which carries the direct path's usage) and the guarded path.
    accountant = Accountant(snapshots, metrics, ledger=ledger)
    server = Server([AdsServer(xds), AccessLogSink(accountant.entry)], codec=RawOrProtoCodec())
    await server.start(options.control.host, options.control.port)
    await workers.start(snapshots.generation, policies)
    circuits = Circuits(metrics=metrics)
    # The guarded path keeps Responses API answers in the store workers ask (shared state).
    failover = Failover(snapshots, circuits, metrics, shared_state.shared.responses, accountant)
    failover_runner = web.AppRunner(failover.app(), access_log=None, handler_cancellation=True)
    await failover_runner.setup()
    await web.TCPSite(failover_runner, options.failover.host, options.failover.port).start()
    watcher = PolicyWatcher(options.policies, reloader.reload, polling=options.watch == "poll")
    if options.watch != "off":
        watcher.start()

    readiness = _readiness_urls(options)

    async def ready() -> bool:
        return workers.ready and await _all_ready(readiness)

    admin = admin_app(snapshots, ready, lambda: reloader.status, circuits, metrics, workers.describe,
                      ledger.report)
    admin_runner = web.AppRunner(admin)
    await admin_runner.setup()
    await web.TCPSite(admin_runner, options.admin.host, options.admin.port).start()

    children = _children(options, workdir)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    exit_code = 0
    try:
        for child in children:
            await child.start()
        log.info(
            "switchyard_up",
            listen=f"http://{options.listen}/v1",
            admin=f"http://{options.admin}",
            policies=sorted(policies.policies),
        )
        print(f"Switchyard listening on http://{options.listen}/v1 (admin http://{options.admin})",
              flush=True)
        if options.router_serving is not None:
            print("Starting vLLM (a minute or more on CPU)...", flush=True)
        announcer = asyncio.ensure_future(_announce_ready(ready))
        exited = [asyncio.ensure_future(child.wait()) for child in children]
        stopping = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait([stopping, *exited], return_when=asyncio.FIRST_COMPLETED)
        if stopping not in done:
            dead = [c.name for c, f in zip(children, exited) if f in done]
            log.error("child_exited", children=dead)
            exit_code = 1
        stopping.cancel()
        announcer.cancel()
    finally:
        await watcher.stop()
        await reloader.close()
        await workers.stop()
        await shared_state.close()
        for child in reversed(children):
            await child.stop()
        server.close()
        await server.wait_closed()
        await failover_runner.cleanup()
        await failover.close()
        await admin_runner.cleanup()
        await accountant.close()
        await ledger.close()  # nothing counted is lost on SIGTERM
        await routers.close()
        shutil.rmtree(workdir, ignore_errors=True)
        log.info("switchyard_down")
    return exit_code
