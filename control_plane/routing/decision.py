"""The decision record: ONE per request, produced in one place.

It feeds the response headers (via Envoy dynamic metadata), the structured log line and metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

from router_model.router import NO_ROUTE as NO_ROUTE  # re-exported: one constant for `other`

# Decision kinds (the `x-switchyard-decision` header):
EXPLICIT = "explicit"  # the app named a configured model; the router was not asked
PASSTHROUGH = "passthrough"  # not a chat completion: sent to the default model's provider
REJECTED = "rejected"  # Switchyard answered with an error (reason: the error code)
CACHED = "cached"  # the same user turn was decided before (a retry, or a concurrent twin)
STICKY = "sticky"  # an earlier decision carries on: a tool loop, or `stickiness: conversation`


def routed(tier: str) -> str:
    """A router tier chose (a route, or `other` -> default model): routed:arch-router|embedding."""
    return f"routed:{tier}"


def fallback(reason: str) -> str:
    """No router decision could be had: the default model serves, for `reason`."""
    return f"fallback:{reason}"


def degraded(reason: str) -> str:
    """Arch-Router failed for `reason`; the policy's embedding tier decided instead."""
    return f"degraded:{reason}"


@dataclass(frozen=True)
class Decision:
    policy: str
    policy_version: str
    route: str  # route name, or "other"
    model: str  # configured model name
    kind: str  # routed:<tier> | explicit | passthrough | fallback:<reason> | degraded:<reason>
    router_ms: float | None = None  # time spent asking the router, when it was asked
    app: str = ""  # the calling app (apps.yaml), when apps are declared
    requested_model: str = ""  # what the app sent in `model`, when a policy alias resolved it
    # A scoring router's (the embedding tier's) winning score, and the runner-up with its score.
    score: float | None = None
    runner_up: str | None = None
    runner_up_score: float | None = None

    @property
    def kind_and_reason(self) -> tuple[str, str]:
        """The kind without its reason, and the reason: ("fallback", "router_timeout");
        ("routed:embedding", "") — for metrics and logs, where they are separate labels."""
        head, _, reason = self.kind.partition(":")
        return (head, reason) if head in ("fallback", "degraded") else (self.kind, "")

    def metric_labels(self) -> tuple[str, str, str, str, str, str]:
        """observability/metrics.py's DecisionLabels."""
        kind, reason = self.kind_and_reason
        return (self.app, self.policy, self.route, self.model, kind, reason)

    def metadata(self) -> dict[str, str]:
        """What Envoy turns into the x-switchyard-* response headers (headers.DECISION_HEADERS)."""
        fields = {
            "policy": self.policy,
            "route": self.route,
            "model": self.model,
            "decision": self.kind,
        }
        if self.router_ms is not None:
            fields["router_ms"] = f"{self.router_ms:.1f}"
        if self.app:
            fields["app"] = self.app
        if self.requested_model:
            fields["requested_model"] = self.requested_model
        _, reason = self.kind_and_reason
        if reason:
            fields["reason"] = reason
        fields["policy_version"] = self.policy_version
        return fields

    def log_fields(self) -> dict[str, object]:
        return {
            "app": self.app or None,
            "policy": self.policy,
            "policy_version": self.policy_version,
            "route": self.route,
            "model": self.model,
            "decision": self.kind,
            "router_ms": None if self.router_ms is None else round(self.router_ms, 1),
            "requested_model": self.requested_model or None,
            **({} if self.score is None else {
                "score": round(self.score, 3),
                "runner_up": self.runner_up,
                "runner_up_score": None if self.runner_up_score is None else round(self.runner_up_score, 3),
            }),
        }
