"""Prometheus metrics, fed from the decision record (one place) and from Envoy's access log
(status and total time, which only Envoy sees for the direct path).

One `Metrics` per process, passed to what records (never a module global). Under `switchyard up`
the control plane and every processor worker record into prometheus-client's multiprocess files
(`use_multiprocess_dir`), and /metrics sums them: counts are per sidecar, whichever worker
served a request, and a dead worker's counts are kept.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)

# A decision's labels: app, policy, route, model, decision kind (without its reason), reason.
DecisionLabels = tuple[str, str, str, str, str, str]

disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series: they double the series count for nothing
# 1 ms to 10 s: router decisions (a few ms) and whole LLM calls (seconds) both resolve.
# Every per-request series is labelled so (observability/access_log.py: Entry.labels()).
REQUEST_LABELS = ("app", "policy", "route", "model")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own variable


def use_multiprocess_dir(directory: Path) -> None:
    """Record into `directory` from now on, in this process and the workers it starts (they
    inherit the variable). Call before the first Metrics() of the process."""
    os.environ[MULTIPROCESS_ENV] = str(directory)
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def worker_died(pid: int) -> None:
    """A dead worker's live gauges stop counting (its counters are kept)."""
    if os.environ.get(MULTIPROCESS_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.decisions = Counter(
            "switchyard_decisions",
            "Routing decisions, by app, policy, route, model, decision kind and reason (fallback and "
            "degraded decisions carry the reason; others an empty one).",
            [*REQUEST_LABELS, "decision", "reason"], registry=registry)
        self.rejections = Counter(
            "switchyard_rejections",
            "Requests Switchyard answered with an error itself, by app and reason (the error code).",
            ["app", "reason"], registry=registry)
        self.router_seconds = Histogram(
            "switchyard_router_seconds", "Time spent asking the router model, per decision that asked it.",
            ["policy"], buckets=LATENCY_BUCKETS, registry=registry)
        self.requests = Counter(
            "switchyard_requests",
            "Requests answered, by app, policy, route, the model that answered, and HTTP status "
            "(from Envoy's access log).",
            [*REQUEST_LABELS, "status"], registry=registry)
        self.request_seconds = Histogram(
            "switchyard_request_duration_seconds",
            "Total time of a request as Envoy saw it, from the first byte in to the last byte out.",
            list(REQUEST_LABELS), buckets=LATENCY_BUCKETS, registry=registry)
        self.decision_cache_entries = Gauge(
            "switchyard_decision_cache_entries",
            "Router decisions kept for reuse (per user turn or conversation), per policy.",
            ["policy"], registry=registry, multiprocess_mode="livesum")
        self.policy_reloads = Counter(
            "switchyard_policy_reloads",
            "Policy folder reloads, by result (ok: published; error: rejected, last good kept).",
            ["result"], registry=registry)
        for result in ("ok", "error"):
            self.policy_reloads.labels(result)  # both series exist (at 0) before the first reload
        self.policy_generation = Gauge(
            "switchyard_policy_generation",
            "Generation of the policy snapshot in use (1 at start, +1 per applied reload).",
            registry=registry, multiprocess_mode="livemax")
        # The guarded path (control_plane/failover/runner.py).
        self.attempts = Counter(
            "switchyard_attempts",
            "Provider attempts on the guarded path, by policy, model and result (status or error).",
            ["policy", "model", "result"], registry=registry)
        self.stream_errors = Counter(
            "switchyard_stream_errors",
            "Streams that broke after the app got the first event (stall, cut, malformed, no [DONE]).",
            ["model"], registry=registry)
        self.continuations = Counter(
            "switchyard_stream_continuations",
            "Broken streams finished by a fallback that continued the partial answer.",
            ["broken_model", "model"], registry=registry)
        # What answers used and cost (control_plane/spend/), from the providers' own counts.
        self.tokens = Counter(
            "switchyard_tokens",
            "Tokens of answered requests, by app, policy, route, the model that answered, and kind "
            "(input, cached_input, output, reasoning; output includes reasoning, input excludes cached).",
            [*REQUEST_LABELS, "kind"], registry=registry)
        self.cost_usd = Counter(
            "switchyard_cost_usd",
            "What answered requests cost (USD), from their usage and the answering model's price.",
            list(REQUEST_LABELS), registry=registry)
        self.cost_without_routing_usd = Counter(
            "switchyard_cost_without_routing_usd",
            "What the same answers would have cost on each policy's most expensive priced model (USD).",
            ["app", "policy"], registry=registry)
        self.circuit_open = Gauge(
            "switchyard_circuit_open",
            "1 while a model's circuit is open or half-open (skipped, or waiting for a probe), else 0.",
            ["provider", "upstream_model"], registry=registry, multiprocess_mode="livemax")
        # The state stores of the spend ledger (control_plane/ledger/): SQLite, and Redis when shared.
        self.state_store_up = Gauge(
            "switchyard_state_store_up",
            "1 while a state store answers, 0 while it does not (sqlite: the ledger file; redis: the "
            "shared counts; without Redis, limits are per sidecar and counts catch up when it returns).",
            ["store"], registry=registry, multiprocess_mode="livemax")
        self.state_store_errors = Counter(
            "switchyard_state_store_errors",
            "Failed operations on a state store, by store (sqlite, redis) and operation (write, outbox, "
            "sync, report).",
            ["store", "operation"], registry=registry)

    def record_decision(self, labels: DecisionLabels, router_ms: float | None) -> None:
        """One routing decision: its labels (app, policy, route, model, decision kind, reason),
        and the router's time when it was asked."""
        self.decisions.labels(*labels).inc()
        if router_ms is not None:
            self.router_seconds.labels(labels[1]).observe(router_ms / 1000)

    def record_request(self, labels: tuple[str, str, str, str], status: int, seconds: float | None) -> None:
        """One answered request (app, policy, route, the model that answered), from Envoy's entry."""
        self.requests.labels(*labels, str(status)).inc()
        if seconds is not None:
            self.request_seconds.labels(*labels).observe(seconds)

    def exposition(self) -> bytes:
        """This process's metrics, or with multiprocess files every process's, summed."""
        directory = os.environ.get(MULTIPROCESS_ENV)
        if not directory:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(merged)
