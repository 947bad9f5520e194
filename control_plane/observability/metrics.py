"""Prometheus metrics, fed from the decision record (one place) and from Envoy's access log
(status and total time, which only Envoy sees for the direct path)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from control_plane.routing.decision import Decision

disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series: they double the series count for nothing
REGISTRY = CollectorRegistry()
# 1 ms to 10 s: router decisions (a few ms) and whole LLM calls (seconds) both resolve.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

DECISIONS = Counter(
    "switchyard_decisions",
    "Routing decisions, by app, policy, route, model, decision kind and reason (fallback and "
    "degraded decisions carry the reason; others an empty one).",
    ["app", "policy", "route", "model", "decision", "reason"],
    registry=REGISTRY,
)
REJECTIONS = Counter(
    "switchyard_rejections",
    "Requests Switchyard answered with an error itself, by app and reason (the error code).",
    ["app", "reason"],
    registry=REGISTRY,
)
ROUTER_SECONDS = Histogram(
    "switchyard_router_seconds",
    "Time spent asking the router model, per decision that asked it.",
    ["policy"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
REQUESTS = Counter(
    "switchyard_requests",
    "Requests answered, by app, policy, route, the model that answered, and HTTP status "
    "(from Envoy's access log).",
    ["app", "policy", "route", "model", "status"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "switchyard_request_duration_seconds",
    "Total time of a request as Envoy saw it, from the first byte in to the last byte out.",
    ["app", "policy", "route", "model"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)

DECISION_CACHE_ENTRIES = Gauge(
    "switchyard_decision_cache_entries",
    "Router decisions kept for reuse (per user turn or conversation), per policy.",
    ["policy"],
    registry=REGISTRY,
)

POLICY_RELOADS = Counter(
    "switchyard_policy_reloads",
    "Policy folder reloads, by result (ok: published; error: rejected, last good kept).",
    ["result"],
    registry=REGISTRY,
)
for _result in ("ok", "error"):
    POLICY_RELOADS.labels(_result)  # both series exist (at 0) before the first reload
POLICY_GENERATION = Gauge(
    "switchyard_policy_generation",
    "Generation of the policy snapshot in use (1 at start, +1 per applied reload).",
    registry=REGISTRY,
)


def record(decision: Decision) -> None:
    kind, reason = decision.kind_and_reason
    DECISIONS.labels(decision.app, decision.policy, decision.route, decision.model, kind, reason).inc()
    if decision.router_ms is not None:
        ROUTER_SECONDS.labels(decision.policy).observe(decision.router_ms / 1000)


def exposition() -> bytes:
    return generate_latest(REGISTRY)


# The guarded path (control_plane/failover/runner.py).
ATTEMPTS = Counter(
    "switchyard_attempts",
    "Provider attempts on the guarded path, by policy, model and result (status or error).",
    ["policy", "model", "result"],
    registry=REGISTRY,
)
STREAM_ERRORS = Counter(
    "switchyard_stream_errors",
    "Streams that broke after the app got the first event (stall, cut, malformed, no [DONE]).",
    ["model"],
    registry=REGISTRY,
)
CONTINUATIONS = Counter(
    "switchyard_stream_continuations",
    "Broken streams finished by a fallback that continued the partial answer.",
    ["broken_model", "model"],
    registry=REGISTRY,
)
CIRCUIT_OPEN = Gauge(
    "switchyard_circuit_open",
    "1 while a model's circuit is open or half-open (skipped, or waiting for a probe), else 0.",
    ["provider", "upstream_model"],
    registry=REGISTRY,
)
