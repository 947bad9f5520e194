"""The per-request processor, with a scripted router in place of Arch-Router."""

from __future__ import annotations

import json

import pytest

from control_plane.extproc.processor import Forward, Reply, RequestProcessor
from control_plane.headers import CLUSTER_HEADER, FAILOVER_CLUSTER, PLAN_HEADER, parse_plan
from control_plane.policy.loader import parse_policy
from control_plane.policy.model import PolicySet
from control_plane.policy.snapshot import Snapshot
from tests.support.scripted_router import ScriptedRouter
from tests.unit.test_policy_loader import GOOD

CHAT_HEADERS = {":method": "POST", ":path": "/v1/chat/completions", "authorization": "Bearer client-key",
                "x-switchyard-cluster": "evil", "x-switchyard-policy": "default"}


def make(router: ScriptedRouter) -> RequestProcessor:
    policies = PolicySet({"default": parse_policy(GOOD, "default.yaml", "default")})
    return RequestProcessor(Snapshot(policies, {"default": router}))


def chat(model: str, text: str = "write a function") -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": text}], "n": 2,
                       "tools": [{"type": "function", "function": {"name": "f"}}], "extra_field": {"x": 1}}).encode()


async def body_action(processor: RequestProcessor, body: bytes, headers: dict | None = None) -> Forward | Reply:
    first = await processor.on_request_headers(headers or CHAT_HEADERS, end_of_stream=False)
    assert isinstance(first, Forward) and first.want_body
    return await processor.on_request_body(body)


async def test_auto_routes_and_rewrites_model_and_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-provider")
    router = ScriptedRouter(route="code_generation")
    action = await body_action(make(router), chat("auto"))
    assert isinstance(action, Forward)
    headers = dict(action.set_headers)
    assert headers[CLUSTER_HEADER].startswith("openai-")
    assert headers["authorization"] == "Bearer sk-provider"
    assert headers["content-length"] == str(len(action.body))
    assert "x-switchyard-policy" in action.remove_headers
    assert action.clear_route_cache
    sent = json.loads(action.body)
    assert sent["model"] == "gpt-4o"
    assert sent["n"] == 2 and sent["extra_field"] == {"x": 1} and sent["tools"][0]["function"]["name"] == "f"
    policy_version = make(router).policies.default.version
    assert action.metadata == {"policy": "default", "route": "code_generation", "model": "gpt-4o",
                               "decision": "routed:arch-router", "router_ms": "12.5",
                               "policy_version": policy_version, "api": "openai", "request_id": ""}
    assert router.queries[0].conversation[0].content == "write a function"


async def test_client_credentials_are_removed_when_provider_has_no_key() -> None:
    action = await body_action(make(ScriptedRouter()), chat("small"))
    assert isinstance(action, Forward)
    assert "authorization" in action.remove_headers
    assert "authorization" not in dict(action.set_headers)


async def test_explicit_model_skips_router() -> None:
    router = ScriptedRouter(route="code_generation")
    action = await body_action(make(router), chat("small"))
    assert isinstance(action, Forward)
    assert router.queries == []
    assert action.metadata["decision"] == "explicit" and "router_ms" not in action.metadata
    assert json.loads(action.body)["model"] == "SmolLM2-135M-Instruct"


async def test_router_says_other_goes_to_default_model() -> None:
    action = await body_action(make(ScriptedRouter(route=None, reason="other")), chat("auto"))
    assert action.metadata["route"] == "other" and action.metadata["model"] == "small"
    assert action.metadata["decision"] == "routed:arch-router"


@pytest.mark.parametrize("reason", ["router_timeout", "router_unavailable", "router_error", "unparseable", "unknown_route"])
async def test_router_failure_falls_back_to_default(reason: str) -> None:
    action = await body_action(make(ScriptedRouter(route=None, reason=reason)), chat("auto"))
    assert isinstance(action, Forward)
    assert action.metadata["decision"] == f"fallback:{reason}"
    assert json.loads(action.body)["model"] == "SmolLM2-135M-Instruct"


async def test_router_crash_falls_back_to_default() -> None:
    action = await body_action(make(ScriptedRouter(raises=RuntimeError("boom"))), chat("auto"))
    assert isinstance(action, Forward) and action.metadata["decision"] == "fallback:router_error"


async def test_unknown_model_is_404_listing_known_names() -> None:
    action = await body_action(make(ScriptedRouter()), chat("gpt-9"))
    assert isinstance(action, Reply) and action.status == 404
    error = json.loads(action.body)["error"]
    assert error["code"] == "model_not_found" and "auto, gpt-4o, small" in error["message"]


@pytest.mark.parametrize(
    "body,code",
    [(b"{not json", "invalid_json"), (b"\xff\xfe", "invalid_body"), (b"[1, 2]", "invalid_body"),
     (b'{"model": "auto"}', "invalid_messages"), (b'{"model": "auto", "messages": "hi"}', "invalid_messages"),
     (b'{"model": "auto", "messages": [{"content": "no role"}]}', "invalid_messages"),
     (b'{"messages": [{"role": "user", "content": "x"}]}', "invalid_model")],
)
async def test_bad_bodies_are_400_in_openai_shape(body: bytes, code: str) -> None:
    action = await body_action(make(ScriptedRouter()), body)
    assert isinstance(action, Reply) and action.status == 400
    assert json.loads(action.body)["error"]["code"] == code
    assert ("content-type", "application/json") in action.headers


async def test_unknown_policy_is_a_clear_404() -> None:
    action = await make(ScriptedRouter()).on_request_headers({**CHAT_HEADERS, "x-switchyard-policy": "nope"}, False)
    assert isinstance(action, Reply) and action.status == 404
    assert "unknown policy 'nope'" in json.loads(action.body)["error"]["message"]


async def test_other_paths_go_to_default_provider_without_body() -> None:
    action = await make(ScriptedRouter()).on_request_headers({":method": "POST", ":path": "/v1/files"}, False)
    assert isinstance(action, Forward) and not action.want_body
    assert dict(action.set_headers)[CLUSTER_HEADER].startswith("local-")
    assert action.metadata["decision"] == "passthrough"


async def test_models_list_answers_from_policy() -> None:
    action = await make(ScriptedRouter()).on_request_headers({":method": "GET", ":path": "/v1/models"}, True)
    assert isinstance(action, Reply) and action.status == 200
    assert [m["id"] for m in json.loads(action.body)["data"]] == ["auto", "gpt-4o", "small"]


async def test_chat_without_body_is_400() -> None:
    action = await make(ScriptedRouter()).on_request_headers(CHAT_HEADERS, end_of_stream=True)
    assert isinstance(action, Reply) and action.status == 400


async def test_declared_body_over_the_limit_is_413_before_buffering() -> None:
    headers = {**CHAT_HEADERS, "content-length": str(8 * 1024 * 1024 + 1)}
    action = await make(ScriptedRouter()).on_request_headers(headers, end_of_stream=False)
    assert isinstance(action, Reply) and action.status == 413
    assert json.loads(action.body)["error"]["code"] == "request_too_large"


async def test_buffered_body_over_the_limit_is_413() -> None:
    action = await body_action(make(ScriptedRouter()), b" " * (8 * 1024 * 1024 + 1))
    assert isinstance(action, Reply) and action.status == 413


async def test_a_model_with_fallbacks_takes_the_guarded_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-provider")
    text = GOOD.replace("{provider: openai}", "{provider: openai, fallbacks: [small]}")
    processor = RequestProcessor(Snapshot(PolicySet({"default": parse_policy(text, "d.yaml", "default")}),
                                          {"default": ScriptedRouter(route="code_generation")}))
    action = await body_action(processor, chat("auto"))
    assert isinstance(action, Forward)
    headers = dict(action.set_headers)
    assert headers[CLUSTER_HEADER] == FAILOVER_CLUSTER
    assert parse_plan(headers[PLAN_HEADER]) == ("default", "gpt-4o", "code_generation")
    assert action.body is None  # `model` and the key are set per attempt, by the guarded path
    assert "authorization" not in headers and "authorization" in action.remove_headers
    assert action.metadata["model"] == "gpt-4o" and action.metadata["decision"] == "routed:arch-router"


async def test_decision_log_line_carries_the_winning_score_and_the_runner_up() -> None:
    from structlog.testing import capture_logs

    from router_model.router import RouterOutcome, RouterQuery

    class Scoring:
        async def decide(self, query: RouterQuery) -> RouterOutcome:
            return RouterOutcome("code_generation", "matched", 4.2, "embedding", None, 0.61234, "other", 0.4)

    policies = PolicySet({"default": parse_policy(GOOD, "default.yaml", "default")})
    processor = RequestProcessor(Snapshot(policies, {"default": Scoring()}))  # type: ignore[dict-item]
    with capture_logs() as logs:
        action = await body_action(processor, chat("auto"))
    assert isinstance(action, Forward) and action.metadata["route"] == "code_generation"
    [decision] = [line for line in logs if line["event"] == "decision"]
    assert (decision["score"], decision["runner_up"], decision["runner_up_score"]) == (0.612, "other", 0.4)
    # A router that gives no scores (Arch-Router) adds no such fields.
    with capture_logs() as logs:
        await body_action(make(ScriptedRouter(route="code_generation")), chat("auto"))
    [decision] = [line for line in logs if line["event"] == "decision"]
    assert "score" not in decision and "runner_up" not in decision
