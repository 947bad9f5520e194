"""What the ledger is given and gives back: one answered request's spend, an app's limits, a
refusal; and `Counts`, what a window adds up to.

Money is counted in whole nano-dollars (1e-9 USD), as integers: sums are exact and do not
depend on the order they are added in (SQLite and Redis add integers exactly; floats would
drift), and rounding each request to the nearest nano-dollar loses at most half of one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import ClassVar, Literal

KINDS = ("input", "cached_input", "output", "reasoning")  # token kinds, as in metrics and logs
NANO_USD = 1_000_000_000  # nano-dollars per dollar


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def to_nano(usd: float) -> int:
    return round(usd * NANO_USD)


@dataclass(frozen=True, slots=True)
class Spend:
    """One answered request: who spent, on what, how many tokens of each kind and what it cost.

    `input` excludes cached tokens (`cached_input`); `output` includes `reasoning`, which is also
    given on its own where the provider reports it. `cost_usd` is None for a model without a
    price (counted as an unpriced request, at no cost). `at` is when the answer ended: it picks
    the day, month and minute the spend counts in.
    """

    app: str
    policy: str
    route: str
    model: str
    input: int = 0
    cached_input: int = 0
    output: int = 0
    reasoning: int = 0
    cost_usd: float | None = None
    at: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        if min(self.input, self.cached_input, self.output, self.reasoning) < 0:
            raise ValueError(f"negative token count in {self!r}")
        if self.cost_usd is not None and self.cost_usd < 0:
            raise ValueError(f"negative cost in {self!r}")

    @property
    def rate_tokens(self) -> int:
        """What `tokens_per_minute` counts: input + output. Cache reads are left out, as
        Anthropic's own input-token rate limits leave them out."""
        return self.input + self.output

    @property
    def cost_nano(self) -> int:
        return 0 if self.cost_usd is None else to_nano(self.cost_usd)


@dataclass(frozen=True, slots=True)
class AppLimits:
    """An app's limits from apps.yaml (`budget: {usd_per_day, usd_per_month}`,
    `tokens_per_minute`); None is no limit."""

    usd_per_day: float | None = None
    usd_per_month: float | None = None
    tokens_per_minute: int | None = None

    @property
    def any(self) -> bool:
        return (self.usd_per_day, self.usd_per_month, self.tokens_per_minute) != (None, None, None)


RefusalCode = Literal["budget_exceeded", "token_rate_limit_exceeded"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an app's next request is refused (a 429 in its door's error shape): the error code, a
    message for the app that names the limit, and the whole seconds until that limit's window
    resets (`Retry-After`)."""

    code: RefusalCode
    message: str
    retry_after_s: int


@dataclass(slots=True)
class Counts:
    """What the answered requests of one window (a day or a month), app and model add up to.
    The field names are the SQLite columns and the Redis hash fields."""

    FIELDS: ClassVar[tuple[str, ...]]
    requests: int = 0
    input: int = 0
    cached_input: int = 0
    output: int = 0
    reasoning: int = 0
    cost_nano: int = 0
    unpriced: int = 0  # requests to a model without a price: counted, at no cost

    def add_spend(self, spend: Spend) -> None:
        self.requests += 1
        self.input += spend.input
        self.cached_input += spend.cached_input
        self.output += spend.output
        self.reasoning += spend.reasoning
        self.cost_nano += spend.cost_nano
        self.unpriced += spend.cost_usd is None

    def merge(self, other: Counts) -> None:
        for name in self.FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def values(self) -> tuple[int, ...]:
        return tuple(getattr(self, name) for name in self.FIELDS)


Counts.FIELDS = tuple(f.name for f in fields(Counts))


# One line of a report: (period: "day" or "month", app, model, counts).
Row = tuple[str, str, str, Counts]
