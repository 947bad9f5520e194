"""The ledger: counts each answered request, says whether an app's next request is refused, and
keeps the counts in SQLite (this sidecar's, across restarts) and Redis (every sidecar's).

Hot path, in memory only: `record()` adds to the pending batch and to this sidecar's totals;
`refusal()` reads totals and compares (microseconds, no I/O). A flush every `flush_interval_s`
(and on `close()`) writes the pending batch to SQLite in one transaction, on the ledger's own
thread, then with Redis syncs: pushes the outbox and reads back the watched apps' shared totals.

What `refusal()` reads for an app:
- Redis up and the app's shared totals known: the shared totals from the last sync, plus what
  this sidecar counted since (written or not). Other sidecars' spend shows within a flush interval.
- Otherwise (no Redis, Redis down, or an app first asked about since the last sync): this
  sidecar's own totals. So losing Redis fails open to per-sidecar limits, never to refusals.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

import structlog
from redis.exceptions import RedisError

from control_plane.ledger.batch import Batch
from control_plane.ledger.budgets import AppTotals, Spent, check
from control_plane.ledger.health import StoreHealth
from control_plane.ledger.model import AppLimits, Refusal, Spend, utc_now
from control_plane.ledger.redis_store import SharedStore
from control_plane.ledger.report import build_report
from control_plane.ledger.sqlite_store import LocalStore
from control_plane.ledger.windows import Windows, windows
from control_plane.observability.metrics import Metrics

log = structlog.get_logger("switchyard.ledger")
T = TypeVar("T")

FLUSH_INTERVAL_S = 0.5  # how stale another sidecar's spend may be; what a SIGKILL may lose
RETRY_MAX_S = 30.0  # longest back-off between tries of a Redis that does not answer
# Pushes per sync at most: a batch a failed push tagged, a reseed, the new counts; one spare.
MAX_ROUNDS = 4
REDIS_ERRORS = (RedisError, OSError)  # OSError: a socket error redis-py did not wrap


class Ledger:
    """One per sidecar, in the control plane (workers ask it through the control plane, as they
    do for rate limits). Made by `open_ledger()`; `close()` it on the way out."""

    def __init__(self, local: LocalStore, shared: SharedStore | None, metrics: Metrics, *,
                 clock: Callable[[], datetime] = utc_now, flush_interval_s: float = FLUSH_INTERVAL_S,
                 retry_max_s: float = RETRY_MAX_S) -> None:
        self._local = local
        self._shared = shared
        self._clock = clock
        self._flush_interval_s = flush_interval_s
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="switchyard-ledger")  # SQLite's only thread
        self._sqlite_health = StoreHealth("sqlite", str(local.path), metrics, retry_max_s)
        self._redis_health = StoreHealth("redis", shared.url, metrics, retry_max_s) if shared else None
        self._own: dict[str, AppTotals] = {}  # this sidecar's totals: SQLite's plus the memory's
        self._pending = Batch()  # recorded, not yet written
        self._writing: Batch | None = None  # being written to SQLite
        self._unsynced: dict[str, AppTotals] = {}  # written, not yet in the shared totals read back
        self._shared_totals: dict[str, AppTotals] = {}  # watched apps' totals at the last sync
        self._watched: set[str] = set()  # apps with limits: their shared totals are read each sync
        self._epoch = ""  # the Redis epoch the outbox counts against
        self._flushing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        """Load this sidecar's totals, push what the last run left for Redis, start flushing."""
        w = windows(self._clock())
        self._own = await self._db(self._local.totals, w)
        self._epoch = await self._db(self._local.epoch)
        self._sqlite_health.ok()
        await self.flush()
        self._task = asyncio.create_task(self._flush_every_interval(), name="switchyard-ledger-flush")

    async def record(self, spend: Spend) -> None:
        """Count one answered request (every one, also when it crossed a limit)."""
        w = windows(spend.at)
        self._pending.add(spend, w)
        self._own.setdefault(spend.app, AppTotals()).add(w, spend.cost_nano, spend.rate_tokens)

    async def refusal(self, app: str, limits: AppLimits, now: datetime | None = None) -> Refusal | None:
        """Why the app's next request must be refused, or None to serve it. No I/O."""
        if not limits.any:
            return None
        w = windows(now or self._clock())
        return check(app, limits, self._spent(app, w), w)

    async def report(self, now: datetime | None = None) -> dict[str, Any]:
        """Per app and model, today's and this month's usage (see report.py): every sidecar's
        when Redis answers, else this sidecar's (`source` says which)."""
        w = windows(now or self._clock())
        await self.flush(now)
        if self._shared is not None and self._redis_health is not None and self._redis_health.up:
            try:
                return build_report(await self._shared.rows(w), w, "redis")
            except REDIS_ERRORS as error:
                self._redis_health.failed("report", error)
        return build_report(await self._db(self._local.rows, w), w, "local")

    async def flush(self, now: datetime | None = None) -> None:
        """Write what was counted to SQLite; with Redis (when it is due a try), push the outbox
        and read the watched apps' shared totals. Never raises for a store that fails."""
        async with self._flushing:
            w = windows(now or self._clock())
            await self._write(w)
            if self._redis_health is not None and self._redis_health.due():
                await self._sync(w)

    async def close(self) -> None:
        """Stop flushing, flush once more, close the stores. Everything counted is then in
        SQLite; what Redis has not got waits in the outbox for the next start."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            async with self._flushing:  # never cancel a flush half way
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
        if self._shared is not None:
            await self._shared.close()
        await self._db(self._local.close)
        self._thread.shutdown()

    # ---- what limits read ----------------------------------------------------------------------

    def _spent(self, app: str, w: Windows) -> Spent:
        if self._redis_health is not None:
            self._watched.add(app)
            shared = self._shared_totals.get(app)
            if shared is not None and self._redis_health.up:
                writing = self._writing.views.get(app) if self._writing is not None else None
                since = (self._unsynced.get(app), writing, self._pending.views.get(app))
                return sum((totals.read(w) for totals in since if totals is not None), shared.read(w))
        own = self._own.get(app)
        return own.read(w) if own is not None else Spent()

    # ---- flushing -----------------------------------------------------------------------------

    async def _flush_every_interval(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval_s)
            try:
                await self.flush()
            except Exception:  # a bug must not stop the counting for good
                log.exception("ledger_flush_failed")

    async def _write(self, w: Windows) -> None:
        batch, self._pending = self._pending, Batch()
        if not batch:
            return
        self._writing = batch
        try:
            await self._db(self._local.write, batch, w, self._shared is not None)
        except Exception as error:  # sqlite3.Error, OSError (disk full, file gone)
            batch.merge(self._pending)  # nothing is lost: the next flush tries again
            self._pending = batch
            self._sqlite_health.failed("write", error)
            return
        finally:
            self._writing = None
        self._sqlite_health.ok()
        if self._shared is not None:
            for app, totals in batch.views.items():
                self._unsynced.setdefault(app, AppTotals()).merge(totals)

    async def _sync(self, w: Windows) -> None:
        assert self._shared is not None and self._redis_health is not None
        try:
            for _ in range(MAX_ROUNDS):
                outgoing = await self._db(self._local.outgoing)
                batch = outgoing.batch if outgoing is not None else None
                reply = await self._shared.sync(self._epoch, batch, self._watched, w)
                if reply.epoch != self._epoch:
                    await self._reseed(w)
                    continue
                if batch is not None:
                    await self._db(self._local.sent, batch.id)
                if outgoing is None or not outgoing.more:
                    # Everything written so far is in Redis now, and in these totals.
                    self._shared_totals = reply.totals
                    self._unsynced.clear()
                    self._redis_health.ok()
                    return
        except REDIS_ERRORS as error:
            self._redis_health.failed("sync", error)
        except sqlite3.Error as error:  # the outbox could not be read or updated: tried again next flush
            self._sqlite_health.failed("outbox", error)

    async def _reseed(self, w: Windows) -> None:
        """Redis does not hold this sidecar's counts: it is new to it, or it lost its data (the
        epoch is gone or changed). Push this sidecar's totals of the month again."""
        assert self._shared is not None
        epoch = await self._shared.claim_epoch()
        await self._db(self._local.reseed, epoch, w)
        if self._epoch:
            log.warning("state_store_reseeded", store="redis", where=self._shared.url,
                        reason="the shared counts are gone (Redis restarted without persistence, or was "
                               "flushed); pushing this sidecar's totals of the month again")
        self._epoch = epoch

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, functools.partial(fn, *args))
