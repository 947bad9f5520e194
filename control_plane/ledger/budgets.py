"""What an app's limits read, and the check itself: pure, in memory, a few microseconds.

A limit is reached when what was counted in its window is at or over it; the next request is
then refused until the window resets. The request that crossed the line was answered and is
counted in full: limits stop the next request, never one in flight.
"""

from __future__ import annotations

from dataclasses import dataclass

from control_plane.ledger.model import NANO_USD, AppLimits, Refusal, to_nano
from control_plane.ledger.windows import Windows


@dataclass(slots=True)
class AppTotals:
    """An app's cost today and this month and its tokens this minute, each tagged with its
    window. Adding in a newer window starts that window from zero; an older window reads as 0."""

    day: str = ""
    day_nano: int = 0
    month: str = ""
    month_nano: int = 0
    minute: str = ""
    minute_tokens: int = 0

    def add(self, w: Windows, cost_nano: int, tokens: int) -> None:
        self.merge(AppTotals(w.day, cost_nano, w.month, cost_nano, w.minute, tokens))

    def merge(self, other: AppTotals) -> None:
        # Counts of an earlier window (a spend recorded late) are in the stores under their own
        # window and no longer matter to a limit: only the same or a newer window changes these.
        self.day, self.day_nano = _roll(self.day, self.day_nano, other.day, other.day_nano)
        self.month, self.month_nano = _roll(self.month, self.month_nano, other.month, other.month_nano)
        self.minute, self.minute_tokens = _roll(self.minute, self.minute_tokens, other.minute, other.minute_tokens)

    def read(self, w: Windows) -> Spent:
        return Spent(self.day_nano if self.day == w.day else 0,
                     self.month_nano if self.month == w.month else 0,
                     self.minute_tokens if self.minute == w.minute else 0)


@dataclass(frozen=True, slots=True)
class Spent:
    """What counts against an app's limits now."""

    day_nano: int = 0
    month_nano: int = 0
    minute_tokens: int = 0

    def __add__(self, other: Spent) -> Spent:
        return Spent(self.day_nano + other.day_nano, self.month_nano + other.month_nano,
                     self.minute_tokens + other.minute_tokens)


def check(app: str, limits: AppLimits, spent: Spent, w: Windows) -> Refusal | None:
    """The refusal for the app's next request, or None. Over several limits, the one that resets
    last is given: retrying when an earlier one resets would be refused again."""
    over: list[Refusal] = []
    if limits.usd_per_month is not None and spent.month_nano >= to_nano(limits.usd_per_month):
        over.append(Refusal(
            "budget_exceeded",
            f"app {app!r} has reached its budget of {_usd(limits.usd_per_month)} per month (UTC calendar "
            f"month): {_usd(spent.month_nano / NANO_USD)} spent this month; it resets at {w.next_month_first_day}"
            " 00:00 UTC", w.seconds_to_next_month()))
    if limits.usd_per_day is not None and spent.day_nano >= to_nano(limits.usd_per_day):
        over.append(Refusal(
            "budget_exceeded",
            f"app {app!r} has reached its budget of {_usd(limits.usd_per_day)} per day (UTC calendar day): "
            f"{_usd(spent.day_nano / NANO_USD)} spent today; it resets at 00:00 UTC", w.seconds_to_next_day()))
    if limits.tokens_per_minute is not None and spent.minute_tokens >= limits.tokens_per_minute:
        over.append(Refusal(
            "token_rate_limit_exceeded",
            f"app {app!r} has reached its limit of {limits.tokens_per_minute} tokens per minute (input + "
            f"output): {spent.minute_tokens} this minute; it resets at the next whole minute (UTC)",
            w.seconds_to_next_minute()))
    return max(over, key=lambda refusal: refusal.retry_after_s, default=None)


def _roll(window: str, total: int, new_window: str, amount: int) -> tuple[str, int]:
    if new_window > window:
        return new_window, amount
    return window, total + amount if new_window == window else total


def _usd(amount: float) -> str:
    return f"${amount:,.2f}"
