"""The Anthropic front door and `api: anthropic` providers, through real Envoy, with the official
`anthropic` and `openai` SDKs as apps: pass-through on the same API, translation across APIs
(both ways, streaming included: each SDK's stream parser must accept it, and its accumulated
message must equal the non-streamed one), tool-use round trips, images, routing with "auto",
token counting, model lists, errors in each door's shape, broken streams, and Claude Code's
request reaching an Anthropic provider byte for byte but for `model`."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2  # the SDKs' HTTP client: a broken stream surfaces as its error
import openai
import pytest

from tests.e2e.conftest import ALPHA_KEY, BETA_KEY, Provider, Sidecar, provider_fixture, running_sidecar

CLAUDE_CODE_REQUEST = Path(__file__).parents[1] / "fixtures" / "claude_code_request.json"
APP_KEY = "sk-app-never-forwarded"
IMAGE_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WEATHER = {"name": "weather", "description": "the weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
OPENAI_WEATHER = {"type": "function", "function": {"name": "weather", "description": WEATHER["description"],
                                                   "parameters": WEATHER["input_schema"]}}

claude_api = provider_fixture("claude", "claude_api", scope="module")  # speaks the Anthropic API
gpt_api = provider_fixture("gpt", "gpt_api", scope="module")  # speaks the OpenAI API
door_router = provider_fixture("door-router", "door_router", scope="module")
_texts = itertools.count(1)


def fresh(text: str = "hello") -> str:
    """A new conversation each time: a repeated one would be a cached router decision."""
    return f"{text} #{next(_texts)}"


@pytest.fixture(scope="module")
def sidecar(logs: Path, tmp_path_factory: pytest.TempPathFactory, claude_api: Provider, gpt_api: Provider,
            door_router: Provider) -> Iterator[Sidecar]:
    folder = tmp_path_factory.mktemp("door-policies")
    (folder / "default.yaml").write_text(f"""\
version: 1
router: {{endpoint: "{door_router.url}/v1", model: Arch-Router, timeout_ms: 5000}}
failover: {{first_token_s: 2, response_s: 3, stall_s: 1}}
providers:
  anthropic: {{base_url: "{claude_api.url}/v1", api: anthropic, api_key_env: ALPHA_KEY}}
  openai: {{base_url: "{gpt_api.url}/v1", api_key_env: BETA_KEY}}
  nowhere: {{base_url: "http://127.0.0.1:1/v1", api: anthropic}}
models:
  claude: {{provider: anthropic, upstream_model: claude-upstream}}
  gpt: {{provider: openai, upstream_model: gpt-upstream}}
  claude-then-gpt: {{provider: anthropic, upstream_model: claude-upstream, fallbacks: [gpt]}}
  down: {{provider: nowhere}}
routes:
  - {{name: design, description: software design questions, model: claude}}
  - {{name: edits, description: small code edits, model: gpt}}
default_model: gpt
""")
    with running_sidecar("switchyard-doors", folder, logs) as running:
        yield running


@pytest.fixture(autouse=True)
def clean(claude_api: Provider, gpt_api: Provider, door_router: Provider) -> None:
    for provider in (claude_api, gpt_api, door_router):
        provider.reset()
    door_router.control(route="design")


def claude_client(sidecar: Sidecar) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=sidecar.base_url.removesuffix("/v1"), api_key=APP_KEY,
                               max_retries=0, timeout=30)


def openai_client(sidecar: Sidecar) -> openai.OpenAI:
    return openai.OpenAI(base_url=sidecar.base_url, api_key=APP_KEY, max_retries=0, timeout=30)


def answered(message: Any) -> dict[str, Any]:
    """What must be equal between a streamed and a non-streamed answer (ids differ per call)."""
    return message.model_dump(exclude={"id"})


PROVIDER_OF = {"claude": "claude", "gpt": "gpt", "claude-then-gpt": "claude"}


# ---- the Anthropic door ------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["claude", "gpt", "claude-then-gpt"])
def test_anthropic_sdk_non_streaming_and_streaming_agree(
        sidecar: Sidecar, model: str, claude_api: Provider, gpt_api: Provider) -> None:
    gpt_api.control(answer="hello from gpt")  # its default stream differs from its default answer
    client = claude_client(sidecar)
    question = [{"role": "user", "content": fresh()}]
    raw = client.messages.with_raw_response.create(model=model, max_tokens=64, messages=question)
    message = raw.parse()
    assert message.content[0].text == f"hello from {PROVIDER_OF[model]}"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > 0
    assert raw.headers["x-switchyard-model"] == model and raw.headers["x-switchyard-decision"] == "explicit"
    if model == "claude-then-gpt":  # the guarded path, relaying the provider's own answer
        assert raw.headers["x-switchyard-attempts"] == "claude-then-gpt:200"
    with client.messages.stream(model=model, max_tokens=64, messages=question) as stream:
        streamed = stream.get_final_message()
    assert answered(streamed) == answered(message)
    claude = PROVIDER_OF[model] == "claude"
    provider = claude_api if claude else gpt_api
    sent = provider.requests()
    assert [r["body"]["model"] for r in sent] == [f"{PROVIDER_OF[model]}-upstream"] * 2
    for request in sent:  # the provider's key in its API's header; the app's key never
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert APP_KEY not in json.dumps(headers)
        assert headers.get("x-api-key" if claude else "authorization") == (ALPHA_KEY if claude else f"Bearer {BETA_KEY}")
    if model == "gpt":  # translated: an OpenAI chat request, with usage asked for on the stream
        assert sent[0]["path"] == "/v1/chat/completions"
        assert sent[0]["body"]["messages"] == [{"role": "user", "content": question[0]["content"]}]
        assert sent[1]["body"]["stream_options"] == {"include_usage": True}
    else:  # the app's own request: byte for byte but `model`
        assert sent[0]["path"] == "/v1/messages" and "anthropic-version" in {k.lower() for k in sent[0]["headers"]}
        assert json.loads(sent[0]["raw"]) == {"model": "claude-upstream", "max_tokens": 64, "messages": question}


@pytest.mark.parametrize("model", ["claude", "gpt"])
def test_anthropic_sdk_tool_use_round_trip(sidecar: Sidecar, model: str, claude_api: Provider,
                                           gpt_api: Provider) -> None:
    for provider in (claude_api, gpt_api):
        provider.control(use_tools=True)
    client = claude_client(sidecar)
    messages: list[Any] = [{"role": "user", "content": fresh("weather in Paris?")}]
    first = client.messages.create(model=model, max_tokens=64, messages=messages, tools=[WEATHER])  # type: ignore[list-item]
    with client.messages.stream(model=model, max_tokens=64, messages=messages, tools=[WEATHER]) as stream:  # type: ignore[list-item]
        assert answered(stream.get_final_message()) == answered(first)
    assert first.stop_reason == "tool_use"
    call = next(block for block in first.content if block.type == "tool_use")
    assert call.name == "weather" and call.input == {"city": "Paris"}
    messages += [{"role": "assistant", "content": [b.model_dump() for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]}]
    final = client.messages.create(model=model, max_tokens=64, messages=messages, tools=[WEATHER])  # type: ignore[list-item]
    assert final.content[0].text == f"{PROVIDER_OF[model]} read the tool result: sunny"  # type: ignore[union-attr]
    if model == "gpt":  # the tool result reached the OpenAI provider as a `tool` message
        last = gpt_api.requests()[-1]["body"]["messages"]
        assert last[-1] == {"role": "tool", "tool_call_id": call.id, "content": "sunny"}
        assert last[-2]["tool_calls"][0]["function"] == {"name": "weather", "arguments": '{"city": "Paris"}'}


@pytest.mark.parametrize("model", ["claude", "gpt"])
def test_anthropic_sdk_image_block(sidecar: Sidecar, model: str, gpt_api: Provider) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": IMAGE_B64}}
    message = claude_client(sidecar).messages.create(model=model, max_tokens=64, messages=[
        {"role": "user", "content": [image, {"type": "text", "text": fresh("what is this?")}]}])  # type: ignore[list-item]
    assert message.content[0].text == f"hello from {PROVIDER_OF[model]} (1 images)"  # type: ignore[union-attr]
    if model == "gpt":
        part = gpt_api.requests()[0]["body"]["messages"][0]["content"][0]
        assert part == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{IMAGE_B64}"}}


@pytest.mark.parametrize("route, model", [("design", "claude"), ("edits", "gpt")])
def test_auto_routes_anthropic_requests_to_either_kind_of_provider(
        sidecar: Sidecar, door_router: Provider, route: str, model: str) -> None:
    door_router.control(route=route)
    text = fresh("how should I split this service?")
    raw = claude_client(sidecar).messages.with_raw_response.create(
        model="auto", max_tokens=64, system="be brief", messages=[{"role": "user", "content": text}])
    assert raw.parse().content[0].text == f"hello from {model}"  # type: ignore[union-attr]
    assert raw.headers["x-switchyard-route"] == route and raw.headers["x-switchyard-model"] == model
    assert raw.headers["x-switchyard-decision"].startswith("routed:")
    # The router saw the conversation it would see for the same chat completion: the user text.
    prompt = json.dumps(door_router.requests()[0]["body"])
    assert text in prompt and "be brief" not in prompt


def test_a_fallback_across_apis_answers_in_the_doors_shape(sidecar: Sidecar, claude_api: Provider) -> None:
    claude_api.control(status=503)
    raw = claude_client(sidecar).messages.with_raw_response.create(
        model="claude-then-gpt", max_tokens=64, messages=[{"role": "user", "content": fresh()}])
    assert raw.parse().content[0].text == "hello from gpt"  # type: ignore[union-attr]
    assert raw.headers["x-switchyard-model"] == "gpt"
    assert raw.headers["x-switchyard-attempts"] == "claude-then-gpt:503,claude-then-gpt:503,gpt:200"


def test_count_tokens_and_model_list(sidecar: Sidecar, claude_api: Provider) -> None:
    client = claude_client(sidecar)
    messages = [{"role": "user", "content": "count me"}]
    counted = client.messages.count_tokens(model="claude", messages=messages)  # type: ignore[list-item]
    assert counted.input_tokens == len(json.dumps(messages)) // 4
    assert claude_api.requests()[0]["path"] == "/v1/messages/count_tokens"
    assert claude_api.requests()[0]["body"]["model"] == "claude-upstream"
    with pytest.raises(anthropic.BadRequestError, match="count_tokens is not supported"):
        client.messages.count_tokens(model="gpt", messages=messages)  # type: ignore[list-item]
    assert {model.id for model in client.models.list()} >= {"auto", "claude", "gpt", "claude-then-gpt"}


def post_messages(sidecar: Sidecar, body: bytes) -> httpx.Response:
    return httpx.post(f"{sidecar.base_url}/messages", content=body, timeout=30,
                      headers={"content-type": "application/json", "anthropic-version": "2023-06-01"})


@pytest.mark.parametrize("body, status, needle", [
    (b"{not json", 400, "not valid JSON"),
    (b'{"model": "claude", "messages": [{"role": "user", "content": "x"}]}', 400, "max_tokens"),
    (b'{"model": "claude", "max_tokens": 5, "messages": [{"role": "robot", "content": "x"}]}', 400, "role"),
    (b'{"model": "nope", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}', 404, "nope"),
    (b'{"model": "gpt", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "document",'
     b' "source": {"type": "text", "media_type": "text/plain", "data": "x"}}]}]}', 400, "document"),
])
def test_bad_anthropic_bodies_get_anthropic_shaped_errors(sidecar: Sidecar, body: bytes, status: int,
                                                          needle: str) -> None:
    response = post_messages(sidecar, body)
    assert response.status_code == status
    error = response.json()
    assert error["type"] == "error" and needle in error["error"]["message"]
    assert error["error"]["type"] == ("not_found_error" if status == 404 else "invalid_request_error")


def test_what_only_its_own_api_carries_still_reaches_a_provider_of_that_api(
        sidecar: Sidecar, claude_api: Provider) -> None:
    """A model with fallbacks (the guarded path) whose first provider speaks Anthropic: the
    document block, which has no OpenAI form, goes there as it came."""
    document = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}
    body = {"model": "claude-then-gpt", "max_tokens": 5,
            "messages": [{"role": "user", "content": [document, {"type": "text", "text": fresh()}]}]}
    response = post_messages(sidecar, json.dumps(body).encode())
    assert response.status_code == 200, response.text
    assert response.json()["content"][0]["text"] == "hello from claude"
    assert claude_api.requests()[0]["body"]["messages"][0]["content"][0] == document


def test_envoys_own_errors_take_the_anthropic_shape_on_its_door(sidecar: Sidecar) -> None:
    with pytest.raises(anthropic.APIStatusError) as caught:
        claude_client(sidecar).messages.create(model="down", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 503
    assert caught.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    assert "provider unreachable" in caught.value.body["error"]["message"]  # type: ignore[index]


@pytest.mark.parametrize("model", ["auto", "claude-then-gpt"])
def test_claude_code_request_reaches_the_provider_byte_for_byte_but_model(
        sidecar: Sidecar, claude_api: Provider, door_router: Provider, model: str) -> None:
    """Routed (`auto`, the direct path), and named with fallbacks (the guarded path, which sends
    the app's own request to a provider of its own API as it came)."""
    body = CLAUDE_CODE_REQUEST.read_bytes().replace(b'"model":"auto"', f'"model":"{model}"'.encode(), 1)
    headers = {"content-type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": APP_KEY,
               "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
               "user-agent": "claude-cli/2.0.31 (external, cli)", "x-app": "cli"}
    with httpx.stream("POST", f"{sidecar.base_url}/messages?beta=true", content=body, headers=headers,
                      timeout=30) as response:
        events = "".join(response.iter_text())
    assert response.status_code == 200, events
    assert response.headers["x-switchyard-model"] == ("claude" if model == "auto" else model)
    assert response.headers["x-switchyard-decision"].startswith("routed:" if model == "auto" else "explicit")
    assert "event: message_stop" in events
    received = claude_api.requests()[0]
    assert received["raw"].encode() == body.replace(f'"model":"{model}"'.encode(), b'"model":"claude-upstream"', 1)
    assert received["path"] == "/v1/messages"
    sent_headers = {k.lower(): v for k, v in received["headers"].items()}
    assert sent_headers["anthropic-beta"] == headers["anthropic-beta"]
    assert sent_headers["x-api-key"] == ALPHA_KEY and sent_headers["anthropic-version"] == "2023-06-01"
    assert len(door_router.requests()) == (1 if model == "auto" else 0)


# ---- the OpenAI door to an Anthropic provider ------------------------------------------------------


def test_openai_sdk_to_an_anthropic_provider(sidecar: Sidecar, claude_api: Provider) -> None:
    client = openai_client(sidecar)
    messages: list[Any] = [{"role": "system", "content": "be brief"}, {"role": "user", "content": fresh()}]
    raw = client.chat.completions.with_raw_response.create(model="claude", messages=messages)
    completion = raw.parse()
    assert completion.choices[0].message.content == "hello from claude"
    assert completion.choices[0].finish_reason == "stop"
    assert raw.headers["x-switchyard-model"] == "claude"
    with client.chat.completions.stream(model="claude", messages=messages,
                                        stream_options={"include_usage": True}) as stream:
        streamed = stream.get_final_completion()
    assert streamed.choices[0].message.content == completion.choices[0].message.content
    assert streamed.choices[0].finish_reason == completion.choices[0].finish_reason
    assert streamed.usage == completion.usage and completion.usage is not None
    sent = claude_api.requests()[0]
    assert sent["path"] == "/v1/messages" and sent["body"]["system"] == "be brief"
    assert sent["body"]["max_tokens"] > 0 and sent["body"]["model"] == "claude-upstream"
    assert {k.lower(): v for k, v in sent["headers"].items()}["anthropic-version"] == "2023-06-01"


def test_openai_sdk_tool_round_trip_and_image_on_an_anthropic_provider(
        sidecar: Sidecar, claude_api: Provider) -> None:
    claude_api.control(use_tools=True)
    client = openai_client(sidecar)
    messages: list[Any] = [{"role": "user", "content": fresh("weather in Paris?")}]
    first = client.chat.completions.create(model="claude", messages=messages, tools=[OPENAI_WEATHER])  # type: ignore[list-item]
    with client.chat.completions.stream(model="claude", messages=messages, tools=[OPENAI_WEATHER]) as stream:  # type: ignore[list-item]
        streamed = stream.get_final_completion()
    assert first.choices[0].finish_reason == streamed.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    streamed_call = streamed.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert (call.function.name, json.loads(call.function.arguments)) == ("weather", {"city": "Paris"})  # type: ignore[union-attr]
    assert streamed_call.function.arguments == call.function.arguments  # type: ignore[union-attr]
    assert first.choices[0].message.content == streamed.choices[0].message.content == "Let me check."
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    final = client.chat.completions.create(model="claude", messages=messages, tools=[OPENAI_WEATHER])  # type: ignore[list-item]
    assert final.choices[0].message.content == "claude read the tool result: sunny"
    image = client.chat.completions.create(model="claude", messages=[{"role": "user", "content": [
        {"type": "text", "text": fresh("what is this?")},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{IMAGE_B64}"}}]}])
    assert image.choices[0].message.content == "hello from claude (1 images)"
    block = claude_api.requests()[-1]["body"]["messages"][0]["content"][1]
    assert block == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": IMAGE_B64}}


def test_openai_sdk_auto_routes_to_an_anthropic_provider(sidecar: Sidecar, door_router: Provider) -> None:
    raw = openai_client(sidecar).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": fresh("how should I split this service?")}])
    assert raw.parse().choices[0].message.content == "hello from claude"
    assert raw.headers["x-switchyard-model"] == "claude" and raw.headers["x-switchyard-route"] == "design"


# ---- broken streams, on both doors --------------------------------------------------------------


@pytest.mark.parametrize("model", ["claude", "gpt", "claude-then-gpt"])
def test_a_provider_dying_mid_stream_never_ends_an_anthropic_stream_cleanly(
        sidecar: Sidecar, model: str, claude_api: Provider, gpt_api: Provider) -> None:
    for provider in (claude_api, gpt_api):
        provider.control(answer="one two three four five", die_after_chunks=2)
    seen: list[str] = []
    with pytest.raises((anthropic.APIError, httpx2.HTTPError)):
        with claude_client(sidecar).messages.stream(model=model, max_tokens=64,
                                                    messages=[{"role": "user", "content": fresh()}]) as stream:
            for event in stream:
                seen.append(event.type)
    assert "message_stop" not in seen and "content_block_delta" in seen


def test_an_anthropic_provider_dying_mid_stream_never_ends_an_openai_stream_cleanly(
        sidecar: Sidecar, claude_api: Provider) -> None:
    claude_api.control(answer="one two three four five", die_after_chunks=2)
    finishes: list[str | None] = []
    with pytest.raises((openai.APIError, httpx2.HTTPError)):
        for chunk in openai_client(sidecar).chat.completions.create(
                model="claude", messages=[{"role": "user", "content": fresh()}], stream=True):
            finishes += [choice.finish_reason for choice in chunk.choices]
    assert finishes and not any(finishes)
