"""Reload latency: from a policy file write to the first request routed under the new policy.

20 edits under steady traffic (one `auto` request every 10 ms) through `switchyard up`: 19 flip
which model a route maps to, one adds a brand-new provider. Prints p50/p99 and the failed-request
count.

    python benchmarks/reload_latency.py [--edits 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.stack import start_provider, start_sidecar  # noqa: E402
from harness.live_policy import Traffic, policy, write_rename_over  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edits", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sy-reload-"))
    logs, policies = work / "logs", work / "policies"
    logs.mkdir()
    policies.mkdir()
    providers = [start_provider(n, logs) for n in ("router", "alpha", "beta", "gamma")]
    router, alpha, beta, gamma = providers
    router.control(route="code_generation")
    base = {"alpha": alpha, "beta": beta}
    models = {"alpha-chat": "alpha", "beta-chat": "beta"}
    path = policies / "default.yaml"
    path.write_text(policy(router, base, models, {"code_generation": "alpha-chat"}))
    sidecar = None
    traffic = Traffic("")
    thread = threading.Thread(target=traffic.run, daemon=True)
    latencies, current = [], "alpha"
    try:
        sidecar = start_sidecar("switchyard", policies, logs)
        traffic.url = f"{sidecar.base_url}/chat/completions"
        traffic.interval_s = 0.01
        thread.start()
        traffic.first_after(time.monotonic(), "hello from alpha", timeout=10)
        for edit in range(args.edits):
            if edit == args.edits // 2:  # one edit adds a provider (a new Envoy cluster)
                target, text = "gamma", policy(router, {**base, "gamma": gamma}, {**models, "gamma-chat": "gamma"},
                                               {"code_generation": "gamma-chat"})
            else:
                target = "beta" if current != "beta" else "alpha"
                text = policy(router, base, models, {"code_generation": f"{target}-chat"})
            time.sleep(0.3)  # settle: one edit at a time
            t = time.monotonic()
            write_rename_over(path, text)
            latencies.append(traffic.first_after(t, f"hello from {target}") * 1000)
            current = target
    finally:
        traffic.stop.set()
        if thread.is_alive():
            thread.join(10)
        if sidecar is not None:
            sidecar.process.stop()
        for provider in providers:
            provider.process.stop()
    failed = [r for r in traffic.results if not 200 <= r[1] < 300]
    q = statistics.quantiles(latencies, n=100)
    print(f"edits: {len(latencies)} (1 adds a provider), requests: {len(traffic.results)}, failed: {len(failed)}")
    print(f"reload latency (write -> first request routed by the new policy): "
          f"p50 {statistics.median(latencies):.0f} ms, p99 {q[98]:.0f} ms, max {max(latencies):.0f} ms")
    print(f"provider-adding edit: {latencies[args.edits // 2]:.0f} ms")


if __name__ == "__main__":
    main()
