"""The benchmarks' load generator: client processes at a fixed concurrency, a measured window,
and the CPU every side used in it.

Each client process runs its share of the concurrency as asyncio tasks over aiohttp (uvloop when
installed), each task one keep-alive connection sending one request after another. What a request
sends is its arm's `Workload`: one fixed body (an explicit model), or `model: "auto"` with a new
text each time (routed_workload.py). Alongside latency it reads the decision headers
(`x-switchyard-decision`, `x-switchyard-router-ms`).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import statistics
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from typing import Any, TypeVar

import aiohttp

from benchmarks.cpu_accounting import cpu_by_process, cpu_table, machine_busy
from harness.processes import Process

try:
    import uvloop
except ImportError:  # the client is faster with it, but works without
    uvloop = None  # type: ignore[assignment]

T = TypeVar("T")
UVLOOP = uvloop is not None
HEADERS = {"content-type": "application/json"}


@dataclass(frozen=True)
class Workload:
    """What an arm's requests send: `body(slot, n)` for the n-th request of a client in a window;
    `slot` is that client's in that window (measure's `slot`), so the pair is new in a run."""

    name: str
    body: Callable[[int, int], bytes]


@dataclass
class Window:
    """What the clients saw in the measured window."""

    ok: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    router_ms: list[float] = field(default_factory=list)  # x-switchyard-router-ms, when present
    decisions: Counter[str] = field(default_factory=Counter)  # x-switchyard-decision
    first_error: str = ""

    def add(self, other: Window) -> None:
        self.ok += other.ok
        self.errors += other.errors
        self.latencies_ms += other.latencies_ms
        self.router_ms += other.router_ms
        self.decisions.update(other.decisions)
        self.first_error = self.first_error or other.first_error

    @classmethod
    def merged(cls, windows: Iterable[Window]) -> Window:
        """One window holding all of these (clients of one window, or an arm's rounds)."""
        total = cls()
        for window in windows:
            total.add(window)
        return total


@dataclass
class Sample:
    """One arm, one window: the clients' windows merged, and the CPU each side used in it."""

    seconds: float
    window: Window
    arm_cores: float
    arm_parts: dict[str, float]  # arm_cores by process name, when the arm is more than one process
    client_cores: float
    upstream_cores: float
    other_cores: float  # busy, but none of the three: idle arms, this script, other people's jobs


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    if uvloop is not None:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    return asyncio.run(coro)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else float("nan")


def percentiles(values: list[float]) -> str:
    """"p50 / p99" in ms, or "-" without values."""
    return f"{statistics.median(values):.1f} / {p99(values):.1f}" if values else "-"


async def load(url: str, workload: Workload, tasks: int, start_at: float, warmup_s: float, seconds: float,
               slot: int) -> Window:
    """`tasks` loops sending requests back to back; what completes in the window is counted.

    Times are time.monotonic(): CLOCK_MONOTONIC is one clock for every process on the machine, so
    all client processes share `start_at` and the parent samples CPU over the same window."""
    window = Window()
    sent = itertools.count()
    connector = aiohttp.TCPConnector(limit=0)  # one keep-alive connection per task
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        measure_from = start_at + warmup_s
        measure_to = measure_from + seconds

        async def loop() -> None:
            while (started := time.monotonic()) < measure_to:
                error, decision, router_ms = "", "", ""
                body = workload.body(slot, next(sent))
                try:
                    async with session.post(url, data=body, headers=HEADERS) as response:
                        await response.read()
                        if response.status != 200:
                            error = f"HTTP {response.status}"
                        decision = response.headers.get("x-switchyard-decision", "")
                        router_ms = response.headers.get("x-switchyard-router-ms", "")
                except (TimeoutError, aiohttp.ClientError) as exc:
                    error = repr(exc)
                done = time.monotonic()
                if measure_from <= done <= measure_to:
                    if error:
                        window.errors += 1
                        window.first_error = window.first_error or error
                    else:
                        window.ok += 1
                        window.latencies_ms.append((done - started) * 1000)
                        window.decisions[decision or "-"] += 1
                        if router_ms:
                            window.router_ms.append(float(router_ms))
                if error:  # don't spin on a dead arm
                    await asyncio.sleep(0.01)

        await asyncio.gather(*(loop() for _ in range(tasks)))
    return window


def client_main(queue: Queue[Window], url: str, workload: Workload, tasks: int, start_at: float, warmup_s: float,
                seconds: float, slot: int) -> None:
    queue.put(run_async(load(url, workload, tasks, start_at, warmup_s, seconds, slot)))


def measure(url: str, workload: Workload, arm: Process | None, upstream: Process, concurrency: int,
            args: argparse.Namespace, number: int = 0) -> Sample:
    """One window: fork the client processes (`args.clients` of them), sample CPU at the window's
    edges (`args.warmup`, `args.seconds`). `arm`: whose process tree's CPU is the arm's. `number`:
    this window's in the run (its clients' slots follow from it)."""
    context = multiprocessing.get_context("fork")  # nothing to re-import; the parent has no threads
    queue: Queue[Window] = context.Queue()
    shares = [concurrency // args.clients + (i < concurrency % args.clients) for i in range(args.clients)]
    start_at = time.monotonic() + 0.5  # every client connected and waiting
    clients = [context.Process(target=client_main,
                               args=(queue, url, workload, n, start_at, args.warmup, args.seconds,
                                     number * args.clients + index))
               for index, n in enumerate(shares) if n]
    for client in clients:
        client.start()
    time.sleep(max(0.0, start_at + args.warmup - time.monotonic()))
    before, busy_before = cpu_table(), machine_busy()
    time.sleep(max(0.0, start_at + args.warmup + args.seconds - time.monotonic()))
    after, busy_after = cpu_table(), machine_busy()
    windows = [queue.get(timeout=120) for _ in clients]  # before join: a full pipe blocks the child
    for client in clients:
        client.join()
    merged = Window.merged(windows)
    pids = [c.pid for c in clients if c.pid is not None]
    parts = {name: cpu / args.seconds for name, cpu in cpu_by_process(before, after, [arm.pid] if arm else []).items()}
    arm_cores = sum(parts.values())
    client_cores = sum(cpu_by_process(before, after, pids).values()) / args.seconds
    upstream_cores = sum(cpu_by_process(before, after, [upstream.pid]).values()) / args.seconds
    busy_cores = (busy_after - busy_before) / args.seconds
    return Sample(args.seconds, merged, arm_cores, parts, client_cores, upstream_cores,
                  max(0.0, busy_cores - arm_cores - client_cores - upstream_cores))


async def concurrency_one(targets: dict[str, str], body: bytes, requests: int) -> dict[str, list[float]]:
    """Requests one at a time, alternating between the targets: the same noise for each."""
    samples: dict[str, list[float]] = {name: [] for name in targets}
    async with aiohttp.ClientSession() as session:
        for index in range(requests + 50):
            for name, url in targets.items():
                started = time.perf_counter()
                async with session.post(url, data=body, headers=HEADERS) as response:
                    await response.read()
                    assert response.status == 200, (name, response.status)
                if index >= 50:  # warm-up
                    samples[name].append((time.perf_counter() - started) * 1000)
    return samples
