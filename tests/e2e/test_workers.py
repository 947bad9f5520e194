"""Processor workers (`switchyard up --workers 2`) through real Envoy: both workers serve, a reload
under traffic switches every worker only after Envoy has the new clusters (zero failed requests,
none routed to a cluster that is gone), /metrics sums what every worker counted, and a killed
worker is restarted while routing goes on."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Provider, Sidecar, provider_fixture, running_sidecar
from harness.live_policy import Traffic, policy, write_rename_over

first = provider_fixture("first", scope="module")
second = provider_fixture("second", scope="module")
worker_router = provider_fixture("worker-router", "worker_router", scope="module")
WORKERS = 2


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory, worker_router: Provider, first: Provider) -> Path:
    folder = tmp_path_factory.mktemp("worker-policies")
    (folder / "default.yaml").write_text(policy(worker_router, {"first": first}, {"alpha-chat": "first"},
                                                {"chat": "alpha-chat"}))
    return folder


@pytest.fixture(scope="module")
def sidecar(logs: Path, policies: Path, worker_router: Provider) -> Iterator[Sidecar]:
    worker_router.control(route="chat")
    with running_sidecar("switchyard-workers", policies, logs, "--workers", str(WORKERS),
                         "--drain-seconds", "0.5") as running:
        yield running


def workers(sidecar: Sidecar) -> dict:
    return httpx.get(f"{sidecar.admin_url}/workers").json()


def chat(sidecar: Sidecar, text: str, model: str = "alpha-chat") -> httpx.Response:
    return httpx.post(f"{sidecar.base_url}/chat/completions", timeout=10,
                      json={"model": model, "messages": [{"role": "user", "content": text}]})


def test_every_worker_serves_requests(sidecar: Sidecar) -> None:
    state = workers(sidecar)
    assert len(state["workers"]) == WORKERS and all(w["alive"] for w in state["workers"])
    # Concurrent requests: Envoy opens a connection per concurrent ext_proc stream, and the kernel
    # spreads connections over the workers (16 of them all on one worker: odds of 1 in 30,000).
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda i: chat(sidecar, f"hello {i}").status_code, range(96)))
    assert statuses == [200] * 96
    # Each worker logs its decisions with its index: both served some.
    served = {json.loads(line).get("worker") for line in sidecar.process.log_tail(10**6).splitlines()
              if line.startswith("{") and '"event": "decision"' in line}
    assert served >= set(range(WORKERS)), served


def totals(sidecar: Sidecar, name: str) -> float:
    text = httpx.get(f"{sidecar.admin_url}/metrics").text
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name)


def settled(sidecar: Sidecar) -> tuple[float, float]:
    """(decisions, requests) once Envoy's access log has caught up: every request of this module
    is a decision, recorded by a worker, and an access-log entry, counted by the control plane
    (Envoy sends those every 0.25 s)."""
    deadline = time.monotonic() + 5
    while True:
        decisions, requests = totals(sidecar, "switchyard_decisions_total"), totals(sidecar, "switchyard_requests_total")
        if decisions == requests or time.monotonic() > deadline:
            return decisions, requests
        time.sleep(0.05)


def test_metrics_sum_what_every_worker_counted(sidecar: Sidecar) -> None:
    decisions, requests = settled(sidecar)
    assert decisions == requests
    sent = 40
    for index in range(sent):
        assert chat(sidecar, f"count me {index}").status_code == 200
    assert settled(sidecar) == (decisions + sent, requests + sent)


def test_a_reload_under_traffic_switches_every_worker_after_envoy_has_the_clusters(
        sidecar: Sidecar, policies: Path, worker_router: Provider, first: Provider, second: Provider) -> None:
    traffic = Traffic(f"{sidecar.base_url}/chat/completions", interval_s=0.01)
    thread = threading.Thread(target=traffic.run, daemon=True)
    thread.start()
    generation = workers(sidecar)["generation"]
    try:
        traffic.first_after(time.monotonic(), "hello from first")
        for target, gone in ((second, first), (first, second)):
            # The route moves to a brand-new provider and the old one is removed (its cluster is
            # drained 0.5 s later): a worker still on the old snapshot would hit a missing cluster.
            t = time.monotonic()
            write_rename_over(policies / "default.yaml", policy(
                worker_router, {target.name: target}, {"alpha-chat": target.name}, {"chat": "alpha-chat"}))
            assert traffic.first_after(t, f"hello from {target.name}") < 1.0
            generation += 1
            deadline = time.monotonic() + 5
            while {w["generation"] for w in workers(sidecar)["workers"]} != {generation}:
                assert time.monotonic() < deadline, workers(sidecar)
                time.sleep(0.05)
            time.sleep(1.0)  # past the drain: the old cluster is gone from Envoy
            after = time.monotonic()
            traffic.first_after(after, f"hello from {target.name}")
            late = [r for r in traffic.results if r[0] >= after and r[3] == f"hello from {gone.name}"]
            assert late == []
    finally:
        traffic.stop.set()
        thread.join(10)
    failed = [r for r in traffic.results if r[1] != 200]
    assert len(traffic.results) > 50 and failed == [], failed[:5]


def test_a_killed_worker_is_restarted_and_routing_goes_on(sidecar: Sidecar) -> None:
    traffic = Traffic(f"{sidecar.base_url}/chat/completions", interval_s=0.01)
    thread = threading.Thread(target=traffic.run, daemon=True)
    thread.start()
    try:
        victim = workers(sidecar)["workers"][0]
        os.kill(victim["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:
            now = workers(sidecar)["workers"][0]
            if now["pid"] != victim["pid"] and now["alive"] and now["generation"] == victim["generation"]:
                break
            assert time.monotonic() < deadline, now
            time.sleep(0.1)
        assert now["restarts"] == victim["restarts"] + 1
        restarted = time.monotonic()
        traffic.first_after(restarted, traffic.results[-1][3])
        # Routing goes on: 20 answers to requests sent after the restart (polled, not timed).
        deadline = time.monotonic() + 30
        while sum(r[0] >= restarted for r in list(traffic.results)) < 20:
            assert time.monotonic() < deadline, traffic.results[-3:]
            time.sleep(0.05)
    finally:
        traffic.stop.set()
        thread.join(10)
    failed = [r for r in traffic.results if r[1] != 200]
    # At most the one request that was inside the worker when it died (one client: one in flight).
    assert len(failed) <= 1, failed
