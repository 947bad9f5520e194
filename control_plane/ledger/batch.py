"""Spend counted in memory and not yet written: the unit the ledger writes to SQLite (one
transaction per batch, not one per request) and pushes to Redis."""

from __future__ import annotations

from dataclasses import dataclass, field

from control_plane.ledger.budgets import AppTotals
from control_plane.ledger.model import Counts, Spend
from control_plane.ledger.windows import Windows

UsageKey = tuple[str, str, str]  # (day, app, model)
MinuteKey = tuple[str, str]  # (minute, app)


@dataclass(slots=True)
class Batch:
    """Counts per day, app and model; tokens per minute and app; and what they add to each app's
    limits (`views`). `id` names a batch pushed to Redis (so that a retry is applied once)."""

    usage: dict[UsageKey, Counts] = field(default_factory=dict)
    minutes: dict[MinuteKey, int] = field(default_factory=dict)
    views: dict[str, AppTotals] = field(default_factory=dict)
    id: str = ""

    def __bool__(self) -> bool:
        return bool(self.usage or self.minutes)

    def add(self, spend: Spend, w: Windows) -> None:
        """Count a spend, in the windows of its time (`w`)."""
        counts = self.usage.get((w.day, spend.app, spend.model))
        if counts is None:
            counts = self.usage[(w.day, spend.app, spend.model)] = Counts()
        counts.add_spend(spend)
        if spend.rate_tokens:
            key = (w.minute, spend.app)
            self.minutes[key] = self.minutes.get(key, 0) + spend.rate_tokens
        self.views.setdefault(spend.app, AppTotals()).add(w, spend.cost_nano, spend.rate_tokens)

    def merge(self, other: Batch) -> None:
        for key, counts in other.usage.items():
            self.usage.setdefault(key, Counts()).merge(counts)
        for minute_key, tokens in other.minutes.items():
            self.minutes[minute_key] = self.minutes.get(minute_key, 0) + tokens
        for app, totals in other.views.items():
            self.views.setdefault(app, AppTotals()).merge(totals)
