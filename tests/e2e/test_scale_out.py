"""Many sidecars, one router pool, one policy source: three `switchyard up` sidecars share one
policies folder, one (scripted) router and one upstream. Under steady `auto` traffic to all three,
each policy edit must show on every sidecar within 1 s of the file write, and no request may fail.

Every request is a new conversation (unique text), so no decision is `cached`: each answer is the
router's decision mapped through the policy the sidecar holds at that moment."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Provider, Sidecar, provider_fixture, running_sidecar
from harness.live_policy import policy, write_rename_over

SIDECARS = 3
VISIBLE_WITHIN_S = 1.0
ROUTE = "code_generation"
TARGETS = ["model-one", "model-two", "model-three", "model-four"]  # the route's model, edit by edit
INTERVAL_S = 0.05  # per sidecar: ~20 requests/s each, ~60/s on the shared router
STEADY_ANSWERS = 20  # per sidecar and policy version, after it switched: about a second of traffic

scale_router = provider_fixture("scale-router", "scale_router", scope="module")
scale_upstream = provider_fixture("scale-upstream", "scale_upstream", scope="module")


@dataclass(frozen=True)
class Answer:
    sent: float  # monotonic, just before the request was sent
    received: float  # monotonic, once the whole answer was read
    status: int
    model: str  # x-switchyard-model
    route: str  # x-switchyard-route
    decision: str  # x-switchyard-decision
    detail: str  # the error, for failed requests


@dataclass
class SidecarTraffic:
    """One client per sidecar: a new one-message conversation every INTERVAL_S, every answer kept."""

    name: str
    url: str
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            for index in itertools.count():
                if self.stop.is_set():
                    return
                sent = time.monotonic()
                body = {"model": "auto",
                        "messages": [{"role": "user", "content": f"write code, {self.name} request {index}"}]}
                try:
                    r = client.post(self.url, json=body)
                    h = r.headers
                    self.answers.append(Answer(sent, time.monotonic(), r.status_code, h.get("x-switchyard-model", ""),
                                               h.get("x-switchyard-route", ""), h.get("x-switchyard-decision", ""),
                                               "" if r.status_code == 200 else r.text[:300]))
                except httpx.HTTPError as exc:
                    self.answers.append(Answer(sent, time.monotonic(), 0, "", "", "", repr(exc)))
                self.stop.wait(max(0.0, INTERVAL_S - (time.monotonic() - sent)))

    def first_with(self, model: str, since: float, timeout: float = 5.0) -> Answer:
        """The first answer received after `since` that names `model` (polled, with a deadline)."""
        deadline = time.monotonic() + timeout
        while True:
            for answer in list(self.answers):
                if answer.received >= since and answer.model == model:
                    return answer
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.name}: no answer from {model} within {timeout} s of the write; "
                                     f"last answers: {self.answers[-3:]}")
            time.sleep(0.01)

    def steady(self, since: float, count: int = STEADY_ANSWERS, timeout: float = 10.0) -> None:
        """Wait for `count` answers to requests sent after `since`: a while of steady traffic under
        one policy (the order checks at the end assert that they all follow it)."""
        deadline = time.monotonic() + timeout
        while len([a for a in list(self.answers) if a.sent >= since]) < count:
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.name}: fewer than {count} answers within {timeout} s")
            time.sleep(0.01)


def policy_text(router: Provider, upstream: Provider, target: str) -> str:
    models = {"alpha-chat": "up", **{name: "up" for name in TARGETS}}  # alpha-chat: the default model
    return policy(router, {"up": upstream}, models, {ROUTE: target})


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory, scale_router: Provider, scale_upstream: Provider) -> Path:
    folder = tmp_path_factory.mktemp("scale-policies")
    (folder / "default.yaml").write_text(policy_text(scale_router, scale_upstream, TARGETS[0]))
    return folder


@pytest.fixture(scope="module")
def sidecars(logs: Path, policies: Path) -> Iterator[list[Sidecar]]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(running_sidecar(f"switchyard-scale-{i}", policies, logs)) for i in range(SIDECARS)]


def router_calls(router: Provider) -> int:
    """Routing requests only (not the one-step planner's /tokenize, which this fake cannot serve)."""
    return len([r for r in router.requests() if r["path"].endswith("/chat/completions")])


def test_every_sidecar_follows_a_shared_policy_edit_within_a_second(
        sidecars: list[Sidecar], policies: Path, scale_router: Provider, scale_upstream: Provider) -> None:
    scale_router.reset()
    scale_router.control(route=ROUTE)
    traffic = [SidecarTraffic(f"sidecar-{i}", f"{s.base_url}/chat/completions") for i, s in enumerate(sidecars)]
    threads = [threading.Thread(target=t.run, daemon=True) for t in traffic]
    for thread in threads:
        thread.start()
    writes: list[float] = []  # monotonic time of each edit's write
    applied: list[list[Answer]] = []  # per edit, per sidecar: its first answer from the new model
    try:
        started = time.monotonic()
        for t in traffic:  # all three route by the starting policy
            t.steady(t.first_with(TARGETS[0], started, timeout=10).received)
        for target in TARGETS[1:]:
            write = time.monotonic()
            write_rename_over(policies / "default.yaml", policy_text(scale_router, scale_upstream, target))
            writes.append(write)
            applied.append([t.first_with(target, write) for t in traffic])
            for t, first in zip(traffic, applied[-1]):
                t.steady(first.received)
    finally:
        for t in traffic:
            t.stop.set()
        for thread in threads:
            thread.join(15)
    for t in traffic:
        print(f"{t.name}: {len(t.answers)} requests")
    for edit, (write, firsts) in enumerate(zip(writes, applied)):
        print(f"edit {edit + 1} -> {TARGETS[edit + 1]}: "
              + ", ".join(f"{t.name} {(a.received - write) * 1000:.0f} ms" for t, a in zip(traffic, firsts)))

    # Nothing failed, and the router decided every request (no fallback to the default model).
    answers = [a for t in traffic for a in t.answers]
    assert all(len(t.answers) >= STEADY_ANSWERS * len(TARGETS) for t in traffic), [len(t.answers) for t in traffic]
    failed = [a for a in answers if a.status != 200]
    assert failed == [], failed[:5]
    assert {(a.route, a.decision) for a in answers} == {(ROUTE, "routed:arch-router")}
    assert router_calls(scale_router) >= len(answers)  # each answer really was the router's decision

    # Every sidecar follows every edit within a second of the write.
    late = [(edit + 1, t.name, round(a.received - write, 3)) for edit, (write, firsts) in enumerate(zip(writes, applied))
            for t, a in zip(traffic, firsts) if a.received - write >= VISIBLE_WITHIN_S]
    assert late == [], late

    # And each sidecar's answers follow the edits in order: before a write only the policy then in
    # place; once a sidecar has answered from the new model, never the old one again.
    ends = [*writes, float("inf")]
    for index, t in enumerate(traffic):
        for edit, answer in itertools.product(range(len(writes)), t.answers):
            if answer.received < writes[edit]:
                assert TARGETS.index(answer.model) <= edit, (t.name, edit, answer)
            switched = applied[edit][index].received
            if switched <= answer.sent < ends[edit + 1]:
                assert answer.model == TARGETS[edit + 1], (t.name, edit, answer)
    # The upstream saw each target model, from the requests of all three sidecars.
    seen = {r["body"]["model"] for r in scale_upstream.requests() if r["path"].endswith("/chat/completions")}
    assert set(TARGETS) <= seen, seen
