"""The embedding tier's cost inside the processor, through Envoy, in one run.

Starts one local upstream and `switchyard up` with an embedding policy (eval/clinc150's 30-example
routes), then alternates an explicit-model request with a `model: auto` request decided by the
embedding tier (CLINC150-style queries, cycled), so both see the same machine noise. Prints
end-to-end p50/p99 of each and of the decision alone (`x-switchyard-router-ms`).

    python benchmarks/embedding_decision.py [--requests 1000]
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

QUERIES = [
    "how do i say thank you in german", "what is my checking account balance",
    "set a timer for ten minutes", "is my flight to denver on time",
    "how many calories are in a banana", "what's the traffic like on my way to work",
    "when is my next payday", "tell me a joke", "change your voice to a british accent",
    "what is the apr on my visa card", "add milk to my shopping list", "who wrote war and peace",
]


def policy(upstream: int) -> str:
    data = yaml.safe_load((ROOT / "eval" / "clinc150" / "examples-30.yaml").read_text())
    data["providers"] = {"local": {"base_url": f"http://127.0.0.1:{upstream}/v1"}}
    return yaml.safe_dump(data, sort_keys=False)


def body(model: str, text: str) -> str:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": text}]})


async def one(session: aiohttp.ClientSession, url: str, data: str) -> tuple[float, float | None]:
    started = time.perf_counter()
    async with session.post(url, data=data, headers={"content-type": "application/json"}) as r:
        await r.read()
        assert r.status == 200, r.status
        decided = r.headers.get("x-switchyard-router-ms")
    return (time.perf_counter() - started) * 1000, float(decided) if decided else None


async def wait_ready(session: aiohttp.ClientSession, url: str, deadline_s: float = 120) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            await one(session, url, body("assistant", "hi"))
            return
        except (aiohttp.ClientError, AssertionError):
            await asyncio.sleep(0.3)
    raise RuntimeError(f"{url} not ready")


async def measure(url: str, requests: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"explicit model": [], "auto (embedding)": [], "decision only": []}
    async with aiohttp.ClientSession() as session:
        await wait_ready(session, url)
        for index in range(50 + requests):
            # A new conversation each time: a repeated one would be a cached decision.
            text = f"{QUERIES[index % len(QUERIES)]} ({index})"
            explicit, _ = await one(session, url, body("assistant", text))
            routed, decided = await one(session, url, body("auto", text))
            if index >= 50:  # after warm-up
                samples["explicit model"].append(explicit)
                samples["auto (embedding)"].append(routed)
                assert decided is not None
                samples["decision only"].append(decided)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sy-bench-"))
    (work / "policies").mkdir()
    (work / "policies" / "default.yaml").write_text(policy(19101))
    py = sys.executable
    procs = [
        subprocess.Popen([py, "-m", "harness.fake_provider", "--name", "up", "--port", "19101"], cwd=ROOT),
        subprocess.Popen([py, "-m", "control_plane.cli", "--log-level", "warning", "up",
                          "--policies", str(work / "policies"), "--listen", "127.0.0.1:19120",
                          "--admin", "127.0.0.1:19190", "--processor", "127.0.0.1:19151",
                          "--envoy-admin", "127.0.0.1:19921", "--failover", "127.0.0.1:19152",
                          "--control", "127.0.0.1:19153"], cwd=ROOT, stdout=subprocess.DEVNULL),
    ]
    try:
        samples = asyncio.run(measure("http://127.0.0.1:19120/v1/chat/completions", args.requests))
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=20)
    print(f"requests per arm: {args.requests}, concurrency 1, cpus {os.cpu_count()}")
    for name, values in samples.items():
        p99 = statistics.quantiles(values, n=100)[98]
        print(f"{name:>17}: p50 {statistics.median(values):6.2f} ms  p99 {p99:6.2f} ms")


if __name__ == "__main__":
    main()
