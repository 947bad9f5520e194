"""Decisions for agents, through real Envoy with the `openai` client: one router call per user
turn through a tool loop, the same upstream for the whole loop, a new turn asks again; the cache
is dropped on a policy edit, bounded in size, and concurrent twins make one router call. Router
calls are counted on the scripted router's side."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Provider, Sidecar, provider_fixture, running_sidecar

agent_llm = provider_fixture("agent-llm", "agent_llm", scope="module")
agent_router = provider_fixture("agent-router", "agent_router", scope="module")
CACHE_SIZE = 5


def policy_text(router: Provider, llm: Provider, extra_route: bool = False) -> str:
    text = f"""\
version: 1
router:
  endpoint: "{router.url}/v1"
  model: Arch-Router
  timeout_ms: 5000
  cache: {{max_entries: {CACHE_SIZE}}}
providers:
  llm: {{base_url: "{llm.url}/v1"}}
models:
  coder: {{provider: llm, upstream_model: llm-coder}}
  helper: {{provider: llm, upstream_model: llm-helper}}
routes:
  - {{name: code, description: writing or fixing code, model: coder}}
default_model: helper
"""
    if extra_route:
        text = text.replace("default_model:", "  - {name: docs, description: writing documentation, model: helper}\ndefault_model:")
    return text


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory, agent_router: Provider, agent_llm: Provider) -> Path:
    folder = tmp_path_factory.mktemp("agent-policies")
    (folder / "default.yaml").write_text(policy_text(agent_router, agent_llm))
    return folder


@pytest.fixture(scope="module")
def sidecar(logs: Path, policies: Path) -> Iterator[Sidecar]:
    with running_sidecar("switchyard-agents", policies, logs) as running:
        yield running


@pytest.fixture(autouse=True)
def clean(agent_llm: Provider, agent_router: Provider) -> None:
    agent_llm.reset()
    agent_router.reset()
    agent_router.control(route="code")


TOOLS = [{"type": "function", "function": {"name": "run_tests", "parameters": {"type": "object", "properties": {}}}}]


def call(index: int) -> dict:
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": f"call_{index}", "type": "function", "function": {"name": "run_tests", "arguments": "{}"}}]}


def send(sidecar: Sidecar, messages: list[dict]) -> tuple[str, str]:
    client = openai.OpenAI(base_url=sidecar.base_url, api_key="unused", max_retries=0, timeout=30)
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=messages, tools=TOOLS)
    raw.parse()
    return raw.headers["x-switchyard-decision"], raw.headers["x-switchyard-model"]


def router_calls(router: Provider) -> int:
    """Routing requests only (not the one-step planner's /tokenize, which this fake cannot serve)."""
    return len([r for r in router.requests() if r["path"].endswith("/chat/completions")])


def test_a_tool_loop_asks_the_router_once_per_user_turn(
        sidecar: Sidecar, agent_router: Provider, agent_llm: Provider) -> None:
    history = [{"role": "system", "content": "You are a coding agent."},
               {"role": "user", "content": "fix the failing test in utils.py"}]
    assert send(sidecar, history) == ("routed:arch-router", "coder")
    assert router_calls(agent_router) == 1
    agent_router.control(route="other")  # were it asked again, the router would now say `other`
    for index in range(3):
        history += [call(index), {"role": "tool", "tool_call_id": f"call_{index}", "content": "1 failed"}]
        assert send(sidecar, history) == ("sticky", "coder")
    assert router_calls(agent_router) == 1
    assert {r["body"]["model"] for r in agent_llm.requests()} == {"llm-coder"}  # one upstream model
    history += [{"role": "assistant", "content": "Fixed."},
                {"role": "user", "content": "thanks, what is the capital of France?"}]
    assert send(sidecar, history) == ("routed:arch-router", "helper")
    assert router_calls(agent_router) == 2


def test_a_policy_edit_drops_the_cached_decisions(
        sidecar: Sidecar, policies: Path, agent_router: Provider, agent_llm: Provider) -> None:
    turn = [{"role": "user", "content": "refactor the parser module"}]
    send(sidecar, turn)
    assert send(sidecar, turn)[0] == "cached"
    (policies / "default.yaml").write_text(policy_text(agent_router, agent_llm, extra_route=True))
    try:
        deadline = time.monotonic() + 15
        while send(sidecar, turn)[0] == "cached":  # until the edited policy is in use
            assert time.monotonic() < deadline, "the edit never took effect"
            time.sleep(0.1)
        assert router_calls(agent_router) == 2  # asked again under the new version
    finally:
        (policies / "default.yaml").write_text(policy_text(agent_router, agent_llm))


def cache_entries(sidecar: Sidecar) -> float:
    text = httpx.get(f"{sidecar.admin_url}/metrics").text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "switchyard_decision_cache_entries" and s.labels["policy"] == "default")


def test_the_cache_stays_within_its_size(sidecar: Sidecar, agent_router: Provider) -> None:
    for index in range(10 * CACHE_SIZE):
        send(sidecar, [{"role": "user", "content": f"write function number {index}"}])
    assert router_calls(agent_router) == 10 * CACHE_SIZE
    assert cache_entries(sidecar) == CACHE_SIZE


def test_concurrent_identical_requests_make_one_router_call(sidecar: Sidecar, agent_router: Provider) -> None:
    agent_router.control(route="code", delay_ms=1000)  # all five arrive while the first is asked
    turn = [{"role": "user", "content": "add type hints to models.py"}]
    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        kinds = list(pool.map(lambda _: send(sidecar, turn)[0], range(5)))
    assert router_calls(agent_router) == 1
    assert sorted(kinds) == ["cached"] * 4 + ["routed:arch-router"]
