"""Budgets and token limits per app, through real Envoy: an app over its daily budget gets its
`429 budget_exceeded` (with Retry-After, in its door's shape) on the next request, and still
after `switchyard up` restarts (SQLite); over its tokens per minute, `token_rate_limit_exceeded`.
Two sidecars sharing a real redis-server add one app's spend up and refuse it on either; with
Redis killed, requests still succeed and the outage shows in logs and metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from harness.redis_server import RedisServer
from tests.e2e.conftest import Provider, Sidecar, provider_fixture, start_sidecar

budget_chat = provider_fixture("budget-chat", "budget_chat", scope="module")
KEYS = {"metered": "sk-app-metered-0001", "tokens": "sk-app-tokens-0002", "shared": "sk-app-shared-0003"}
# Each answer: 1,000 input + 500 output tokens at 2 + 10 USD per million = 0.007 USD.
TOKENS = {"input": 1000, "output": 500}
COST = 0.007


def write_policies(folder: Path, provider: Provider) -> None:
    (folder / "default.yaml").write_text(f"""\
version: 1
router: {{kind: embedding}}
providers:
  chat: {{base_url: "{provider.url}/v1"}}
models:
  gpt: {{provider: chat, price: {{input_per_mtok: 2, output_per_mtok: 10}}}}
default_model: gpt
""")
    (folder / "apps.yaml").write_text(f"""\
version: 1
apps:
  metered: {{key_env: METERED_KEY, budget: {{usd_per_day: 0.01, usd_per_month: 5}}}}
  tokens: {{key_env: TOKENS_KEY, tokens_per_minute: 2000}}
  shared: {{key_env: SHARED_KEY, budget: {{usd_per_day: 0.02}}}}
""")


APP_ENV = {"METERED_KEY": KEYS["metered"], "TOKENS_KEY": KEYS["tokens"], "SHARED_KEY": KEYS["shared"]}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, budget_chat: Provider) -> Path:
    policies = tmp_path_factory.mktemp("budget-policies")
    write_policies(policies, budget_chat)
    return policies


@pytest.fixture(autouse=True)
def clean(budget_chat: Provider) -> None:
    budget_chat.reset()
    budget_chat.control(tokens=TOKENS)


def ask(sidecar: Sidecar, app: str) -> httpx.Response:
    return httpx.post(f"{sidecar.base_url}/chat/completions", timeout=30, json={
        "model": "gpt", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {KEYS[app]}"})


def spent(sidecar: Sidecar, app: str) -> dict[str, Any]:
    report = httpx.get(f"{sidecar.admin_url}/usage", timeout=10).json()
    today: dict[str, Any] = report["apps"].get(app, {}).get("today", {})
    return today


def wait_spent(sidecar: Sidecar, app: str, usd: float, deadline_s: float = 10) -> None:
    """Until `app`'s cost today reaches `usd` (the access log and the ledger's flush come a moment
    after the answer)."""
    deadline = time.monotonic() + deadline_s
    while spent(sidecar, app).get("cost_usd", 0) < usd - 1e-9:
        assert time.monotonic() < deadline, spent(sidecar, app)
        time.sleep(0.05)


def test_an_app_over_its_daily_budget_is_refused_on_the_next_request_and_after_a_restart(
        logs: Path, folder: Path) -> None:
    sidecar = start_sidecar("switchyard-budget", folder, logs, env=APP_ENV)
    try:
        assert ask(sidecar, "metered").status_code == 200
        assert ask(sidecar, "metered").status_code == 200  # 0.014 USD: over 0.01 once counted
        wait_spent(sidecar, "metered", 2 * COST)
        refused = ask(sidecar, "metered")
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "budget_exceeded"
        assert 0 < int(refused.headers["retry-after"]) <= 86_400  # until the next UTC midnight
        claude = anthropic.Anthropic(base_url=sidecar.base_url.removesuffix("/v1"), api_key=KEYS["metered"],
                                     max_retries=0)
        with pytest.raises(anthropic.RateLimitError) as caught:  # its door's shape on the Anthropic door
            claude.messages.create(model="gpt", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
        assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    finally:
        sidecar.process.stop()
    restarted = start_sidecar("switchyard-budget", folder, logs, env=APP_ENV)  # the same state dir
    try:
        assert ask(restarted, "metered").status_code == 429
        assert spent(restarted, "metered")["cost_usd"] == pytest.approx(2 * COST)
    finally:
        restarted.process.stop()


def test_tokens_per_minute(logs: Path, folder: Path, budget_chat: Provider) -> None:
    sidecar = start_sidecar("switchyard-tokens", folder, logs, env=APP_ENV)
    try:
        assert ask(sidecar, "tokens").status_code == 200
        assert ask(sidecar, "tokens").status_code == 200  # 3,000 tokens: over 2,000 once counted
        wait_spent(sidecar, "tokens", 2 * COST)
        before = len(budget_chat.requests())
        refused = openai.OpenAI(base_url=sidecar.base_url, api_key=KEYS["tokens"], max_retries=0)
        with pytest.raises(openai.RateLimitError) as caught:
            refused.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi"}])
        assert caught.value.code == "token_rate_limit_exceeded"
        assert 0 < int(caught.value.response.headers["retry-after"]) <= 60
        assert len(budget_chat.requests()) == before  # refused before any provider was asked
    finally:
        sidecar.process.stop()


@pytest.fixture
def redis(logs: Path) -> Iterator[RedisServer]:
    server = RedisServer(logs, "budget-redis")
    yield server
    server.kill()


def metric(sidecar: Sidecar, line_start: str) -> float | None:
    for line in httpx.get(f"{sidecar.admin_url}/metrics", timeout=10).text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_two_sidecars_share_one_budget_through_redis_and_fail_open_without_it(
        logs: Path, folder: Path, redis: RedisServer) -> None:
    first = start_sidecar("switchyard-shared-1", folder, logs, "--state", redis.url, env=APP_ENV)
    second = start_sidecar("switchyard-shared-2", folder, logs, "--state", redis.url, env=APP_ENV)
    try:
        assert ask(first, "shared").status_code == 200
        assert ask(second, "shared").status_code == 200
        assert ask(first, "shared").status_code == 200  # 0.021 USD through both: over 0.02
        deadline = time.monotonic() + 10
        # Both see the sum: the second's /usage pushes its spend to Redis, then the first's reads it
        # back (a flush does both, as the timer's would within its interval).
        for sidecar in (second, first):
            while spent(sidecar, "shared").get("cost_usd", 0) < 3 * COST - 1e-9:
                assert time.monotonic() < deadline, spent(sidecar, "shared")
                time.sleep(0.1)
        assert httpx.get(f"{second.admin_url}/usage", timeout=10).json()["source"] == "redis"
        assert ask(second, "shared").status_code == 429
        assert ask(first, "shared").status_code == 429
        redis.kill()
        assert ask(first, "metered").status_code == 200  # requests still succeed
        deadline = time.monotonic() + 15
        while metric(first, 'switchyard_state_store_up{store="redis"}') != 0.0:
            assert time.monotonic() < deadline, "the outage never showed in the metrics"
            time.sleep(0.1)
        assert '"event": "state_store_down"' in first.process.log_tail(10**7)
    finally:
        first.process.stop()
        second.process.stop()
