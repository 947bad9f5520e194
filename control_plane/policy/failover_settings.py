"""Failover settings: the policy data that the guarded path's behaviour (control_plane/failover/)
reads. README: "Failover". The policy schema's `failover:` keys (schema.py) are these fields; a
test fails when the two lists drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class FailoverRules:
    """Per model (policy-wide `failover:` merged with the model's own). README: "Failover"."""

    max_attempts: int = 4  # across the whole chain, retries included
    budget_s: float = 600.0  # total time until an answer starts (all attempts and waits)
    connect_retries: int = 1  # same model again after a connect failure / reset before headers
    server_error_retries: int = 1  # same model again after a 5xx
    rate_limit_retries: int = 2  # same model again after a 429 (waiting as it asks)
    backoff_s: float = 0.5  # 429 without Retry-After: base of the jittered exponential back-off
    max_wait_s: float = 10.0  # longest 429 wait on the same model; a longer one falls back at once
    first_token_s: float = 30.0  # streams: attempt start -> first SSE event
    response_s: float = 300.0  # non-streaming: attempt start -> response headers
    stall_s: float = 30.0  # streams: longest silence between bytes once the answer started
    circuit_failures: int = 3  # consecutive failures that open a model's circuit
    circuit_cooldown_s: float = 10.0  # how long an open circuit is skipped before a probe

    def merged(self, overrides: Mapping[str, Any]) -> FailoverRules:
        """These rules with every non-None override applied. A key these rules do not have is a
        bug (the policy schema's `failover:` keys and these fields are one list; a test ties
        them), never silently dropped."""
        unknown = set(overrides) - {f.name for f in fields(self)}
        if unknown:
            raise KeyError(f"not a failover setting: {', '.join(sorted(unknown))}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


DEFAULT_RULES = FailoverRules()
