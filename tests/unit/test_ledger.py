"""The spend ledger on its own SQLite file: windows, limits and Retry-After, persistence across a
restart, batched writes, and a file that cannot be written (control_plane/ledger/)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from control_plane.ledger import AppLimits, Ledger, LedgerError, Spend, default_state_dir, open_ledger
from control_plane.ledger.batch import Batch
from control_plane.ledger.sqlite_store import LocalStore
from control_plane.ledger.windows import windows
from control_plane.observability.metrics import Metrics

UTC = timezone.utc
NOON = datetime(2025, 3, 14, 12, 0, 30, tzinfo=UTC)


class Clock:
    """The ledger's `now`, moved by the test."""

    def __init__(self, now: datetime = NOON) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def spend(app: str = "checkout", cost: float | None = 0.0, at: datetime = NOON, model: str = "gpt-4o",
          **tokens: int) -> Spend:
    return Spend(app=app, policy="default", route="code", model=model, cost_usd=cost, at=at, **tokens)


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


Opener = Callable[..., Any]


@pytest.fixture()
async def opened(tmp_path: Path) -> AsyncIterator[Opener]:
    """Opens ledgers in tmp_path/state (flushing only when told) and closes them after the test."""
    ledgers: list[Ledger] = []

    async def open_(clock: Clock | None = None, metrics: Metrics | None = None, **options: Any) -> Ledger:
        options.setdefault("flush_interval_s", 3600)
        ledger = await open_ledger(tmp_path / "state", None, metrics or Metrics(), clock=clock or Clock(), **options)
        ledgers.append(ledger)
        return ledger

    yield open_
    for ledger in ledgers:
        await ledger.close()


# ---- windows ---------------------------------------------------------------------------------


def test_windows_are_utc_calendar_days_months_and_minutes() -> None:
    w = windows(datetime(2025, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC))
    assert (w.day, w.month, w.minute) == ("2025-12-31", "2025-12", "2025-12-31T23:59")
    # Half a second to go is one second of Retry-After, never zero.
    assert (w.seconds_to_next_minute(), w.seconds_to_next_day(), w.seconds_to_next_month()) == (1, 1, 1)
    assert w.next_month_first_day == "2026-01-01"
    # Another zone is converted: 01:30 in UTC+2 is still the previous UTC day.
    east = windows(datetime(2025, 3, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))))
    assert (east.day, east.month) == ("2025-02-28", "2025-02")
    assert east.seconds_to_next_day() == 30 * 60
    assert windows(NOON).seconds_to_next_month() == (17 * 86400 + 12 * 3600 - 30)  # to 2025-04-01
    with pytest.raises(ValueError, match="naive"):
        windows(datetime(2025, 1, 1))


# ---- limits ----------------------------------------------------------------------------------


async def test_a_day_budget_refuses_the_request_after_the_one_that_crossed_it(opened: Opener) -> None:
    clock = Clock()
    ledger = await opened(clock)
    limits = AppLimits(usd_per_day=1.0)
    await ledger.record(spend(cost=0.6))
    assert await ledger.refusal("checkout", limits) is None
    await ledger.record(spend(cost=0.5))  # crosses the line: counted in full
    refusal = await ledger.refusal("checkout", limits)
    assert refusal is not None and refusal.code == "budget_exceeded"
    assert refusal.retry_after_s == 12 * 3600 - 30  # to 00:00 UTC
    assert "$1.00 per day" in refusal.message and "$1.10 spent today" in refusal.message
    assert await ledger.refusal("search", limits) is None  # another app's budget is its own
    assert (await ledger.report())["apps"]["checkout"]["today"]["cost_usd"] == pytest.approx(1.1)
    clock.now = datetime(2025, 3, 15, 0, 0, 0, tzinfo=UTC)  # a new UTC day
    assert await ledger.refusal("checkout", limits) is None


async def test_a_limit_reached_exactly_refuses(opened: Opener) -> None:
    ledger = await opened()
    await ledger.record(spend(cost=0.25))
    await ledger.record(spend(cost=0.75))
    assert await ledger.refusal("checkout", AppLimits(usd_per_day=1.0)) is not None
    assert await ledger.refusal("checkout", AppLimits(usd_per_day=1.000001)) is None
    assert await ledger.refusal("checkout", AppLimits()) is None  # no limits: never refused


async def test_a_month_budget_adds_up_the_days_and_resets_with_the_calendar_month(opened: Opener) -> None:
    clock = Clock(datetime(2025, 1, 30, 10, 0, tzinfo=UTC))
    ledger = await opened(clock)
    limits = AppLimits(usd_per_day=5.0, usd_per_month=2.0)
    await ledger.record(spend(cost=1.5, at=clock.now))
    clock.now = datetime(2025, 1, 31, 22, 0, tzinfo=UTC)
    assert await ledger.refusal("checkout", limits) is None
    await ledger.record(spend(cost=0.5, at=clock.now))
    refusal = await ledger.refusal("checkout", limits)
    assert refusal is not None and "per month" in refusal.message and "2025-02-01 00:00 UTC" in refusal.message
    assert refusal.retry_after_s == 2 * 3600
    clock.now = datetime(2025, 2, 1, 0, 0, 1, tzinfo=UTC)
    assert await ledger.refusal("checkout", limits) is None


async def test_tokens_per_minute_counts_input_and_output_in_each_utc_minute(opened: Opener) -> None:
    clock = Clock(datetime(2025, 3, 14, 12, 0, 20, 200_000, tzinfo=UTC))
    ledger = await opened(clock)
    limits = AppLimits(tokens_per_minute=1000)
    # Cache reads are not counted; reasoning is part of output.
    await ledger.record(spend(at=clock.now, input=600, cached_input=5000, output=300, reasoning=200))
    assert await ledger.refusal("checkout", limits) is None
    await ledger.record(spend(at=clock.now, input=50, output=50))
    refusal = await ledger.refusal("checkout", limits)
    assert refusal is not None and refusal.code == "token_rate_limit_exceeded"
    assert refusal.retry_after_s == 40  # 39.8 s to 12:01:00, rounded up
    assert "1000 tokens per minute" in refusal.message and "1000 this minute" in refusal.message
    clock.now = datetime(2025, 3, 14, 12, 1, 0, tzinfo=UTC)
    assert await ledger.refusal("checkout", limits) is None


async def test_over_several_limits_the_one_that_resets_last_is_given(opened: Opener) -> None:
    ledger = await opened()
    await ledger.record(spend(cost=3.0, input=2000))
    refusal = await ledger.refusal("checkout", AppLimits(usd_per_day=1.0, usd_per_month=100.0, tokens_per_minute=10))
    assert refusal is not None and refusal.code == "budget_exceeded" and "per day" in refusal.message


async def test_a_spend_recorded_late_counts_in_its_own_day(opened: Opener) -> None:
    clock = Clock(datetime(2025, 3, 15, 0, 0, 2, tzinfo=UTC))
    ledger = await opened(clock)
    await ledger.record(spend(cost=0.5, at=datetime(2025, 3, 15, 0, 0, 1, tzinfo=UTC)))
    # An answer that ended before midnight but is recorded after it: yesterday's, this month's.
    await ledger.record(spend(cost=2.0, at=datetime(2025, 3, 14, 23, 59, 59, tzinfo=UTC)))
    assert await ledger.refusal("checkout", AppLimits(usd_per_day=1.0)) is None
    assert await ledger.refusal("checkout", AppLimits(usd_per_month=2.5)) is not None
    report = await ledger.report()
    assert report["apps"]["checkout"]["today"]["cost_usd"] == 0.5
    assert report["apps"]["checkout"]["month"]["cost_usd"] == 2.5


async def test_a_model_without_a_price_counts_its_tokens_but_no_cost(opened: Opener) -> None:
    ledger = await opened()
    await ledger.record(spend(cost=None, model="local", input=10, output=3))
    await ledger.record(spend(cost=0.002, input=5, cached_input=7, output=4, reasoning=2))
    today = (await ledger.report())["apps"]["checkout"]["today"]
    assert today["requests"] == 2 and today["unpriced_requests"] == 1
    assert today["tokens"] == {"input": 15, "cached_input": 7, "output": 7, "reasoning": 2}
    assert today["cost_usd"] == 0.002
    assert today["models"]["local"] == {"requests": 1, "tokens": {"input": 10, "cached_input": 0, "output": 3,
                                                                  "reasoning": 0},
                                        "cost_usd": 0.0, "unpriced_requests": 1}


def test_spends_are_checked() -> None:
    with pytest.raises(ValueError, match="negative token count"):
        spend(input=-1)
    with pytest.raises(ValueError, match="negative cost"):
        spend(cost=-0.1)


# ---- persistence -----------------------------------------------------------------------------


async def test_a_budget_still_refuses_after_a_restart(opened: Opener, tmp_path: Path) -> None:
    clock = Clock()
    ledger = await opened(clock)
    limits = AppLimits(usd_per_day=1.0, tokens_per_minute=100)
    await ledger.record(spend(cost=1.25, input=60, output=40))
    await ledger.record(spend(app="search", cost=0.1, model="small", input=1))
    await ledger.close()  # a graceful stop: no explicit flush before it
    again = await opened(clock)
    refusal = await again.refusal("checkout", limits)
    assert refusal is not None and refusal.code == "budget_exceeded"
    clock.now += timedelta(days=1)  # a new day: the budget is free, the minute's tokens long gone
    assert await again.refusal("checkout", limits) is None
    clock.now -= timedelta(days=1) - timedelta(seconds=29)  # the same minute: its tokens were kept
    refusal = await again.refusal("checkout", AppLimits(tokens_per_minute=100))
    assert refusal is not None and refusal.code == "token_rate_limit_exceeded"
    report = await again.report()
    assert report["source"] == "local"
    assert report["apps"]["search"]["month"]["models"]["small"]["tokens"]["input"] == 1
    assert report["apps"]["checkout"]["month"]["cost_usd"] == 1.25


async def test_writes_are_batched_at_each_flush_not_made_per_request(opened: Opener, tmp_path: Path) -> None:
    ledger = await opened()
    for _ in range(500):
        await ledger.record(spend(cost=0.001, input=1))
    reader = sqlite3.connect(tmp_path / "state" / "ledger.sqlite3")
    try:
        assert reader.execute("SELECT COUNT(*) FROM usage").fetchone() == (0,)
        await ledger.flush()
        # 500 requests of one app and model on one day: one row, written by one flush.
        assert reader.execute("SELECT requests, input, cost_nano FROM usage").fetchall() == [(500, 500, 500_000_000)]
    finally:
        reader.close()


async def test_the_background_flush_writes_without_being_asked(opened: Opener, tmp_path: Path) -> None:
    ledger = await opened(flush_interval_s=0.05)
    await ledger.record(spend(cost=0.5))
    reader = sqlite3.connect(tmp_path / "state" / "ledger.sqlite3")
    deadline = time.monotonic() + 5
    try:
        while reader.execute("SELECT COUNT(*) FROM usage").fetchone() != (1,):
            assert time.monotonic() < deadline, "the background flush never wrote"
            await asyncio.sleep(0.02)
    finally:
        reader.close()


async def test_a_failed_write_keeps_the_counts_for_the_next_flush(opened: Opener) -> None:
    metrics = Metrics()
    ledger = await opened(metrics=metrics)
    store = ledger._local
    real_write = store.write
    failures = iter([sqlite3.OperationalError("database or disk is full")])

    def write(*args: Any) -> None:
        for error in failures:
            raise error
        real_write(*args)

    store.write = write  # type: ignore[method-assign]
    await ledger.record(spend(cost=0.5))
    with capture_logs() as logs:
        await ledger.flush()
    assert [line["event"] for line in logs] == ["state_store_down"]
    assert "disk is full" in logs[0]["error"] and logs[0]["store"] == "sqlite"
    assert sample(metrics, "switchyard_state_store_up", store="sqlite") == 0
    assert sample(metrics, "switchyard_state_store_errors_total", store="sqlite", operation="write") == 1
    assert await ledger.refusal("checkout", AppLimits(usd_per_day=0.5)) is not None  # still counted
    await ledger.record(spend(cost=0.25))
    with capture_logs() as logs:
        await ledger.flush()
    assert [line["event"] for line in logs] == ["state_store_up"]
    assert sample(metrics, "switchyard_state_store_up", store="sqlite") == 1
    today = (await ledger.report())["apps"]["checkout"]["today"]
    assert (today["requests"], today["cost_usd"]) == (2, 0.75)


def test_the_outbox_retries_a_tagged_batch_before_new_counts_and_a_reseed_replaces_it(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "ledger.sqlite3")
    try:
        w = windows(NOON)

        def batch(*spends: Spend) -> Batch:
            made = Batch()
            for one in spends:
                made.add(one, windows(one.at))
            return made

        store.write(batch(spend(cost=0.1, input=5)), w, outbox=True)
        first = store.outgoing()
        assert first is not None and not first.more and first.batch.id
        assert first.batch.minutes == {("2025-03-14T12:00", "checkout"): 5}
        store.write(batch(spend(cost=0.2)), w, outbox=True)  # while the first push is in doubt
        again = store.outgoing()
        assert again is not None and again.batch.id == first.batch.id and again.more  # the same id: applied once
        assert again.batch.usage[("2025-03-14", "checkout", "gpt-4o")].cost_nano == 100_000_000
        store.sent(first.batch.id)
        second = store.outgoing()
        assert second is not None and second.batch.id != first.batch.id and not second.more
        assert second.batch.usage[("2025-03-14", "checkout", "gpt-4o")].cost_nano == 200_000_000
        # A Redis without this sidecar's counts: the outbox becomes the month's totals, once.
        last_month = spend(cost=5.0, at=datetime(2025, 2, 28, 23, 0, tzinfo=UTC))
        store.write(batch(last_month, spend(cost=0.4, at=datetime(2025, 3, 1, tzinfo=UTC))), w, outbox=True)
        store.reseed("epoch-2", w)
        assert store.epoch() == "epoch-2"
        reseeded = store.outgoing()
        assert reseeded is not None and not reseeded.more
        assert {day: counts.cost_nano for (day, _, _), counts in reseeded.batch.usage.items()} == {
            "2025-03-14": 300_000_000, "2025-03-01": 400_000_000}
        store.sent(reseeded.batch.id)
        assert store.outgoing() is None
    finally:
        store.close()


# ---- opening ---------------------------------------------------------------------------------


async def test_one_state_dir_serves_one_sidecar(opened: Opener) -> None:
    first = await opened()
    with pytest.raises(LedgerError, match="in use by another Switchyard.*--state-dir"):
        await opened()
    await first.close()
    await opened()  # free again once closed


async def test_a_state_dir_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(LedgerError, match="cannot keep the ledger in .*--state-dir"):
        await open_ledger(tmp_path / "file" / "state", None, Metrics())
    with pytest.raises(LedgerError, match="redis://host:port/db"):
        await open_ledger(tmp_path / "state", "http://127.0.0.1:6379", Metrics())


def test_the_default_state_dir_is_xdg_state_home_or_local_state() -> None:
    assert default_state_dir({"XDG_STATE_HOME": "/var/lib", "HOME": "/home/a"}) == Path("/var/lib/switchyard")
    # The XDG spec: a relative XDG_STATE_HOME is invalid and ignored.
    assert default_state_dir({"XDG_STATE_HOME": "state", "HOME": "/home/a"}) == Path(
        "/home/a/.local/state/switchyard")
    assert default_state_dir({"HOME": "/home/a"}) == Path("/home/a/.local/state/switchyard")
