"""Model-level circuits: open after N consecutive failures, one probe after the cool-down."""

from __future__ import annotations

from control_plane.failover.circuits import CLOSED, HALF_OPEN, OPEN, Circuits
from control_plane.policy.failover_settings import FailoverRules
from control_plane.policy.model import Model, Provider

MODEL = Model("m", Provider("p", "http://127.0.0.1:1/v1"), "m-up",
              failover=FailoverRules(circuit_failures=2, circuit_cooldown_s=5))


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_and_a_success_resets_the_count() -> None:
    circuits = Circuits(Clock())
    circuits.failure(MODEL)
    circuits.success(MODEL)
    circuits.failure(MODEL)
    assert circuits.state(MODEL) == CLOSED and circuits.available(MODEL)
    circuits.failure(MODEL)
    assert circuits.state(MODEL) == OPEN and not circuits.available(MODEL)


def test_one_probe_after_the_cooldown_then_closed_or_open_again() -> None:
    clock = Clock()
    circuits = Circuits(clock)
    circuits.failure(MODEL)
    circuits.failure(MODEL)
    clock.now += 5
    assert circuits.state(MODEL) == HALF_OPEN and circuits.available(MODEL)
    circuits.begin(MODEL)  # the probe
    assert not circuits.available(MODEL)  # nobody else while it is in flight
    circuits.failure(MODEL)
    assert circuits.state(MODEL) == OPEN  # failed probe: a new cool-down
    clock.now += 5
    circuits.begin(MODEL)
    circuits.success(MODEL)
    assert circuits.state(MODEL) == CLOSED and circuits.available(MODEL)


def test_the_same_upstream_model_shares_a_circuit_across_policies() -> None:
    circuits = Circuits(Clock())
    twin = Model("other-name", MODEL.provider, "m-up", failover=MODEL.failover)
    circuits.failure(MODEL)
    circuits.failure(twin)
    assert circuits.state(MODEL) == OPEN
