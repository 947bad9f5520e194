"""Model-level circuit breaking: a model whose provider keeps failing is skipped for a cool-down,
then probed by one request, and used again once it answers.

Keyed by (provider cluster, upstream model), so the same real model shares one circuit across
policies and reloads. Lives in the processor's memory; time comes from an injectable clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from control_plane.observability.metrics import Metrics
from control_plane.policy.model import Model

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass
class Circuit:
    failures: int = 0  # consecutive failures
    opened_at: float | None = None  # None: closed
    probing: bool = False  # a half-open probe is in flight
    cooldown_s: float = 0.0

    def state(self, now: float) -> str:
        if self.opened_at is None:
            return CLOSED
        return OPEN if now - self.opened_at < self.cooldown_s else HALF_OPEN


class Circuits:
    def __init__(self, clock: Callable[[], float] = time.monotonic, metrics: Metrics | None = None) -> None:
        self.clock = clock
        self.metrics = metrics or Metrics()
        self._circuits: dict[tuple[str, str], Circuit] = {}

    def _get(self, model: Model) -> Circuit:
        key = (model.provider.cluster, model.upstream_model)
        return self._circuits.setdefault(key, Circuit())

    def state(self, model: Model) -> str:
        return self._get(model).state(self.clock())

    def available(self, model: Model) -> bool:
        """Closed, or half-open with no probe in flight (the caller then becomes the probe)."""
        circuit = self._get(model)
        state = circuit.state(self.clock())
        return state == CLOSED or (state == HALF_OPEN and not circuit.probing)

    def begin(self, model: Model) -> None:
        """An attempt starts; in half-open state it is the one probe."""
        circuit = self._get(model)
        if circuit.state(self.clock()) != CLOSED:
            circuit.probing = True

    def success(self, model: Model) -> None:
        circuit = self._get(model)
        was_open = circuit.opened_at is not None
        circuit.failures, circuit.opened_at, circuit.probing = 0, None, False
        if was_open:
            self._changed(model, CLOSED)

    def failure(self, model: Model) -> None:
        circuit = self._get(model)
        circuit.failures += 1
        reopen = circuit.opened_at is not None  # a failed probe (or a last-resort try)
        if reopen or circuit.failures >= model.failover.circuit_failures:
            circuit.opened_at = self.clock()
            circuit.cooldown_s = model.failover.circuit_cooldown_s
            circuit.probing = False
            self._changed(model, OPEN)

    def _changed(self, model: Model, state: str) -> None:
        self.metrics.circuit_open.labels(model.provider.name, model.upstream_model).set(state != CLOSED)

    def describe(self, model: Model) -> dict[str, object]:
        circuit = self._get(model)
        return {"state": circuit.state(self.clock()), "consecutive_failures": circuit.failures}
