"""The failover rules, outcome by outcome (control_plane/failover/rules.py)."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from control_plane.failover.rules import (
    CONNECT_ERROR,
    MALFORMED,
    RESET,
    TIMEOUT,
    Outcome,
    Step,
    backoff_s,
    is_context_length_error,
    next_step,
    retry_after_s,
)
from control_plane.policy.failover_settings import DEFAULT_RULES, FailoverRules
from control_plane.policy.schema import FailoverSpec

RULES = DEFAULT_RULES  # connect 1, 5xx 1, 429 2 retries; max_wait 10 s


def answered(status: int, headers: dict[str, str] | None = None, error: dict | None = None) -> Outcome:
    return Outcome(str(status), status, headers or {}, json.dumps({"error": error or {}}).encode())


@pytest.mark.parametrize("outcome,retries,expected", [
    (Outcome(CONNECT_ERROR), 0, Step.RETRY),
    (Outcome(RESET), 0, Step.RETRY),
    (Outcome(RESET), 1, Step.NEXT),  # connect_retries used up
    (Outcome(TIMEOUT), 0, Step.NEXT),  # a silent provider is not asked again
    (Outcome(MALFORMED), 0, Step.NEXT),
    (answered(500), 0, Step.RETRY),
    (answered(503), 1, Step.NEXT),
    (answered(400, error={"code": "content_filter", "message": "refused"}), 0, Step.PASS),
    (answered(401), 0, Step.PASS),
    (answered(403), 0, Step.PASS),
    (answered(404), 0, Step.PASS),
    (answered(400, error={"code": "context_length_exceeded", "message": "too long"}), 0, Step.CONTEXT),
    (answered(400, error={"message": "This model's maximum context length is 8192 tokens"}), 0, Step.CONTEXT),
])
def test_each_failure_leads_to_its_step(outcome: Outcome, retries: int, expected: Step) -> None:
    assert next_step(outcome, retries, RULES, remaining_s=600)[0] is expected


def test_429_waits_as_asked_when_it_fits_else_falls_back_at_once() -> None:
    assert next_step(answered(429, {"Retry-After": "1"}), 0, RULES, 600) == (Step.RETRY, 1.0)
    assert next_step(answered(429, {"retry-after-ms": "250"}), 0, RULES, 600) == (Step.RETRY, 0.25)
    assert next_step(answered(429, {"Retry-After": "3600"}), 0, RULES, 600) == (Step.NEXT, 0.0)
    assert next_step(answered(429, {"Retry-After": "5"}), 0, RULES, remaining_s=4) == (Step.NEXT, 0.0)
    assert next_step(answered(429, {"Retry-After": "1"}), 2, RULES, 600) == (Step.NEXT, 0.0)  # retries used


def test_429_without_header_backs_off_exponentially_with_jitter() -> None:
    rng = random.Random(7)
    waits = [next_step(answered(429), n, RULES, 600, rng)[1] for n in range(2)]
    assert 0.25 <= waits[0] <= 0.5 and 0.5 <= waits[1] <= 1.0
    assert len({backoff_s(RULES, 0, random.Random(s)) for s in range(5)}) == 5  # jittered


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 11, 28, tzinfo=timezone.utc)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after_s({"Retry-After": header}, now) == 30
    assert retry_after_s({"Retry-After": "soon"}) is None
    assert retry_after_s({}) is None


def test_context_length_needs_a_4xx_and_a_matching_error() -> None:
    assert not is_context_length_error(answered(500, error={"code": "context_length_exceeded"}))
    assert not is_context_length_error(Outcome("400", 400, {}, b"not json"))
    assert is_context_length_error(answered(400, error={"message": "prompt is too long: 300000 tokens"}))


def test_failover_settings_are_declared_once() -> None:
    """The policy schema's `failover:` keys are exactly the settings' fields, and an override the
    settings do not have is an error, never dropped."""
    from dataclasses import fields
    assert set(FailoverSpec.model_fields) == {f.name for f in fields(FailoverRules)}
    assert DEFAULT_RULES.merged(FailoverSpec(stall_s=5).model_dump()).stall_s == 5
    with pytest.raises(KeyError, match="retries"):
        DEFAULT_RULES.merged({"retries": 3})
