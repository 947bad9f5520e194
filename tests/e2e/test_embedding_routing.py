"""Routing that works offline, end to end: the `openai` client -> Envoy -> processor with the
in-process embedding tier (real MiniLM) -> local providers; a descriptions-only policy with no
threshold (calibrated) on a set of our own; a live edit adding a route; a hybrid policy whose
Arch-Router dies. (The README quickstart's test is in test_data_path.py: it needs the vLLM
server that module's last test kills.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import json

import openai
import pytest
import yaml

from tests.e2e.conftest import Provider, Sidecar, start_provider, start_sidecar
from harness.live_policy import write_rename_over
from harness.processes import ROOT, http_json, wait_until
from router_model.encoders import ENCODERS

EMBEDDING_POLICY = """\
version: 1
router:
  kind: {kind}
  endpoint: {router_url}/v1
  model: Arch-Router
  timeout_ms: 500
  embedding: {{threshold: 0.25, margin: {margin}}}
providers:
  alpha: {{base_url: {alpha}/v1}}
  beta: {{base_url: {beta}/beta/v1, ca_file: {ca}}}
models:
  alpha-chat: {{provider: alpha}}
  beta-chat: {{provider: beta}}
routes:
  - name: code_generation
    description: "writing code: functions, classes, scripts, SQL queries"
    model: beta-chat
    examples: [write a Python function that sorts a list, create a bash script that renames files]
  - name: travel
    description: "travel planning: flights, hotels, rental cars, itineraries"
    model: alpha-chat
    examples: [book me a flight to Paris, find a hotel near the beach in Lisbon]
{extra}default_model: alpha-chat
"""
COOKING_ROUTE = """\
  - name: cooking
    description: "recipes and cooking: ingredients, baking, how long to cook things"
    model: beta-chat
    examples: [how do I bake sourdough bread, a recipe for vegetarian lasagna]
"""


def policy_text(router_url: str, alpha: Provider, beta: Provider, kind: str = "embedding",
                margin: float = 0.05, extra: str = "") -> str:
    return EMBEDDING_POLICY.format(kind=kind, router_url=router_url, alpha=alpha.url, beta=beta.url,
                                   ca=beta.ca_file, margin=margin, extra=extra)


def ask(sidecar: Sidecar, text: str) -> tuple[dict[str, str], str]:
    raw = openai.OpenAI(base_url=sidecar.base_url, api_key="unused", max_retries=0, timeout=60) \
        .chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": text}])
    completion = raw.parse()
    return {k.lower(): v for k, v in raw.headers.items()}, completion.choices[0].message.content or ""


@pytest.fixture(scope="module")
def embedding_stack(logs: Path, tmp_path_factory: pytest.TempPathFactory, alpha: Provider,
                    beta: Provider) -> Iterator[tuple[Sidecar, Path]]:
    policies = tmp_path_factory.mktemp("embedding-policies")
    (policies / "default.yaml").write_text(policy_text("http://127.0.0.1:1", alpha, beta))
    sidecar = start_sidecar("switchyard-embedding", policies, logs)
    yield sidecar, policies
    sidecar.process.stop()


@pytest.mark.parametrize("text,route,provider", [
    ("write a Python function that merges two dictionaries", "code_generation", "beta"),
    ("generate a SQL query listing customers by total spend", "code_generation", "beta"),
    ("I need a rental car in Denver next weekend", "travel", "alpha"),
    ("what flights go from Boston to Madrid on Friday", "travel", "alpha"),
    ("what is the boiling point of water", "other", "alpha"),
])
def test_embedding_policy_routes_unambiguous_queries(embedding_stack: tuple[Sidecar, Path], alpha: Provider,
                                                     beta: Provider, text: str, route: str, provider: str) -> None:
    sidecar, _ = embedding_stack
    alpha.reset()
    beta.reset()
    headers, content = ask(sidecar, text)
    assert headers["x-switchyard-route"] == route, headers
    assert headers["x-switchyard-decision"] == "routed:embedding"
    assert float(headers["x-switchyard-router-ms"]) < 1000
    assert content == f"hello from {provider}", content  # the fake provider names itself
    served = {"alpha": alpha, "beta": beta}[provider]
    assert [r["body"]["messages"][0]["content"] for r in served.requests()] == [text]


def test_edit_adding_a_route_with_examples_is_followed_on_the_next_request(
        embedding_stack: tuple[Sidecar, Path], alpha: Provider, beta: Provider) -> None:
    sidecar, policies = embedding_stack
    question = "what temperature should I roast a chicken at"
    assert ask(sidecar, question)[0]["x-switchyard-route"] != "cooking"
    generation = http_json("GET", f"{sidecar.admin_url}/policies")["generation"]
    write_rename_over(policies / "default.yaml", policy_text("http://127.0.0.1:1", alpha, beta, extra=COOKING_ROUTE))
    wait_until(lambda: http_json("GET", f"{sidecar.admin_url}/policies")["generation"] > generation
               and "cooking" in http_json("GET", f"{sidecar.admin_url}/policies")["policies"]["default"]["routes"],
               10, "the edit is loaded")
    headers, content = ask(sidecar, question)  # the very next request
    assert headers["x-switchyard-route"] == "cooking" and content == "hello from beta"


def test_hybrid_moves_to_the_embedding_tier_when_arch_router_dies(
        logs: Path, tmp_path_factory: pytest.TempPathFactory, alpha: Provider, beta: Provider) -> None:
    arch = start_provider("hybrid-arch-router", logs)
    arch.control(route="travel")  # Arch-Router's answer while it lives (deliberately "wrong")
    policies = tmp_path_factory.mktemp("hybrid-policies")
    # margin 2: the embedding tier is never confident alone, so every decision asks Arch-Router.
    (policies / "default.yaml").write_text(policy_text(arch.url, alpha, beta, kind="hybrid", margin=2))
    sidecar = start_sidecar("switchyard-hybrid", policies, logs)
    try:
        headers, _ = ask(sidecar, "write a Python class for a bank account")
        assert (headers["x-switchyard-decision"], headers["x-switchyard-route"]) == ("routed:arch-router", "travel")
        arch.process.stop()
        # New conversations: the decision cached for the first one would be reused otherwise.
        outcomes = [ask(sidecar, f"write a Python class for a bank account, variant {i}")[0] for i in range(5)]
        assert {(h["x-switchyard-decision"], h["x-switchyard-route"], h["x-switchyard-model"]) for h in outcomes} \
            == {("degraded:router_unavailable", "code_generation", "beta-chat")}
    finally:
        sidecar.process.stop()
        arch.process.stop()


SHORT = ROOT / "eval" / "short"  # three routes in a few words each, no examples, no threshold
SHORT_MODELS = {"coder": "beta", "traveller": "alpha", "cook": "beta", "assistant": "alpha"}


def short_policy(alpha: Provider, beta: Provider) -> dict:
    policy = yaml.safe_load((SHORT / "policy.yaml").read_text())
    assert "threshold" not in json.dumps(policy["router"])
    policy["providers"] = {"alpha": {"base_url": f"{alpha.url}/v1"},
                           "beta": {"base_url": f"{beta.url}/beta/v1", "ca_file": beta.ca_file}}
    policy["models"] = {name: {"provider": provider} for name, provider in SHORT_MODELS.items()}
    return policy


@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_descriptions_only_policy_without_threshold_routes_our_set_and_sends_other_to_the_default(
        logs: Path, tmp_path_factory: pytest.TempPathFactory, alpha: Provider, beta: Provider, encoder: str) -> None:
    """eval/short/requests.jsonl through Envoy, with each encoder a policy may name: every `other`
    request reaches the default model, at least 90 % of the rest their route's model (eval/short's
    figure in README, "Routing quality"), and each decision, with its score in the `decision` log
    line, is the one `switchyard eval` makes in-process (so the workers ran that encoder)."""
    policy = short_policy(alpha, beta)
    policy["router"].setdefault("embedding", {})["encoder"] = encoder
    policies = tmp_path_factory.mktemp("short-policies")
    (policies / "default.yaml").write_text(yaml.safe_dump(policy))
    models = {r["name"]: r["model"] for r in policy["routes"]} | {"other": policy["default_model"]}
    items = [json.loads(line) for line in (SHORT / "requests.jsonl").read_text().splitlines()]
    sidecar = start_sidecar(f"switchyard-short-{encoder}", policies, logs)
    try:
        decided, asked = {}, {}
        for item in items:
            text = item["messages"][-1]["content"]
            headers, content = ask(sidecar, text)
            route = headers["x-switchyard-route"]
            assert headers["x-switchyard-decision"] == "routed:embedding"
            assert headers["x-switchyard-model"] == models[route]
            assert content == f"hello from {SHORT_MODELS[models[route]]}"  # that model's provider answered
            decided[text], asked[headers["x-request-id"]] = route, text
    finally:
        sidecar.process.stop()
    others = [i["messages"][-1]["content"] for i in items if i["route"] == "other"]
    assert len(others) == 10 and {decided[t] for t in others} == {"other"}
    in_scope = [(i["messages"][-1]["content"], i["route"]) for i in items if i["route"] != "other"]
    assert sum(decided[t] == route for t, route in in_scope) >= 0.9 * len(in_scope), decided
    expected = in_process(policies / "default.yaml", list(decided))
    assert decided == {text: route for text, (route, _) in expected.items()}
    lines = [json.loads(line) for line in sidecar.process.log_path.read_text().splitlines() if line.startswith("{")]
    scores = {asked[line["request_id"]]: line["score"] for line in lines
              if line.get("event") == "decision" and line.get("request_id") in asked}
    assert len(scores) == len(items)
    assert all(abs(scores[text] - score) <= 0.0011 for text, (_, score) in expected.items()), (scores, expected)


def in_process(policy_file: Path, texts: list[str]) -> dict[str, tuple[str, float]]:
    """The decisions (route, winning score) of the in-process decision path (`switchyard route` /
    `eval`)."""
    import asyncio

    from control_plane.policy.loader import load_policy_file
    from control_plane.routing.choice import choose_model
    from router_model.kinds import RouterFactory

    policy = load_policy_file(policy_file)

    async def decide() -> dict[str, str]:
        factory = RouterFactory()
        try:
            router = factory.build(policy.router, policy.route_specs)
            decisions = {t: (await choose_model(policy, "auto", [{"role": "user", "content": t}], router))[1]
                         for t in texts}
            return {t: (d.route, d.score) for t, d in decisions.items() if d.score is not None}
        finally:
            await factory.close()

    return asyncio.run(decide())
