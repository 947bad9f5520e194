"""Live policy editing under steady traffic: no restart, nothing dropped.

One sequence of edits while a client sends ~20 requests/s through Envoy. Every request must be
answered 2xx by the intended or the previous upstream, and each change must show within 1 s.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Provider, Sidecar, start_provider, start_sidecar
from tests.e2e.test_lifecycle_and_cli import child_pids
from harness.live_policy import Traffic, policy, write_in_place, write_rename_over

VISIBLE_WITHIN_S = 1.0


def metric(sidecar: Sidecar, name: str) -> float:
    for line in httpx.get(f"{sidecar.admin_url}/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture()
def gamma(logs: Path) -> Iterator[Provider]:
    provider = start_provider("gamma", logs)
    yield provider
    provider.process.stop()


def test_policy_edits_apply_live_without_dropping_requests(
    tmp_path: Path, logs: Path, alpha: Provider, beta: Provider, gamma: Provider, scripted_router: Provider
) -> None:
    scripted_router.reset()
    scripted_router.control(route="code_generation")
    plain_beta = start_provider("beta-http", logs)  # the HTTPS beta needs a CA; this test is about reloads
    path = tmp_path / "default.yaml"
    base = {"alpha": alpha, "beta": plain_beta}
    path.write_text(policy(scripted_router, base, {"alpha-chat": "alpha", "beta-chat": "beta"}, {"small_talk": "alpha-chat"}))
    sidecar = start_sidecar("live-reload", tmp_path, logs, "--drain-seconds", "1")
    [envoy_pid] = child_pids(sidecar.process.log_tail(10**6), "envoy")
    traffic = Traffic(f"{sidecar.base_url}/chat/completions")
    thread = threading.Thread(target=traffic.run, daemon=True)
    thread.start()
    ok_reloads = "switchyard_policy_reloads_total{result=\"ok\"}"
    try:
        traffic.first_after(time.monotonic(), "hello from alpha")  # unknown route -> default

        # 1. Add a route and its model (saved by rename-over): new requests follow it, one reload.
        before = metric(sidecar, ok_reloads)
        t = time.monotonic()
        write_rename_over(path, policy(scripted_router, base, {"alpha-chat": "alpha", "beta-chat": "beta"},
                                       {"small_talk": "alpha-chat", "code_generation": "beta-chat"}))
        assert traffic.first_after(t, "hello from beta-http") < VISIBLE_WITHIN_S
        assert metric(sidecar, ok_reloads) == before + 1

        # 2. Change which model the route maps to (in-place truncate + write): picked up once.
        before = metric(sidecar, ok_reloads)
        t = time.monotonic()
        write_in_place(path, policy(scripted_router, base, {"alpha-chat": "alpha", "beta-chat": "beta"},
                                    {"small_talk": "alpha-chat", "code_generation": "alpha-chat"}))
        assert traffic.first_after(t, "hello from alpha") < VISIBLE_WITHIN_S
        time.sleep(0.3)  # let any straggling events of this save arrive
        assert metric(sidecar, ok_reloads) == before + 1

        # 3. A brand-new provider on a new port: a new Envoy cluster, same Envoy process.
        with_gamma = {**base, "gamma": gamma}
        models = {"alpha-chat": "alpha", "beta-chat": "beta", "gamma-chat": "gamma"}
        t = time.monotonic()
        write_rename_over(path, policy(scripted_router, with_gamma, models, {"code_generation": "gamma-chat"}))
        assert traffic.first_after(t, "hello from gamma") < VISIBLE_WITHIN_S
        clusters = httpx.get(f"{sidecar.envoy_admin_url}/clusters").text
        assert any(line.startswith("gamma-") for line in clusters.splitlines())
        assert child_pids(sidecar.process.log_tail(10**6), "envoy") == [envoy_pid]
        assert os.path.exists(f"/proc/{envoy_pid}")

        # 4. Invalid edits change nothing; the error is shown with file and line.
        good = path.read_text()
        # A CA file Envoy cannot read passes validation but is NACKed by Envoy itself.
        nacked = good.replace("models:", "  private:\n    base_url: https://127.0.0.1:9/v1\n"
                                          "    ca_file: /nonexistent/ca.pem\nmodels:", 1)
        for broken, fragment in ((good.replace("routes:", "routes: [", 1), "YAML syntax error"),
                                 (good.replace("{provider: gamma}", "{provider: delta}"), "unknown provider 'delta'"),
                                 (nacked, "Envoy rejected the configuration")):
            t = time.monotonic()
            write_rename_over(path, broken)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                status = httpx.get(f"{sidecar.admin_url}/policies").json()
                if not status["last_reload_ok"] and fragment in " ".join(status["last_reload_error"]):
                    break
                time.sleep(0.05)
            assert fragment in " ".join(status["last_reload_error"]), status
            if "Envoy" not in fragment:
                assert status["last_reload_error"][0].startswith(f"{path}:"), status
            assert traffic.first_after(t, "hello from gamma") < VISIBLE_WITHIN_S  # still the last good

        # 5. Removing the provider again: traffic moves back, and its cluster is drained away.
        t = time.monotonic()
        write_rename_over(path, policy(scripted_router, base, {"alpha-chat": "alpha", "beta-chat": "beta"},
                                       {"code_generation": "beta-chat"}))
        assert traffic.first_after(t, "hello from beta-http") < VISIBLE_WITHIN_S
        deadline = time.monotonic() + 5
        while any(line.startswith("gamma-") for line in httpx.get(f"{sidecar.envoy_admin_url}/clusters").text.splitlines()):
            assert time.monotonic() < deadline, "gamma's cluster was not removed after the drain period"
            time.sleep(0.1)
    finally:
        traffic.stop.set()
        thread.join(10)
        sidecar.process.stop()
        plain_beta.process.stop()
    failed = [r for r in traffic.results if not 200 <= r[1] < 300]
    assert len(traffic.results) > 20  # ~20/s throughout the whole sequence
    assert failed == [], failed[:5]
