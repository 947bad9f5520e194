"""Prometheus metrics, fed from the decision record (one place)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from control_plane.decision import Decision

REGISTRY = CollectorRegistry()

DECISIONS = Counter(
    "switchyard_decisions",
    "Routing decisions, by policy, route, model and decision kind.",
    ["policy", "route", "model", "decision"],
    registry=REGISTRY,
)
ROUTER_SECONDS = Histogram(
    "switchyard_router_seconds",
    "Time spent asking the router model, per decision that asked it.",
    ["policy"],
    buckets=(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 1.0, 2.0, 5.0),
    registry=REGISTRY,
)


POLICY_RELOADS = Counter(
    "switchyard_policy_reloads",
    "Policy folder reloads, by result (ok: published; error: rejected, last good kept).",
    ["result"],
    registry=REGISTRY,
)
POLICY_GENERATION = Gauge(
    "switchyard_policy_generation",
    "Generation of the policy snapshot in use (1 at start, +1 per applied reload).",
    registry=REGISTRY,
)


def record(decision: Decision) -> None:
    DECISIONS.labels(decision.policy, decision.route, decision.model, decision.kind).inc()
    if decision.router_ms is not None:
        ROUTER_SECONDS.labels(decision.policy).observe(decision.router_ms / 1000)


def exposition() -> bytes:
    return generate_latest(REGISTRY)

# The guarded path (control_plane/failover.py).
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
