"""The processor dies and comes back while Envoy keeps running (the docker-compose layout).

Fail closed, as documented: while the processor is down, Envoy answers an OpenAI-shaped 503
`processor_unavailable`; once it is back, routing resumes without restarting Envoy.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import Provider, split_stack, write_policies

CHAT = {"model": "auto", "messages": [{"role": "user", "content": "write code"}]}


def post(base_url: str) -> httpx.Response:
    return httpx.post(f"{base_url}/chat/completions", json=CHAT, headers={"x-switchyard-policy": "scripted"}, timeout=10)


def poll(base_url: str, predicate, timeout: float) -> httpx.Response:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        response = post(base_url)
        if predicate(response) or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def test_processor_killed_fails_closed_then_recovers(tmp_path: Path, logs: Path, alpha: Provider, beta: Provider,
                                                     scripted_router: Provider) -> None:
    scripted_router.reset()
    scripted_router.control(route="small_talk")
    write_policies(tmp_path, scripted_router.url, scripted_router.url, alpha, beta)
    stack = split_stack("restart", tmp_path, logs)
    try:
        assert stack.envoy is not None and stack.switchyard is not None
        envoy_pid = stack.envoy.pid
        ok = post(stack.base_url)
        assert ok.status_code == 200 and ok.headers["x-switchyard-route"] == "small_talk"

        os.kill(stack.switchyard.pid, signal.SIGKILL)
        stack.switchyard.popen.wait(10)
        down = poll(stack.base_url, lambda r: r.status_code != 200, 10)
        assert down.status_code == 503
        assert down.json()["error"]["code"] == "processor_unavailable"

        stack.start_switchyard()  # same ports: Envoy reconnects on its own
        back = poll(stack.base_url, lambda r: r.status_code == 200, 30)
        assert back.status_code == 200 and back.headers["x-switchyard-decision"] == "routed:arch-router"
        assert stack.envoy.alive() and stack.envoy.pid == envoy_pid
    finally:
        stack.stop()
