"""The ledger shared through a real redis-server (started here, one per test): sidecars add up one
app's spend and enforce one budget; a Redis that dies or hangs fails open to per-sidecar limits,
shows in logs and metrics, and gets every count made meanwhile when it is back, exactly once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from control_plane.ledger import AppLimits, Ledger, Spend, open_ledger
from control_plane.observability.metrics import Metrics
from harness.redis_server import RedisServer

NOW = datetime(2025, 3, 14, 12, 0, 20, tzinfo=timezone.utc)
DAY_KEY = "switchyard:day:2025-03-14:checkout"
MONTH_KEY = "switchyard:month:2025-03:checkout"
DEADLINE_S = 10.0
BUDGET = AppLimits(usd_per_day=1.0)


def spend(cost: float, model: str = "gpt-4o", **tokens: int) -> Spend:
    return Spend(app="checkout", policy="default", route="code", model=model, cost_usd=cost, at=NOW, **tokens)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[RedisServer]:
    running = RedisServer(tmp_path)
    yield running
    running.stop()


@pytest.fixture()
def peek(server: RedisServer) -> Iterator[redis.Redis]:
    """A plain client, to read what the ledgers wrote."""
    client = redis.Redis.from_url(server.url, decode_responses=True, socket_timeout=2)
    yield client
    client.close()


class Sidecars:
    """Ledgers of separate sidecars (a state dir each) sharing one Redis; closed after the test."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        self.tmp_path = tmp_path
        self.url = url
        self.opened: list[Ledger] = []

    async def open(self, name: str, metrics: Metrics | None = None) -> Ledger:
        ledger = await open_ledger(self.tmp_path / name, self.url, metrics or Metrics(), clock=lambda: NOW,
                                   flush_interval_s=3600, retry_max_s=0.1)
        self.opened.append(ledger)
        return ledger


@pytest.fixture()
async def sidecars(tmp_path: Path, server: RedisServer) -> AsyncIterator[Sidecars]:
    made = Sidecars(tmp_path, server.url)
    yield made
    server.resume()
    for ledger in made.opened:
        await ledger.close()


async def flush_until(ledger: Ledger, done: Any, what: str) -> None:
    """Flush until `done()`: the ledger retries a store that failed after a back-off."""
    deadline = time.monotonic() + DEADLINE_S
    while not done():
        assert time.monotonic() < deadline, what
        await ledger.flush()
        await asyncio.sleep(0.02)


def cost_in_redis(peek: redis.Redis, key: str = DAY_KEY) -> int:
    return int(peek.hget(key, "cost_nano") or 0)


async def test_sidecars_add_up_one_apps_spend_and_both_refuse_once_over(sidecars: Sidecars, peek: redis.Redis) -> None:
    a, b = await sidecars.open("a"), await sidecars.open("b")
    limits = AppLimits(usd_per_day=1.0, tokens_per_minute=1000)
    assert await a.refusal("checkout", limits) is None and await b.refusal("checkout", limits) is None
    await a.record(spend(0.6, input=300, output=200))
    await b.record(spend(0.3, model="small", input=300, output=150, cached_input=40, reasoning=20))
    await a.flush()
    await b.flush()
    # Each sidecar alone is under both limits; together they are at 0.9 USD and 950 tokens.
    await a.flush()
    assert await a.refusal("checkout", limits) is None and await b.refusal("checkout", limits) is None
    await b.record(spend(0.2, model="small", input=10))  # crosses the shared day budget
    await b.flush()
    await a.flush()
    for ledger in (a, b):
        refusal = await ledger.refusal("checkout", limits)
        assert refusal is not None and refusal.code == "budget_exceeded" and "$1.10 spent today" in refusal.message
    assert cost_in_redis(peek) == 1_100_000_000
    assert peek.hget(DAY_KEY, "requests|small") == "2" and peek.hget(MONTH_KEY, "input") == "610"
    assert peek.get("switchyard:tpm:2025-03-14T12:00:checkout") == "960"
    report = await a.report()
    assert report["source"] == "redis"
    today = report["apps"]["checkout"]["today"]
    assert today["tokens"] == {"input": 610, "cached_input": 40, "output": 350, "reasoning": 20}
    assert sorted(today["models"]) == ["gpt-4o", "small"] and today["cost_usd"] == pytest.approx(1.1)


async def test_the_token_limit_is_shared_too(sidecars: Sidecars) -> None:
    a, b = await sidecars.open("a"), await sidecars.open("b")
    limits = AppLimits(tokens_per_minute=1000)
    await a.refusal("checkout", limits)
    await a.record(spend(0, input=400, output=100))
    await b.record(spend(0, input=500))
    await b.flush()
    await a.flush()
    refusal = await a.refusal("checkout", limits)
    assert refusal is not None and refusal.code == "token_rate_limit_exceeded" and refusal.retry_after_s == 40


async def test_the_background_flush_shares_spend_without_being_asked(tmp_path: Path, server: RedisServer) -> None:
    ledgers = [await open_ledger(tmp_path / name, server.url, Metrics(), clock=lambda: NOW, flush_interval_s=0.05)
               for name in ("a", "b")]
    try:
        assert await ledgers[1].refusal("checkout", BUDGET) is None
        await ledgers[0].record(spend(1.0))
        deadline = time.monotonic() + DEADLINE_S
        while await ledgers[1].refusal("checkout", BUDGET) is None:
            assert time.monotonic() < deadline, "b never saw a's spend"
            await asyncio.sleep(0.02)
    finally:
        for ledger in ledgers:
            await ledger.close()


async def test_a_killed_redis_fails_open_and_gets_everything_back_when_it_returns(
        sidecars: Sidecars, server: RedisServer, peek: redis.Redis) -> None:
    metrics = Metrics()
    a, b = await sidecars.open("a", metrics), await sidecars.open("b")
    await a.record(spend(0.4))
    await b.record(spend(0.4))
    await a.flush()
    await b.flush()
    assert sample(metrics, "switchyard_state_store_up", store="redis") == 1
    server.kill()
    with capture_logs() as logs:
        await a.record(spend(0.3))
        await a.flush()
        await b.flush()
    down = [line for line in logs if line["event"] == "state_store_down"]
    assert len(down) == 2 and down[0]["store"] == "redis" and down[0]["log_level"] == "warning"
    assert sample(metrics, "switchyard_state_store_up", store="redis") == 0
    assert sample(metrics, "switchyard_state_store_errors_total", store="redis", operation="sync") >= 1
    # Limits are per sidecar now: a's own 0.7 is under the budget though 1.1 was spent in all.
    assert await a.refusal("checkout", BUDGET) is None
    await a.record(spend(0.3))
    assert await a.refusal("checkout", BUDGET) is not None  # a's own 1.0
    assert await b.refusal("checkout", BUDGET) is None  # b's own 0.4
    report = await a.report()
    assert report["source"] == "local" and report["apps"]["checkout"]["today"]["cost_usd"] == pytest.approx(1.0)
    # Back, empty (no persistence): each sidecar pushes its month again, so nothing is lost.
    server.restart()
    with capture_logs() as logs:
        await flush_until(a, lambda: cost_in_redis(peek) == 1_000_000_000, "a's counts never reached Redis")
    events = [line["event"] for line in logs]
    assert "state_store_reseeded" in events and "state_store_up" in events
    assert sample(metrics, "switchyard_state_store_up", store="redis") == 1
    await flush_until(b, lambda: cost_in_redis(peek) == 1_400_000_000, "b's counts never reached Redis")
    await a.flush()
    assert (await a.report())["apps"]["checkout"]["today"]["requests"] == 4
    assert await b.refusal("checkout", BUDGET) is not None  # shared again: 1.4 in all


async def test_a_hung_redis_times_out_and_a_retried_batch_is_applied_once(
        sidecars: Sidecars, server: RedisServer, peek: redis.Redis) -> None:
    metrics = Metrics()
    a = await sidecars.open("a", metrics)
    await a.record(spend(0.2))
    await a.flush()
    server.pause()
    await a.record(spend(0.3, input=7))
    # Hot path while Redis hangs: no I/O, so no wait.
    await asyncio.wait_for(a.refusal("checkout", BUDGET), 0.5)
    with capture_logs() as logs:
        await a.flush()  # times out: Redis may still apply what was sent once it resumes
    assert [line["event"] for line in logs] == ["state_store_down"] and "Timeout" in logs[0]["error"]
    assert sample(metrics, "switchyard_state_store_errors_total", store="redis", operation="sync") == 1
    server.resume()
    await a.record(spend(0.1))  # goes out after the retried batch, in the same flush
    with capture_logs() as logs:
        await flush_until(a, lambda: sample(metrics, "switchyard_state_store_up", store="redis") == 1,
                          "Redis never came back")
    assert "state_store_reseeded" not in [line["event"] for line in logs]  # Redis kept its data
    assert cost_in_redis(peek) == 600_000_000  # not less (lost) nor 0.9 (a batch applied twice)
    assert peek.hget(DAY_KEY, "input") == "7" and peek.hget(DAY_KEY, "requests") == "3"


async def test_counts_made_while_redis_is_away_survive_a_restart_of_the_sidecar(
        sidecars: Sidecars, server: RedisServer, peek: redis.Redis) -> None:
    a = await sidecars.open("a")
    await a.record(spend(0.2))
    await a.flush()
    server.pause()
    await a.record(spend(0.5))
    await a.flush()  # fails: the count waits in the outbox
    await a.close()  # SIGTERM while Redis is away: nothing is lost
    server.resume()
    again = await sidecars.open("a")  # pushes the outbox as it starts
    assert cost_in_redis(peek) == 700_000_000
    assert (await again.report())["source"] == "redis"


async def test_a_sidecar_new_to_redis_brings_its_months_counts(tmp_path: Path, server: RedisServer,
                                                                 peek: redis.Redis) -> None:
    local = await open_ledger(tmp_path / "a", None, Metrics(), clock=lambda: NOW, flush_interval_s=3600)
    await local.record(spend(0.25))
    await local.close()
    shared = await open_ledger(tmp_path / "a", server.url, Metrics(), clock=lambda: NOW, flush_interval_s=3600)
    try:
        assert cost_in_redis(peek) == 250_000_000 and cost_in_redis(peek, MONTH_KEY) == 250_000_000
        await shared.close()
        again = await open_ledger(tmp_path / "a", server.url, Metrics(), clock=lambda: NOW, flush_interval_s=3600)
        await again.close()
        assert cost_in_redis(peek) == 250_000_000  # once, not again at every start
    finally:
        await shared.close()
