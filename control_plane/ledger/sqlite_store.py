"""The ledger's SQLite file: this sidecar's counts, kept across restarts, and the outbox of
counts not yet added to Redis.

Tables (one row per key; counts are added with upserts):
    usage(day, app, model, requests, input, cached_input, output, reasoning, cost_nano, unpriced)
        everything this sidecar counted, per UTC day; a month is the sum of its days
    minute_tokens(minute, app, tokens)      tokens_per_minute's current window (older ones pruned)
    unsent(batch, day, app, model, ...)     counts not yet in Redis; batch '' until a push tags it
    unsent_minutes(batch, minute, app, tokens)
    meta(key, value)                        schema version; the Redis epoch the outbox counts against

A batch is written in ONE transaction to `usage` and (with Redis) to `unsent`, so a count is in
the outbox if and only if it is in the local totals. WAL with synchronous=NORMAL: a commit costs
no fsync; a crash of the process loses nothing committed (a power cut may lose the last commits).

One process per file: a lock file next to it (`flock`) makes a second Switchyard on the same
state dir fail at start instead of double-counting. Not thread-safe: the ledger calls it from its
one database thread.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

from control_plane.ledger.batch import Batch
from control_plane.ledger.budgets import AppTotals
from control_plane.ledger.model import Counts, Row
from control_plane.ledger.windows import Windows

SCHEMA_VERSION = "1"
_COUNTS = ", ".join(f"{name} INTEGER NOT NULL" for name in Counts.FIELDS)
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage (day TEXT, app TEXT, model TEXT, {_COUNTS},
    PRIMARY KEY (day, app, model)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS minute_tokens (minute TEXT, app TEXT, tokens INTEGER NOT NULL,
    PRIMARY KEY (minute, app)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS unsent (batch TEXT, day TEXT, app TEXT, model TEXT, {_COUNTS},
    PRIMARY KEY (batch, day, app, model)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS unsent_minutes (batch TEXT, minute TEXT, app TEXT, tokens INTEGER NOT NULL,
    PRIMARY KEY (batch, minute, app)) WITHOUT ROWID;
"""


def _upsert(table: str, keys: tuple[str, ...], counts: tuple[str, ...]) -> str:
    columns = (*keys, *counts)
    added = ", ".join(f"{name} = {name} + excluded.{name}" for name in counts)
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {added}")


UPSERT_USAGE = _upsert("usage", ("day", "app", "model"), Counts.FIELDS)
UPSERT_UNSENT = _upsert("unsent", ("batch", "day", "app", "model"), Counts.FIELDS)
UPSERT_MINUTE = _upsert("minute_tokens", ("minute", "app"), ("tokens",))
UPSERT_UNSENT_MINUTE = _upsert("unsent_minutes", ("batch", "minute", "app"), ("tokens",))
COUNT_COLUMNS = ", ".join(Counts.FIELDS)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A batch of the outbox on its way to Redis; `more` says the outbox holds more after it."""

    batch: Batch
    more: bool


class StateDirInUse(Exception):
    pass


class LocalStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = _lock(path.with_suffix(".lock"))
        try:
            self._db = self._open(path)
        except BaseException:
            os.close(self._lock)
            raise

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        # Autocommit mode, explicit transactions (_Transaction). One database thread uses the
        # connection, not the thread that opened it.
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        with _Transaction(db):
            for statement in filter(str.strip, SCHEMA.split(";")):
                db.execute(statement)
            found = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if found is None:
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            elif found[0] != SCHEMA_VERSION:
                raise sqlite3.DatabaseError(f"{path}: ledger schema {found[0]}, this Switchyard reads {SCHEMA_VERSION}")
        return db

    def close(self) -> None:
        self._db.close()
        os.close(self._lock)  # releases the lock

    # ---- writing -----------------------------------------------------------------------------

    def write(self, batch: Batch, w: Windows, outbox: bool) -> None:
        """Add a batch to the totals (and, with Redis, to the outbox), in one transaction."""
        usage = [(day, app, model, *counts.values()) for (day, app, model), counts in batch.usage.items()]
        minutes = [(minute, app, tokens) for (minute, app), tokens in batch.minutes.items()]
        with self._transaction():
            self._db.executemany(UPSERT_USAGE, usage)
            self._db.executemany(UPSERT_MINUTE, minutes)
            self._db.execute("DELETE FROM minute_tokens WHERE minute < ?", (w.minute,))
            if outbox:
                self._db.executemany(UPSERT_UNSENT, [("", *row) for row in usage])
                self._db.executemany(UPSERT_UNSENT_MINUTE, [("", *row) for row in minutes])

    # ---- the outbox --------------------------------------------------------------------------

    def outgoing(self) -> Outgoing | None:
        """The next batch to push: one a push already tagged (it may have been applied: it is
        retried under the same id), else everything untagged, tagged now. None when empty."""
        with self._transaction():
            tagged = self._db.execute(
                "SELECT batch FROM unsent WHERE batch != '' UNION "
                "SELECT batch FROM unsent_minutes WHERE batch != '' LIMIT 1").fetchone()
            batch_id = tagged[0] if tagged else uuid.uuid4().hex
            if not tagged:
                for table in ("unsent", "unsent_minutes"):
                    self._db.execute(f"UPDATE {table} SET batch = ? WHERE batch = ''", (batch_id,))
            batch = self._unsent(batch_id)
            if not batch:
                return None
            more = self._db.execute(
                "SELECT 1 FROM unsent WHERE batch != ?1 UNION SELECT 1 FROM unsent_minutes WHERE batch != ?1",
                (batch_id,)).fetchone() is not None
        return Outgoing(batch, more)

    def sent(self, batch_id: str) -> None:
        with self._transaction():
            for table in ("unsent", "unsent_minutes"):
                self._db.execute(f"DELETE FROM {table} WHERE batch = ?", (batch_id,))

    def reseed(self, epoch: str, w: Windows) -> None:
        """Redis does not hold this sidecar's counts (it lost its data, or never had them): make
        the outbox ONE batch of everything counted this month and this minute, to count against
        `epoch`. What the outbox held before is in those totals."""
        batch_id = uuid.uuid4().hex
        with self._transaction():
            for table in ("unsent", "unsent_minutes"):
                self._db.execute(f"DELETE FROM {table}")
            self._db.execute(
                f"INSERT INTO unsent SELECT ?, day, app, model, {COUNT_COLUMNS} FROM usage "
                "WHERE day >= ? AND day < ?", (batch_id, w.month_first_day, w.next_month_first_day))
            self._db.execute("INSERT INTO unsent_minutes SELECT ?, minute, app, tokens FROM minute_tokens "
                             "WHERE minute = ?", (batch_id, w.minute))
            self._set_meta("epoch", epoch)

    def epoch(self) -> str:
        """The Redis epoch the outbox counts against ('' before the first contact)."""
        return self._meta("epoch") or ""

    # ---- reading -----------------------------------------------------------------------------

    def totals(self, w: Windows) -> dict[str, AppTotals]:
        """Each app's totals in the windows of `w`, as its limits read them."""
        found: dict[str, AppTotals] = {}
        for app, day_nano, month_nano in self._db.execute(
                "SELECT app, SUM(CASE WHEN day = ? THEN cost_nano ELSE 0 END), SUM(cost_nano) FROM usage "
                "WHERE day >= ? AND day < ? GROUP BY app", (w.day, w.month_first_day, w.next_month_first_day)):
            found[app] = AppTotals(w.day, day_nano, w.month, month_nano)
        for app, tokens in self._db.execute("SELECT app, tokens FROM minute_tokens WHERE minute = ?", (w.minute,)):
            found.setdefault(app, AppTotals()).merge(AppTotals(minute=w.minute, minute_tokens=tokens))
        return found

    def rows(self, w: Windows) -> list[Row]:
        """Per app and model: today's and this month's counts (for the report)."""
        out: list[Row] = []
        for day, app, model, *values in self._db.execute(
                f"SELECT day, app, model, {COUNT_COLUMNS} FROM usage WHERE day >= ? AND day < ?",
                (w.month_first_day, w.next_month_first_day)):
            out.append(("month", app, model, Counts(*values)))
            if day == w.day:
                out.append(("day", app, model, Counts(*values)))
        return out

    # ---- helpers -----------------------------------------------------------------------------

    def _unsent(self, batch_id: str) -> Batch:
        batch = Batch(id=batch_id)
        for day, app, model, *values in self._db.execute(
                f"SELECT day, app, model, {COUNT_COLUMNS} FROM unsent WHERE batch = ?", (batch_id,)):
            batch.usage[(day, app, model)] = Counts(*values)
        for minute, app, tokens in self._db.execute(
                "SELECT minute, app, tokens FROM unsent_minutes WHERE batch = ?", (batch_id,)):
            batch.minutes[(minute, app)] = tokens
        return batch

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                         (key, value))

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


def _lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StateDirInUse(f"{path.parent} is in use by another Switchyard: each sidecar needs its own "
                            "state dir (--state-dir)") from None
    return fd


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): the connection runs in autocommit mode so
    that each transaction is explicit, and takes the write lock up front."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
