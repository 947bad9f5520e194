"""What the spend ledger costs: `record()` and `refusal()` per call (the hot path, in memory), and
one flush (the SQLite transaction; with Redis, the sync round trip), on SQLite alone and with a
real redis-server on this machine.

    python benchmarks/ledger.py [--calls 100000] [--apps 20] [--models 3]

The flush is timed with every (app, model) pair of the run in its batch: what one flush interval
(0.5 s) writes for that many distinct pairs, whatever the number of requests.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from control_plane.ledger import AppLimits, Ledger, Spend, open_ledger  # noqa: E402
from control_plane.observability.metrics import Metrics  # noqa: E402
from harness.redis_server import RedisServer  # noqa: E402

LIMITS = AppLimits(usd_per_day=1e9, usd_per_month=1e9, tokens_per_minute=10**12)
FLUSHES = 50


async def per_call_us(calls: int, fn: object) -> float:
    start = time.perf_counter()
    for i in range(calls):
        await fn(i)  # type: ignore[operator]
    return (time.perf_counter() - start) / calls * 1e6


async def measure(ledger: Ledger, calls: int, apps: int, models: int) -> dict[str, float]:
    now = datetime.now(timezone.utc)
    spends = [Spend(f"app{i % apps}", "default", "code", f"model{i % models}", input=900, cached_input=100,
                    output=300, reasoning=50, cost_usd=0.0042, at=now) for i in range(apps * models)]
    for app in range(apps):  # watched: their shared totals are read at each sync
        await ledger.refusal(f"app{app}", LIMITS)
    await ledger.flush()

    async def record(i: int) -> None:
        await ledger.record(spends[i % len(spends)])

    async def refuse(i: int) -> None:
        assert await ledger.refusal(f"app{i % apps}", LIMITS) is None

    out = {"record_us": await per_call_us(calls, record), "refusal_us": await per_call_us(calls, refuse)}
    flushes = []
    for _ in range(FLUSHES):
        for one in spends:
            await ledger.record(one)
        start = time.perf_counter()
        await ledger.flush()
        flushes.append((time.perf_counter() - start) * 1e3)
    out["flush_ms_p50"] = statistics.median(flushes)
    out["flush_ms_max"] = max(flushes)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--apps", type=int, default=20)
    parser.add_argument("--models", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        server = RedisServer(work)
        try:
            rows = []
            for name, url in (("sqlite", None), ("sqlite + redis", server.url)):
                ledger = await open_ledger(work / name.replace(" ", ""), url, Metrics(), flush_interval_s=3600)
                try:
                    rows.append((name, await measure(ledger, args.calls, args.apps, args.models)))
                finally:
                    await ledger.close()
        finally:
            server.stop()
    print(f"{args.calls} calls each; flush: {args.apps} apps x {args.models} models in the batch, {FLUSHES} flushes")
    print("| store | record() µs/call | refusal() µs/call | flush p50 ms | flush max ms |")
    print("| --- | --- | --- | --- | --- |")
    for name, found in rows:
        print(f"| {name} | {found['record_us']:.2f} | {found['refusal_us']:.2f} | "
              f"{found['flush_ms_p50']:.2f} | {found['flush_ms_max']:.2f} |")


if __name__ == "__main__":
    asyncio.run(main())
