"""The processor on the doors and names added for real agent clients: the Responses API door
(routing, pinning by previous_response_id), policy aliases, `GET /v1/models/{id}`, embeddings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from control_plane.extproc.processor import Forward, Reply, RequestProcessor, Shared
from control_plane.headers import CLUSTER_HEADER, FAILOVER_CLUSTER, PLAN_HEADER, parse_plan
from control_plane.policy.loader import parse_policy
from control_plane.policy.model import PolicySet
from control_plane.policy.snapshot import Snapshot
from control_plane.routing.response_store import StoredResponse
from tests.support.scripted_router import ScriptedRouter
from tests.unit.test_policy_loader import GOOD

POLICY = GOOD.replace("  local:\n", "  local:\n    responses: native\n").replace(
    "default_model: small\n", "default_model: small\naliases:\n  claude-haiku-*: small\n  gpt-5*-codex: auto\n")


def make(router: ScriptedRouter, shared: Shared | None = None) -> RequestProcessor:
    policies = PolicySet({"default": parse_policy(POLICY, "default.yaml", "default")})
    return RequestProcessor(Snapshot(policies, {"default": router}), shared)


async def send(processor: RequestProcessor, path: str, body: dict[str, Any]) -> Forward | Reply:
    first = await processor.on_request_headers({":method": "POST", ":path": path}, end_of_stream=False)
    assert isinstance(first, Forward) and first.want_body
    return await processor.on_request_body(json.dumps(body).encode())


async def test_a_responses_request_is_routed_and_translated_on_the_guarded_path() -> None:
    router = ScriptedRouter(route="code_generation")
    action = await send(make(router), "/v1/responses", {"model": "auto", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "write a sort function"}]}]})
    assert isinstance(action, Forward) and action.metadata["decision"] == "routed:arch-router"
    assert router.queries[0].conversation[-1].content == "write a sort function"
    headers = dict(action.set_headers)  # gpt-4o's provider speaks chat only: translated
    assert headers[CLUSTER_HEADER] == FAILOVER_CLUSTER
    assert parse_plan(headers[PLAN_HEADER]) == ("default", "gpt-4o", "code_generation")


async def test_a_native_responses_provider_without_storage_takes_the_direct_path() -> None:
    action = await send(make(ScriptedRouter()), "/v1/responses", {"model": "small", "input": "hi", "store": False})
    assert isinstance(action, Forward) and dict(action.set_headers)[CLUSTER_HEADER].startswith("local-")
    assert json.loads(action.body or b"")["model"] == "SmolLM2-135M-Instruct"
    stored = await send(make(ScriptedRouter()), "/v1/responses", {"model": "small", "input": "hi"})
    assert isinstance(stored, Forward)  # answers that may be continued are seen on the guarded path
    assert dict(stored.set_headers)[CLUSTER_HEADER] == FAILOVER_CLUSTER


async def test_function_call_outputs_continue_the_turn() -> None:
    router = ScriptedRouter(route="code_generation")
    processor_shared = Shared()
    ask = {"role": "user", "content": "write a sort function"}
    first = await send(make(router, processor_shared), "/v1/responses", {"model": "auto", "input": [ask]})
    loop = await send(make(router, processor_shared), "/v1/responses", {"model": "auto", "input": [
        ask, {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": '{"command": ["ls"]}'},
        {"type": "function_call_output", "call_id": "c1", "output": "a.txt"}]})
    assert first.metadata["decision"] == "routed:arch-router" and loop.metadata["decision"] == "sticky"
    assert len(router.queries) == 1


async def test_previous_response_id_pins_a_native_answer_and_unknown_ids_are_404() -> None:
    shared = Shared()
    shared.responses.keep("resp_native", StoredResponse("default", "small", "code_generation", native=True))
    router = ScriptedRouter(route="code_generation")
    pinned = await send(make(router, shared), "/v1/responses",
                        {"model": "auto", "input": "and now in Go", "previous_response_id": "resp_native"})
    assert isinstance(pinned, Forward) and router.queries == []
    assert pinned.metadata["model"] == "small" and pinned.metadata["decision"] == "sticky"
    missing = await send(make(router, shared), "/v1/responses",
                         {"model": "auto", "input": "x", "previous_response_id": "resp_nobody"})
    assert isinstance(missing, Reply) and missing.status == 404
    assert json.loads(missing.body)["error"]["code"] == "previous_response_not_found"


async def test_a_kept_conversation_is_read_before_the_new_input() -> None:
    shared = Shared()
    earlier = ({"role": "user", "content": "write a sort function"}, {"role": "assistant", "content": "def sort"})
    shared.responses.keep("resp_kept", StoredResponse("default", "gpt-4o", "code_generation", False,
                                                      ({"type": "message"},), earlier))
    router = ScriptedRouter(route="code_generation")
    await send(make(router, shared), "/v1/responses",
               {"model": "auto", "input": "now make it stable", "previous_response_id": "resp_kept"})
    assert [m.content for m in router.queries[0].conversation] == [
        "write a sort function", "def sort", "now make it stable"]


@pytest.mark.parametrize("door", ["/v1/chat/completions", "/v1/responses"])
async def test_aliases_resolve_client_model_names(door: str) -> None:
    router = ScriptedRouter(route="code_generation")
    body = {"model": "gpt-5.1-codex", "input": "write code"} if door == "/v1/responses" else \
        {"model": "gpt-5.1-codex", "messages": [{"role": "user", "content": "write code"}]}
    action = await send(make(router), door, body)
    assert action.metadata["decision"] == "routed:arch-router"
    assert action.metadata["requested_model"] == "gpt-5.1-codex"
    haiku = await send(make(router), "/v1/chat/completions",
                       {"model": "claude-haiku-4-5-20251001", "messages": [{"role": "user", "content": "hi"}]})
    assert haiku.metadata["model"] == "small" and haiku.metadata["decision"] == "explicit"


@pytest.mark.parametrize("anthropic", [False, True])
async def test_models_by_id_answer_in_the_asking_sdks_shape(anthropic: bool) -> None:
    headers = {":method": "GET", "anthropic-version": "2023-06-01"} if anthropic else {":method": "GET"}
    found = await make(ScriptedRouter()).on_request_headers({**headers, ":path": "/v1/models/claude-haiku-4-5"}, True)
    assert isinstance(found, Reply) and found.status == 200
    assert json.loads(found.body)["id"] == "claude-haiku-4-5"
    assert ("type" in json.loads(found.body)) is anthropic
    missing = await make(ScriptedRouter()).on_request_headers({**headers, ":path": "/v1/models/gpt-9"}, True)
    assert isinstance(missing, Reply) and missing.status == 404
    error = json.loads(missing.body)
    assert (error.get("type") == "error") is anthropic and "gpt-9" in missing.body.decode()


async def test_embeddings_never_take_the_router_alias() -> None:
    refused = await send(make(ScriptedRouter()), "/v1/embeddings", {"model": "auto", "input": "x"})
    assert isinstance(refused, Reply) and refused.status == 400
    assert json.loads(refused.body)["error"]["code"] == "router_alias_not_supported"
    named = await send(make(ScriptedRouter()), "/v1/embeddings", {"model": "small", "input": "x"})
    assert isinstance(named, Forward) and json.loads(named.body or b"")["model"] == "SmolLM2-135M-Instruct"
    other = await send(make(ScriptedRouter()), "/v1/embeddings", {"model": "text-embedding-3-small", "input": "x"})
    assert isinstance(other, Forward) and other.body is None  # unchanged, to the default model's provider
    assert other.metadata["decision"] == "passthrough"


async def test_an_unforeseen_exception_is_a_500_in_the_doors_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    router = ScriptedRouter(raises=None)
    processor = make(router)
    monkeypatch.setattr("control_plane.extproc.processor.choose_model", _explode)
    first = await processor.on_request_headers({":method": "POST", ":path": "/v1/messages", "x-request-id": "r-1"}, False)
    assert isinstance(first, Forward)
    action = await processor.on_request_body(json.dumps(
        {"model": "auto", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}).encode())
    assert isinstance(action, Reply) and action.status == 500
    body = json.loads(action.body)
    assert body["type"] == "error" and "r-1" in body["error"]["message"]  # Anthropic's shape, the request id
    assert action.metadata == {"decision": "rejected", "reason": "internal_error", "policy": "default"}


async def _explode(*_: Any, **__: Any) -> Any:
    raise RuntimeError("a bug")
