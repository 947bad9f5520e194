"""Settling a request: Envoy's access-log entry says what happened (status, times, the model that
answered) and, on the direct path, what the answer reported it used (Envoy reads it as the answer
passes); the guarded path says so itself; the answering model's price turns that into money. One
place then writes the request's log line, counts its metrics and records its spend.

The guarded path knows an answer's usage at its end, a moment before Envoy's entry for it arrives
(the access log is flushed every 0.25 s); an entry whose answer is still being read waits for it,
up to `wait_s`, off the access-log stream.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import OrderedDict
from collections.abc import Coroutine
from typing import Any, TextIO

import structlog

from control_plane.apis.usage import Usage
from control_plane.observability.access_log import Entry
from control_plane.ledger import Ledger, Spend
from control_plane.observability import tracing
from control_plane.observability.metrics import Metrics
from control_plane.policy.model import Policy
from control_plane.policy.snapshot import SnapshotStore

log = structlog.get_logger("switchyard.spend")
WAIT_S = 2.0  # longest an access-log entry waits for the usage of its answer
KEPT = 10_000  # usages read but not yet settled (a bound, should an entry never come)


class Accountant:
    def __init__(self, snapshots: SnapshotStore, metrics: Metrics, out: TextIO = sys.stderr,
                 ledger: Ledger | None = None, wait_s: float = WAIT_S) -> None:
        self.snapshots = snapshots
        self.metrics = metrics
        self.out = out
        self.ledger = ledger  # what apps spent, for their budgets and /usage
        self.wait_s = wait_s
        self._reading: dict[str, asyncio.Event] = {}  # request id -> set when its usage is known
        self._usage: OrderedDict[str, Usage | None] = OrderedDict()
        self._settling: set[asyncio.Task[None]] = set()

    # ---- the guarded path's side (apis/usage.py: UsageSink) -----------------------------------

    def begin(self, request_id: str) -> None:
        """An answer to `request_id` started; its usage will follow (add)."""
        self._reading.setdefault(request_id, asyncio.Event())

    def add(self, request_id: str, usage: Usage | None) -> None:
        self._usage[request_id] = usage
        while len(self._usage) > KEPT:
            self._usage.popitem(last=False)
        event = self._reading.pop(request_id, None)
        if event is not None:
            event.set()

    # ---- the access log's side ----------------------------------------------------------------

    def entry(self, entry: Entry) -> None:
        """Settle `entry` now, or once its answer's usage is known."""
        request_id = entry.request_id
        if request_id in self._reading and request_id not in self._usage:
            task = asyncio.ensure_future(self._settle_later(entry, self._reading[request_id]))
            self._settling.add(task)
            task.add_done_callback(self._settling.discard)
        else:
            self.settle(entry)

    async def _settle_later(self, entry: Entry, known: asyncio.Event) -> None:  # (a task in _settling)
        try:
            await asyncio.wait_for(known.wait(), self.wait_s)
        except TimeoutError:
            log.warning("usage_late", request_id=entry.request_id, waited_s=self.wait_s)
        self.settle(entry)

    def settle(self, entry: Entry) -> None:
        usage = self._usage.pop(entry.request_id, None) if entry.request_id else None
        self._reading.pop(entry.request_id, None)
        if usage is None:
            usage = entry.answer_usage()
        policy = self.snapshots.current.policy_set.policies.get(entry.decision.get("policy", ""))
        model = policy.models.get(entry.model or "") if policy else None
        cost = model.price.cost_usd(usage) if usage is not None and model and model.price else None
        fields = entry.log_fields()
        if usage is not None:
            fields |= token_fields(usage) | {"cost_usd": None if cost is None else round(cost, 8)}
        self._write(entry, fields)
        self.metrics.record_request(entry.labels(), entry.status, entry.seconds)
        if usage is not None:
            self._count(entry, policy, usage, cost)
            _trace(entry, usage, cost)
            if self.ledger is not None:
                self._spawn(self.ledger.record(spend_of(entry, usage, cost)))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def close(self) -> None:
        """Settle what is still waiting for its usage (a graceful stop loses nothing)."""
        if self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)

    def _count(self, entry: Entry, policy: Policy | None, usage: Usage, cost: float | None) -> None:
        labels = entry.labels()
        for kind, tokens in token_counts(usage).items():
            if tokens:
                self.metrics.tokens.labels(*labels, kind).inc(tokens)
        if cost is not None:
            self.metrics.cost_usd.labels(*labels).inc(cost)
        dearest = most_expensive(policy, usage) if policy is not None else None
        if dearest is not None:  # what this answer would have cost on the policy's dearest model
            self.metrics.cost_without_routing_usd.labels(*labels[:2]).inc(dearest)

    def _write(self, entry: Entry, fields: dict[str, Any]) -> None:
        line = {"timestamp": fields.pop("timestamp", None), "level": "info", "logger": "envoy.access",
                "event": "request", **fields}
        self.out.write(json.dumps(line) + "\n")
        self.out.flush()


def _trace(entry: Entry, usage: Usage, cost: float | None) -> None:
    """The usage as a span of the request's own trace (OTel GenAI attributes), when tracing is on."""
    if not tracing.enabled() or not entry.traceparent:
        return
    counts = token_counts(usage)
    span = tracing.TRACER.start_span("switchyard.usage", tracing.extract({"traceparent": entry.traceparent}))
    span.set_attributes({"gen_ai.usage.input_tokens": counts["input"] + counts["cached_input"],
                         "gen_ai.usage.output_tokens": counts["output"],
                         "gen_ai.response.model": entry.model or "",
                         **({"switchyard.cost_usd": cost} if cost is not None else {})})
    span.end()


def spend_of(entry: Entry, usage: Usage, cost: float | None) -> Spend:
    """The ledger's record of one answered request."""
    counts = token_counts(usage)
    app, policy, route, model = entry.labels()
    return Spend(app, policy, route, model, counts["input"], counts["cached_input"], counts["output"],
                 counts["reasoning"], cost)


def token_counts(usage: Usage) -> dict[str, int]:
    """The metric's and the log's kinds: cache writes count as input (they are read as input)."""
    return {"input": usage.input + usage.cache_write, "cached_input": usage.cached_input,
            "output": usage.output, "reasoning": usage.reasoning}


def token_fields(usage: Usage) -> dict[str, int]:
    return {f"{kind}_tokens": count for kind, count in token_counts(usage).items()}


def most_expensive(policy: Policy, usage: Usage) -> float | None:
    """The cost of `usage` on the policy's dearest priced model (what routing saved is measured
    against sending everything there)."""
    costs = [m.price.cost_usd(usage) for m in policy.models.values() if m.price is not None]
    return max(costs) if costs else None
