"""The UTC windows spend counts in, named by sortable strings.

- Budgets: calendar days (`2025-01-31`) and months (`2025-01`), in UTC whatever the host's zone.
- `tokens_per_minute`: a fixed window per whole UTC minute (`2025-01-31T23:59`). Each minute
  starts from zero, so up to twice the limit can pass in the 60 s around a minute boundary; the
  price of one counter per app and minute (a sliding window would need one per request).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone


@dataclass(frozen=True, slots=True)
class Windows:
    """The day, month and minute a moment falls in, and that moment (UTC)."""

    now: datetime
    day: str
    month: str
    minute: str

    @property
    def month_first_day(self) -> str:
        return f"{self.month}-01"

    @property
    def next_month_first_day(self) -> str:
        return _next_month(self.now).strftime("%Y-%m-%d")

    def seconds_to_next_day(self) -> int:
        start = self.now.replace(hour=0, minute=0, second=0, microsecond=0)
        return _until(self.now, start + timedelta(days=1))

    def seconds_to_next_month(self) -> int:
        return _until(self.now, _next_month(self.now))

    def seconds_to_next_minute(self) -> int:
        return _until(self.now, self.now.replace(second=0, microsecond=0) + timedelta(minutes=1))


def windows(now: datetime) -> Windows:
    if now.tzinfo is None:
        raise ValueError(f"naive datetime {now!r}: the ledger's windows are UTC; pass an aware datetime")
    if now.tzinfo is not timezone.utc:
        now = now.astimezone(timezone.utc)
    return Windows(now, *_names(int(now.timestamp()) // 60))


@functools.lru_cache(maxsize=16)
def _names(minute: int) -> tuple[str, str, str]:
    """A minute's day, month and minute names. Cached: formatting them is most of the cost of a
    refusal() (formatted once a minute instead of per call)."""
    start = datetime.fromtimestamp(minute * 60, timezone.utc)
    return start.strftime("%Y-%m-%d"), start.strftime("%Y-%m"), start.strftime("%Y-%m-%dT%H:%M")


def _next_month(now: datetime) -> datetime:
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return datetime(year, month, 1, tzinfo=timezone.utc)


def _until(now: datetime, end: datetime) -> int:
    """Whole seconds from now to end, rounded up: a client that waits that long finds the new
    window (and never 0, which would mean "retry at once")."""
    return max(1, math.ceil((end - now).total_seconds()))
