"""The embedding tier's decision time through Envoy, at several concurrencies, in one run.

Starts the in-memory upstream (benchmarks/upstream_envoy.py) and `switchyard up` with an
embedding policy whose models are all on it, and with `--baseline DIR` a second sidecar run from
an earlier tree (benchmarks/baseline.py: before and after under the same noise). Then, in
`--rounds` rounds, a window per sidecar and concurrency (default 1, 8 and 32) of routed requests:
`model: "auto"`, each a new conversation with a new text (benchmarks/workloads.py; by
default the quickstart policy and its requests), and one window of explicit-model requests at
concurrency 1 per sidecar for reference. Prints for each: req/s, end-to-end p50/p99, the decision
time (`x-switchyard-router-ms`) p50/p99, the sidecar's CPU per request (Envoy, workers and
control plane), and the decisions' kinds (all `routed:embedding` when no decision was reused).

    python benchmarks/embedding_decision.py [--concurrency 1 8 32] [--seconds 8] [--warmup 2]
        [--rounds 1] [--workers N] [--policy FILE] [--texts JSONL ...] [--baseline DIR]

CLINC-style requests instead: `--policy eval/clinc150/examples-30.yaml --texts
../shared/data/clinc150/dev.jsonl`. Targets (issue 23): decision p50 <= 10 ms at concurrency 1,
p99 <= 25 ms at 32.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.baseline import start_sidecar_from
from benchmarks.cpu_accounting import settle
from benchmarks.load_generator import Sample, Window, Workload, measure, p99, percentiles
from benchmarks.upstream_envoy import MODEL, start_upstream
from benchmarks.workloads import DEFAULT_POLICY, DEFAULT_TEXTS, EXPLICIT, latest_user_texts, routed, routed_policy
from harness.processes import Process
from harness.stack import start_sidecar

TARGET_P50_AT_1_MS = 10.0
TARGET_P99_AT_32_MS = 25.0


@dataclass
class Cell:
    sidecar: str
    url: str
    process: Process
    workload: Workload
    concurrency: int
    samples: list[Sample]

    def window(self) -> Window:
        return Window.merged(s.window for s in self.samples)

    def row(self) -> str:
        window, seconds = self.window(), sum(s.seconds for s in self.samples)
        rate = window.ok / seconds
        cpu = sum(s.arm_cores * s.seconds for s in self.samples) / max(window.ok, 1) * 1e6
        kinds = ", ".join(f"{k} {n}" for k, n in window.decisions.most_common())
        other = sum(s.other_cores for s in self.samples) / len(self.samples)
        e2e = f"{statistics.median(window.latencies_ms):.1f} / {p99(window.latencies_ms):.1f}" if window.ok else "-"
        return (f"{self.sidecar:>10} {self.workload.name:>10} {self.concurrency:>4} {rate:7.0f} {e2e:>13} "
                f"{percentiles(window.router_ms):>13} {cpu:10.0f} {other:5.2f}  {window.errors} errors; {kinds}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=8.0, help="measured window per cell and round")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each window")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--clients", type=int, default=1, help="load-generator processes")
    parser.add_argument("--workers", type=int, help="`switchyard up --workers N` (default: its own default)")
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY, help="an embedding policy")
    parser.add_argument("--texts", type=Path, nargs="+", default=list(DEFAULT_TEXTS),
                        help="JSONL datasets whose latest user messages are sent")
    parser.add_argument("--baseline", type=Path, help="also run `switchyard up` from this tree (before/after)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    workload, left_out = routed(latest_user_texts(args.texts))
    work = Path(tempfile.mkdtemp(prefix="sy-decision-"))
    (work / "logs").mkdir()
    (work / "policies").mkdir()
    extra = ("--workers", str(args.workers)) if args.workers else ()
    processes: list[Process] = []
    try:
        upstream, upstream_url = start_upstream(work)
        processes.append(upstream)
        (work / "policies" / "default.yaml").write_text(routed_policy(args.policy, upstream_url, MODEL))
        sidecars = [("after", start_sidecar("after", work / "policies", work / "logs", *extra))]
        if args.baseline is not None:
            sidecars.append(("before", start_sidecar_from(args.baseline, "before", work / "policies", work / "logs",
                                                          *extra)))
        processes += [sidecar.process for _, sidecar in sidecars]
        cells = [Cell(name, f"{sidecar.base_url}/chat/completions", sidecar.process, EXPLICIT, 1, [])
                 for name, sidecar in sidecars]
        cells += [Cell(name, f"{sidecar.base_url}/chat/completions", sidecar.process, workload, c, [])
                  for c in args.concurrency for name, sidecar in sidecars]
        busy = settle()
        if busy >= 0.25:
            print(f"warning: the machine stays busy ({busy:.2f} cores) with the sidecars idle: noisy numbers")
        windows = 0
        for _ in range(args.rounds):
            for cell in cells:
                cell.samples.append(measure(cell.url, cell.workload, cell.process, upstream, cell.concurrency, args,
                                            windows))
                windows += 1
    finally:
        for process in reversed(processes):
            process.stop()

    print(f"policy {args.policy}, texts {', '.join(str(p) for p in args.texts)} ({left_out} left out); "
          f"{args.seconds:g} s per cell after {args.warmup:g} s warm-up, {args.rounds} round(s); cpus {os.cpu_count()}")
    print(f"{'sidecar':>10} {'model':>10} {'conc':>4} {'req/s':>7} {'e2e p50/p99':>13} {'decision ms':>13} "
          f"{'CPU µs/req':>10} {'other':>5}  decisions")
    for cell in cells:
        print(cell.row())
    print("CPU µs/req: the sidecar's (Envoy, workers, control plane) per answered request; other: cores busy "
          "outside the sidecar, client and upstream (other people's jobs: a noisy row)")
    after = {cell.concurrency: cell.window() for cell in cells if cell.sidecar == "after" and cell.workload is workload}
    if 1 in after and after[1].router_ms:
        p50 = statistics.median(after[1].router_ms)
        print(f"target: decision p50 <= {TARGET_P50_AT_1_MS:.0f} ms at concurrency 1: {p50:.1f} ms -> "
              f"{'met' if p50 <= TARGET_P50_AT_1_MS else 'NOT met'}")
    if 32 in after and after[32].router_ms:
        worst = p99(after[32].router_ms)
        print(f"target: decision p99 <= {TARGET_P99_AT_32_MS:.0f} ms at concurrency 32: {worst:.1f} ms -> "
              f"{'met' if worst <= TARGET_P99_AT_32_MS else 'NOT met'}")


if __name__ == "__main__":
    main()
