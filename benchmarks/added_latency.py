"""Added latency of Switchyard over bare Envoy, same upstream, same run (explicit model: no router).

Starts one local upstream, bare Envoy (same bootstrap minus the Switchyard filters) and
`switchyard up`, then alternates requests between bare Envoy, a model without fallbacks (Envoy's
direct path) and a model with a fallback chain (the guarded path, control_plane/failover/runner.py), so
all three see the same machine noise.

    python benchmarks/added_latency.py [--requests 2000] [--concurrency 1] [--baseline DIR]

`--baseline DIR`: also `switchyard up` from another checkout (an earlier commit: `git worktree add
DIR COMMIT`), in the same run, so that a change is measured against what came before it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from control_plane.headers import FAILOVER_CLUSTER  # noqa: E402
from control_plane.policy.loader import load_policy_set  # noqa: E402
from harness.stack import state_flags  # noqa: E402
from control_plane.xds.envoy_config import (  # noqa: E402
    EnvoyPorts,
    envoy_binary,
    http_manager,
    provider_cluster,
    render_bootstrap,
    route_configuration,
)

POLICY = """\
version: 1
router: {endpoint: "http://127.0.0.1:1/v1", model: Arch-Router, timeout_ms: 400}
providers:
  upstream: {base_url: "http://127.0.0.1:%(upstream)d/v1"}
models:
  m: {provider: upstream}
  chained: {provider: upstream, upstream_model: m, fallbacks: [m]}
default_model: m
"""
MESSAGES = [{"role": "user", "content": "hello " * 40}]
BODY = json.dumps({"model": "m", "messages": MESSAGES})
CHAINED_BODY = json.dumps({"model": "chained", "messages": MESSAGES})


def bare_envoy_config(policy_dir: Path, port: int, admin_port: int) -> dict:
    """Switchyard's own bootstrap, static, without the Switchyard filters: plain Envoy proxying."""
    providers = load_policy_set(policy_dir).providers()
    config = render_bootstrap(EnvoyPorts(listen_port=port, admin_port=admin_port))
    config.pop("dynamic_resources")
    config["static_resources"]["clusters"] = [provider_cluster(p) for p in providers]
    hcm = http_manager(config)
    hcm["http_filters"] = [f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.router"]
    hcm.pop("rds")
    hcm["route_config"] = route_configuration(providers)
    vhost = hcm["route_config"]["virtual_hosts"][0]
    vhost["routes"] = [r for r in vhost["routes"] if r["name"] != FAILOVER_CLUSTER]
    for route in vhost["routes"]:
        route["match"].pop("headers", None)
    return config


async def wait_ready(session: aiohttp.ClientSession, url: str, body: str, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            async with session.post(url, data=body, headers={"content-type": "application/json"}) as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} not ready")


async def one(session: aiohttp.ClientSession, url: str, body: str) -> float:
    started = time.perf_counter()
    async with session.post(url, data=body, headers={"content-type": "application/json"}) as r:
        await r.read()
        assert r.status == 200, r.status
    return (time.perf_counter() - started) * 1000


async def measure(targets: dict[str, tuple[str, str]], requests: int,
                  concurrency: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in targets}
    connector = aiohttp.TCPConnector(limit=concurrency * len(targets) * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        for url, body in targets.values():
            await wait_ready(session, url, body)
            for _ in range(50):  # warm-up
                await one(session, url, body)

        async def worker() -> None:
            for _ in range(requests // concurrency):
                for name, (url, body) in targets.items():  # interleaved: same noise for all
                    samples[name].append(await one(session, url, body))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--baseline", type=Path, help="a checkout of an earlier commit, measured too")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sy-bench-"))
    (work / "policies").mkdir()
    (work / "policies" / "default.yaml").write_text(POLICY % {"upstream": 19001})
    (work / "bare.yaml").write_text(yaml.safe_dump(bare_envoy_config(work / "policies", 19010, 19911)))
    py = sys.executable
    procs = [
        subprocess.Popen([py, "-m", "harness.fake_provider", "--name", "up", "--port", "19001"], cwd=ROOT),
        subprocess.Popen([envoy_binary(), "-c", str(work / "bare.yaml"), "--log-level", "error",
                          "--base-id", "7", "--disable-hot-restart"]),
        subprocess.Popen([py, "-m", "control_plane.cli", "--log-level", "warning", "up",
                          "--policies", str(work / "policies"), "--listen", "127.0.0.1:19020",
                          "--admin", "127.0.0.1:19090", "--processor", "127.0.0.1:19051",
                          "--envoy-admin", "127.0.0.1:19921", "--failover", "127.0.0.1:19052",
                          "--control", "127.0.0.1:19053", *state_flags(work / "state")],
                         cwd=ROOT, stdout=subprocess.DEVNULL),
    ]
    if args.baseline:
        procs.append(subprocess.Popen(
            [py, "-m", "control_plane.cli", "--log-level", "warning", "up", "--policies", str(work / "policies"),
             "--listen", "127.0.0.1:19030", "--admin", "127.0.0.1:19190", "--processor", "127.0.0.1:19151",
             "--envoy-admin", "127.0.0.1:19931", "--failover", "127.0.0.1:19152", "--control", "127.0.0.1:19153",
             *state_flags(work / "baseline-state", args.baseline)],
            cwd=args.baseline, env={**os.environ, "PYTHONPATH": str(args.baseline)}, stdout=subprocess.DEVNULL))
    try:
        switchyard = "http://127.0.0.1:19020/v1/chat/completions"
        targets = {"bare envoy": ("http://127.0.0.1:19010/v1/chat/completions", BODY),
                   "switchyard": (switchyard, BODY),
                   "with chain": (switchyard, CHAINED_BODY)}
        if args.baseline:
            baseline = "http://127.0.0.1:19030/v1/chat/completions"
            targets |= {"baseline": (baseline, BODY), "base chain": (baseline, CHAINED_BODY)}
        samples = asyncio.run(measure(targets, args.requests, args.concurrency))
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=20)
    print(f"requests per target: {args.requests}, concurrency {args.concurrency}, cpus {os.cpu_count()}")
    for name, values in samples.items():
        print(f"{name:>12}: p50 {statistics.median(values):6.2f} ms  p99 {pct(values, 99):6.2f} ms")
    bare = samples["bare envoy"]
    for name in [n for n in samples if n != "bare envoy"]:
        sy = samples[name]
        print(f"{'added':>12}: p50 {statistics.median(sy) - statistics.median(bare):+6.2f} ms  "
              f"p99 {pct(sy, 99) - pct(bare, 99):+6.2f} ms  ({name}: explicit model"
              f"{', fallback chain configured' if 'chain' in name else ', no fallbacks'})")


if __name__ == "__main__":
    main()
