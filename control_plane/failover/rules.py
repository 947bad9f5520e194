"""Failover rules: what each failed attempt leads to, as pure functions (no I/O, no clock).

The guarded path (control_plane/failover/runner.py) runs the attempts; this module decides, for every
outcome, whether to retry the same model (and after how long), go to the next fallback, switch to
the context-window fallbacks, or pass the provider's answer to the app as it is.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from control_plane.apis.provider_errors import read_error
from control_plane.headers import RETRY_AFTER_HEADER
from control_plane.policy.failover_settings import FailoverRules


class Step(enum.Enum):
    RETRY = "retry"  # the same model again, after `wait_s`
    NEXT = "next"  # the next model of the chain
    CONTEXT = "context"  # the model's context_window_fallbacks
    PASS = "pass"  # give the app this answer as it is: a retry cannot fix it


@dataclass(frozen=True)
class Outcome:
    """One attempt's result, before anything reached the app."""

    label: str  # for x-switchyard-attempts: the status ("503"), or what went wrong
    status: int | None = None  # the provider's status, when it answered
    headers: Mapping[str, str] | None = None
    body: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def counts_against_provider(self) -> bool:
        """Failures that say the provider (not the request) is in trouble: these feed the circuit."""
        if self.status is None:
            return True
        return self.status == 429 or self.status >= 500


# Attempt failures without a provider status (the labels in x-switchyard-attempts).
CONNECT_ERROR = "connect_error"  # could not connect
RESET = "reset"  # the connection closed before a complete answer started
TIMEOUT = "timeout"  # no headers (no first event, for streams) within the limit
MALFORMED = "malformed"  # the stream started with something that is not SSE JSON
CIRCUIT_OPEN = "circuit_open"  # skipped: the model's circuit is open
RETRIED_AT_ONCE = (CONNECT_ERROR, RESET)  # the request may never have reached the model

def is_context_length_error(outcome: Outcome) -> bool:
    error = read_error(outcome.body) if outcome.status in (400, 413, 422) else None
    return error is not None and error.context_length_exceeded


def retry_after_s(headers: Mapping[str, str] | None, now: datetime | None = None) -> float | None:
    """The wait a 429 asks for: `retry-after-ms`, else `Retry-After` (seconds or an HTTP date)."""
    if not headers:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        if "retry-after-ms" in lower:
            return max(0.0, float(lower["retry-after-ms"]) / 1000)
        value = lower.get(RETRY_AFTER_HEADER)
        if value is None:
            return None
        if value.strip().replace(".", "", 1).isdigit():
            return max(0.0, float(value))
        when = parsedate_to_datetime(value)
    except (ValueError, TypeError):
        return None
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


def backoff_s(rules: FailoverRules, retry: int, rng: random.Random | None = None) -> float:
    """Exponential back-off with jitter: base * 2^retry, scaled by a random factor in [0.5, 1]."""
    jitter = (rng or random).uniform(0.5, 1.0)
    return float(rules.backoff_s * (2 ** retry) * jitter)


def next_step(
    outcome: Outcome, retries: int, rules: FailoverRules, remaining_s: float,
    rng: random.Random | None = None,
) -> tuple[Step, float]:
    """What to do after a failed attempt; `retries` = retries of this model so far."""
    if outcome.status is None:
        if outcome.label in RETRIED_AT_ONCE and retries < rules.connect_retries:
            return Step.RETRY, 0.0
        return Step.NEXT, 0.0  # a timeout or a broken start: this model is not answering now
    if outcome.status == 429:
        if retries >= rules.rate_limit_retries:
            return Step.NEXT, 0.0
        asked = retry_after_s(outcome.headers)
        wait = asked if asked is not None else backoff_s(rules, retries, rng)
        fits = wait <= rules.max_wait_s and wait < remaining_s
        return (Step.RETRY, wait) if fits else (Step.NEXT, 0.0)
    if outcome.status >= 500:
        return (Step.RETRY, 0.0) if retries < rules.server_error_retries else (Step.NEXT, 0.0)
    if is_context_length_error(outcome):
        return Step.CONTEXT, 0.0
    return Step.PASS, 0.0  # 4xx: the same request would fail the same way anywhere
