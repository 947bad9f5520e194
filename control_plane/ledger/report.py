"""The usage report (the admin page `/usage`): per app, today's and this month's tokens by kind,
requests and cost, in total and per model."""

from __future__ import annotations

from typing import Any

from control_plane.ledger.model import KINDS, NANO_USD, Counts, Row
from control_plane.ledger.windows import Windows

PERIODS = {"day": "today", "month": "month"}


def build_report(rows: list[Row], w: Windows, source: str) -> dict[str, Any]:
    """`source` says whose counts these are: "redis" (every sidecar's) or "local" (this
    sidecar's: no Redis configured, or Redis did not answer)."""
    totals: dict[str, dict[str, Counts]] = {}
    per_model: dict[str, dict[str, dict[str, Counts]]] = {}
    for period, app, model, counts in rows:
        name = PERIODS[period]
        totals.setdefault(app, {}).setdefault(name, Counts()).merge(counts)
        per_model.setdefault(app, {}).setdefault(name, {}).setdefault(model, Counts()).merge(counts)
    apps = {
        app: {name: {**_view(totals[app].get(name, Counts())),
                     "models": {model: _view(counts)
                                for model, counts in sorted(per_model[app].get(name, {}).items())}}
              for name in PERIODS.values()}
        for app in sorted(totals)}
    return {"day": w.day, "month": w.month, "source": source, "apps": apps}


def _view(counts: Counts) -> dict[str, Any]:
    return {
        "requests": counts.requests,
        "tokens": {kind: getattr(counts, kind) for kind in KINDS},
        "cost_usd": counts.cost_nano / NANO_USD,
        "unpriced_requests": counts.unpriced,  # answered by a model without a price: not in cost_usd
    }
