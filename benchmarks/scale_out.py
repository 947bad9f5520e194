"""Scale-out: router load as sidecars are added. 1, 2 and 3 `switchyard up` sidecars share one
policies folder, one router (the scripted fake router of the tests: it answers at once, so this
measures how many decisions the sidecars ask for, not how fast a model makes them) and one upstream.

Every sidecar gets the same agent-like workload, paced at `--rate` requests/s: `--sessions`
concurrent sessions, each `--turns` user turns, each turn followed by `--tool-calls` tool-loop
continuations (assistant tool call + tool result, as tests/e2e/test_agents.py sends them), and the
first `--retries` user turns of each session sent twice (a client retry). All requests are
`model: auto`. Prints, per sidecar count: requests/s, router calls/s (counted on the router's
side), router calls per request, the decisions (`routed:*`, `cached`, `sticky`) and the router
calls the per-sidecar decision cache saved; then a sizing rule of thumb for router replicas.

    python benchmarks/scale_out.py [--sessions 6] [--turns 6] [--tool-calls 4] [--retries 1] [--rate 20]
"""

from __future__ import annotations

import argparse
import collections
import math
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.stack import Provider, Sidecar, start_provider, start_sidecar  # noqa: E402
from harness.live_policy import policy  # noqa: E402

TOOLS = [{"type": "function", "function": {"name": "run_tests", "parameters": {"type": "object", "properties": {}}}}]
# Arch-Router-1.5B on vLLM, per GPU replica. The p50 is the model card's reference (one L40S); the
# concurrency and p99 are ASSUMPTIONS, to be measured on a GPU (benchmarks/decision.py).
REFERENCE_P50_MS = 50
ASSUMED_CONCURRENT = 16  # sequences one vLLM replica decodes together (continuous batching)
ASSUMED_P99_MS = 75  # per decision at that concurrency
REPLICA_DECISIONS_PER_S = 200  # ~16 / 0.075 s = 213, rounded down
HEADROOM = 1.5  # provision 50 % more decisions/s than the expected peak


@dataclass(frozen=True)
class Result:
    status: int
    decision: str
    ms: float


@dataclass
class Run:
    sidecars: int
    requests: int
    seconds: float
    router_calls: int
    decisions: collections.Counter[str]
    failed: int
    p50_ms: float

    @property
    def routed(self) -> int:
        return sum(n for kind, n in self.decisions.items() if kind.startswith("routed:"))

    @property
    def saved(self) -> int:
        return self.decisions["cached"] + self.decisions["sticky"]


def router_calls(router: Provider) -> int:
    """Routing requests only (not the one-step planner's /tokenize, which this fake cannot serve)."""
    return len([r for r in router.requests() if r["path"].endswith("/chat/completions")])


def session(url: str, tag: str, args: argparse.Namespace, start_at: float, results: list[Result]) -> None:
    """One agent session: user turns, each followed by a tool loop; paced to its share of --rate."""
    interval = args.sessions / args.rate
    next_at = start_at
    history: list[dict[str, Any]] = [{"role": "system", "content": "You are a coding agent."}]
    with httpx.Client(timeout=30) as client:
        def send() -> None:
            nonlocal next_at
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval
            started = time.perf_counter()
            try:
                r = client.post(url, json={"model": "auto", "messages": history, "tools": TOOLS})
                results.append(Result(r.status_code, r.headers.get("x-switchyard-decision", ""),
                                      (time.perf_counter() - started) * 1000))
            except httpx.HTTPError:
                results.append(Result(0, "", (time.perf_counter() - started) * 1000))

        for turn in range(args.turns):
            history.append({"role": "user", "content": f"fix the failing test number {turn} ({tag})"})
            send()
            if turn < args.retries:
                send()  # the client retries the same turn: `cached`
            for call in range(args.tool_calls):
                call_id = f"call_{turn}_{call}"
                history += [{"role": "assistant", "content": None, "tool_calls": [
                                {"id": call_id, "type": "function", "function": {"name": "run_tests", "arguments": "{}"}}]},
                            {"role": "tool", "tool_call_id": call_id, "content": f"{call} tests failed"}]
                send()  # a tool-loop continuation: `sticky`
            history.append({"role": "assistant", "content": "Fixed."})


def run(sidecars: list[Sidecar], router: Provider, args: argparse.Namespace, label: str) -> Run:
    results: list[Result] = []
    before = router_calls(router)
    start_at = time.monotonic() + 0.2
    threads = [threading.Thread(target=session, daemon=True,
                                args=(f"{s.base_url}/chat/completions", f"{label} sidecar {i} session {j}", args,
                                      start_at + j / args.rate, results))
               for i, s in enumerate(sidecars) for j in range(args.sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - start_at
    return Run(len(sidecars), len(results), seconds, router_calls(router) - before,
               collections.Counter(r.decision for r in results), sum(r.status != 200 for r in results),
               statistics.median(r.ms for r in results))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sidecars", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=6, help="concurrent sessions per sidecar")
    parser.add_argument("--turns", type=int, default=6, help="user turns per session")
    parser.add_argument("--tool-calls", type=int, default=4, help="tool-loop continuations per user turn")
    parser.add_argument("--retries", type=int, default=1, help="user turns per session the client sends twice")
    parser.add_argument("--rate", type=float, default=20.0, help="requests/s per sidecar")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sy-scale-"))
    logs, policies = work / "logs", work / "policies"
    logs.mkdir()
    policies.mkdir()
    router, upstream = start_provider("router", logs), start_provider("upstream", logs)
    router.control(route="code_generation")
    (policies / "default.yaml").write_text(
        policy(router, {"llm": upstream}, {"alpha-chat": "llm", "coder": "llm"}, {"code_generation": "coder"}))
    sidecars: list[Sidecar] = []
    runs: list[Run] = []
    try:
        for index in range(args.sidecars):
            sidecars.append(start_sidecar(f"switchyard-{index}", policies, logs))
        for count in range(1, args.sidecars + 1):
            runs.append(run(sidecars[:count], router, args, f"run {count}"))
    finally:
        for sidecar in sidecars:
            sidecar.process.stop()
        router.process.stop()
        upstream.process.stop()

    per_session = args.turns * (1 + args.tool_calls) + min(args.retries, args.turns)
    print(f"workload per sidecar: {args.sessions} sessions x ({args.turns} user turns x (1 + {args.tool_calls} "
          f"tool-loop requests) + {min(args.retries, args.turns)} retried turn) = {args.sessions * per_session} "
          f"requests at {args.rate:g} requests/s; one shared router, one upstream")
    print("| sidecars | requests | requests/s | router calls | router calls/s | router calls/request "
          "| routed | cached | sticky | calls saved by the cache | failed | p50 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in runs:
        print(f"| {r.sidecars} | {r.requests} | {r.requests / r.seconds:.1f} | {r.router_calls} "
              f"| {r.router_calls / r.seconds:.1f} | {r.router_calls / r.requests:.3f} | {r.routed} "
              f"| {r.decisions['cached']} | {r.decisions['sticky']} | {r.saved} ({r.saved / r.requests:.0%}) "
              f"| {r.failed} | {r.p50_ms:.1f} |")
    other = {k: n for r in runs for k, n in r.decisions.items()
             if k not in ("cached", "sticky") and not k.startswith("routed:")}
    if other:
        print(f"other decisions (fallbacks): {other}")
    mismatch = [(r.sidecars, r.router_calls, r.routed) for r in runs if r.router_calls != r.routed]
    if mismatch:
        print(f"router calls != routed decisions (sidecars, calls, routed): {mismatch}")

    calls = sum(r.router_calls for r in runs) / sum(r.requests for r in runs)
    print()
    print(f"sizing (rule of thumb): router calls per routed (`auto`) request after the cache, measured: {calls:.3f} "
          f"(without the cache: 1.0)")
    print(f"  per Arch-Router replica (one GPU, vLLM): ~{REPLICA_DECISIONS_PER_S} decisions/s, ASSUMED: "
          f"{ASSUMED_CONCURRENT} concurrent decisions at ~{ASSUMED_P99_MS} ms p99 "
          f"({ASSUMED_CONCURRENT / ASSUMED_P99_MS * 1000:.0f}/s; the reference is ~{REFERENCE_P50_MS} ms p50 for one "
          f"decision on one L40S) -- measure it on your GPU")
    per_replica = REPLICA_DECISIONS_PER_S / (calls * HEADROOM)
    print(f"  replicas = ceil(routed requests/s x {calls:.3f} x {HEADROOM} headroom / {REPLICA_DECISIONS_PER_S}), "
          f"i.e. one replica per ~{per_replica:.0f} routed requests/s of this mix "
          f"(per ~{REPLICA_DECISIONS_PER_S / HEADROOM:.0f} without the cache); at least 2 for availability")
    for rps in (100, 500, 1000, 5000):
        need = math.ceil(rps * calls * HEADROOM / REPLICA_DECISIONS_PER_S)
        bare = math.ceil(rps * HEADROOM / REPLICA_DECISIONS_PER_S)
        print(f"  {rps:>5} routed requests/s -> {rps * calls:.0f} decisions/s -> {max(2, need)} replicas "
              f"(computed {need}; {max(2, bare)} without the cache)")


if __name__ == "__main__":
    main()
