"""The fake provider (harness/fake_provider/server.py) refuses what the real services refuse, in their
error shapes, and accepts what real clients send: a wrong key (401), an unknown model (404), roles,
mid-conversation system messages and tool pairing (400), and the Responses API's items, stream
and previous_response_id. The official SDKs read its errors as the real services' errors."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.e2e.conftest import Provider, start_provider

KEY = "sk-fake-KEY-0123456789"
MODELS = ("gpt-known", "claude-known")
OPENAI_HEADERS = {"authorization": f"Bearer {KEY}"}
ANTHROPIC_HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}


@pytest.fixture(scope="module")
def fake(logs: Path) -> Iterator[Provider]:
    provider = start_provider("strict", logs, "--models", ",".join(MODELS), "--key", KEY)
    yield provider
    provider.process.stop()


@pytest.fixture(autouse=True)
def clean(fake: Provider) -> None:
    fake.reset()


def post(fake: Provider, path: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{fake.url}{path}", json=body, headers=headers, timeout=10)


def chat(fake: Provider, messages: list[dict[str, Any]], **extra: Any) -> httpx.Response:
    return post(fake, "/v1/chat/completions", {"model": "gpt-known", "messages": messages, **extra}, OPENAI_HEADERS)


def messages(fake: Provider, conversation: list[dict[str, Any]], beta: str = "") -> httpx.Response:
    headers = {**ANTHROPIC_HEADERS, **({"anthropic-beta": beta} if beta else {})}
    return post(fake, "/v1/messages", {"model": "claude-known", "max_tokens": 16, "messages": conversation}, headers)


def responses(fake: Provider, **body: Any) -> httpx.Response:
    return post(fake, "/v1/responses", {"model": "gpt-known", **body}, OPENAI_HEADERS)


def openai_client(fake: Provider, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{fake.url}/v1", api_key=key, max_retries=0, timeout=10)


def anthropic_client(fake: Provider, key: str = KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.url, api_key=key, max_retries=0, timeout=10)


HI: Any = [{"role": "user", "content": "hi"}]


def test_a_wrong_or_missing_key_is_401_in_each_apis_shape(fake: Provider) -> None:
    with pytest.raises(openai.AuthenticationError) as wrong:
        openai_client(fake, "sk-wrong-key-000").chat.completions.create(model="gpt-known", messages=HI)
    assert wrong.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        openai_client(fake, "sk-wrong-key-000").responses.create(model="gpt-known", input="hi")
    with pytest.raises(anthropic.AuthenticationError) as refused:
        anthropic_client(fake, "sk-wrong-key-000").messages.create(model="claude-known", max_tokens=8, messages=HI)
    body: Any = refused.value.body
    assert body["error"]["type"] == "authentication_error"
    missing = httpx.post(f"{fake.url}/v1/messages", json={"model": "claude-known", "max_tokens": 8, "messages": HI})
    assert missing.status_code == 401 and missing.json()["type"] == "error"
    assert [r["rejected"]["status"] for r in fake.requests()] == [401, 401, 401, 401]


def test_the_anthropic_key_is_read_from_x_api_key_or_a_bearer_token(fake: Provider) -> None:
    body = {"model": "claude-known", "max_tokens": 8, "messages": HI}
    for headers in ({"x-api-key": KEY}, {"authorization": f"Bearer {KEY}"}):
        assert httpx.post(f"{fake.url}/v1/messages", json=body, headers=headers).status_code == 200


def test_an_unknown_model_is_404_in_each_apis_shape(fake: Provider) -> None:
    with pytest.raises(openai.NotFoundError) as chat_error:
        openai_client(fake).chat.completions.create(model="gpt-unknown", messages=HI)
    assert chat_error.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError) as responses_error:
        openai_client(fake).responses.create(model="gpt-unknown", input="hi")
    assert responses_error.value.code == "model_not_found"
    with pytest.raises(anthropic.NotFoundError) as messages_error:
        anthropic_client(fake).messages.create(model="claude-unknown", max_tokens=8, messages=HI)
    body: Any = messages_error.value.body
    assert body["error"] == {"type": "not_found_error", "message": "model: claude-unknown"}


def test_chat_roles_and_tool_pairing_are_checked(fake: Provider) -> None:
    call = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
    for role in ("system", "developer", "user", "assistant"):
        assert chat(fake, [{"role": role, "content": "x"}, *HI]).status_code == 200, role
    assert chat(fake, [call, {"role": "tool", "tool_call_id": "call_1", "content": "ok"}]).status_code == 200
    robot = chat(fake, [{"role": "robot", "content": "x"}])
    assert robot.status_code == 400 and robot.json()["error"]["param"] == "messages[0].role"
    assert chat(fake, [*HI, {"role": "tool", "tool_call_id": "call_9", "content": "ok"}]).status_code == 400
    assert chat(fake, [call, *HI]).status_code == 400  # a tool call left unanswered
    assert chat(fake, []).status_code == 400


SYSTEM = {"role": "system", "content": [{"type": "text", "text": "be brief"}]}
TOOL_USE = {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]}
RESULT = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"},
                                      {"type": "text", "text": "<system-reminder>x</system-reminder>"}]}
ANSWER = {"role": "assistant", "content": "fine"}


@pytest.mark.parametrize(("conversation", "status"), [
    ([*HI, SYSTEM], 200),  # Claude Code's first request: the system message last
    ([*HI, SYSTEM, TOOL_USE, RESULT, SYSTEM], 200),  # ... and after a tool round trip
    ([*HI, SYSTEM, ANSWER, *HI], 200),
    ([SYSTEM, *HI], 400),  # not first
    ([*HI, SYSTEM, *HI], 400),  # followed by a user message
    ([*HI, SYSTEM, SYSTEM], 400),  # two in a row
    ([*HI, ANSWER, SYSTEM], 400),  # after an assistant message
    ([*HI, {"role": "system", "content": [{"type": "image", "source": {}}]}], 400),  # text only
    ([*HI, TOOL_USE, RESULT], 200),
    ([*HI, TOOL_USE, *HI], 400),  # the tool_use is not answered
    ([*HI, ANSWER, RESULT], 400),  # the tool_result answers nothing
    ([*HI, {"role": "robot", "content": "x"}], 400),
])
def test_messages_roles_follow_the_real_apis_rules(fake: Provider, conversation: list[dict[str, Any]],
                                                   status: int) -> None:
    response = messages(fake, conversation)
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["error"]["type"] == "invalid_request_error"


def test_tool_changes_in_a_system_message_need_claude_codes_beta(fake: Provider) -> None:
    change = {"role": "system", "content": [{"type": "tool_addition", "tool": {"type": "tool_reference", "name": "f"}}]}
    assert messages(fake, [*HI, change]).status_code == 400
    assert messages(fake, [*HI, change], beta="claude-code-20250219,mid-conversation-tool-changes-2026-07-01"
                    ).status_code == 200


def test_responses_answers_and_remembers_its_responses(fake: Provider) -> None:
    client = openai_client(fake)
    tool = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}
    first = client.responses.create(model="gpt-known", instructions="be brief", tools=[tool],  # type: ignore[list-item]
                                    input="call `lookup` with {\"city\": \"Oslo\"}")
    call = first.output[0]
    assert call.type == "function_call" and call.name == "lookup" and json.loads(call.arguments) == {"city": "Oslo"}
    second = client.responses.create(model="gpt-known", previous_response_id=first.id, input=[
        {"type": "function_call_output", "call_id": call.call_id, "output": "cold in Oslo"}])
    assert second.output_text == "strict read the tool result: cold in Oslo"
    unstored = client.responses.create(model="gpt-known", input="hi", store=False)
    assert unstored.output_text == "hello from strict"
    with pytest.raises(openai.NotFoundError) as unknown:
        client.responses.create(model="gpt-known", previous_response_id=unstored.id, input="again")
    assert unknown.value.param == "previous_response_id"


def test_responses_streams_the_real_event_sequence(fake: Provider) -> None:
    with openai_client(fake).responses.stream(model="gpt-known", input="hi") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") == 3  # "hello ", "from ", "strict"
    assert final.output_text == "hello from strict" and final.usage is not None and final.usage.total_tokens == 8


@pytest.mark.parametrize(("items", "param"), [
    ([{"type": "telepathy", "content": "x"}], "input[0]"),
    ([{"type": "message", "role": "robot", "content": "x"}], "input[0].role"),
    ([{"role": "assistant", "content": [{"type": "input_text", "text": "x"}]}], "input[0].content[0]"),
    ([{"role": "user", "content": [{"type": "output_text", "text": "x"}]}], "input[0].content[0]"),
    ([{"type": "function_call_output", "call_id": "call_9", "output": "x"}], "input"),
    ([{"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "another-provider:1"}], "input[0]"),
])
def test_responses_input_items_are_checked(fake: Provider, items: list[dict[str, Any]], param: str) -> None:
    response = responses(fake, input=items)
    assert response.status_code == 400 and response.json()["error"]["param"] == param, response.text


def test_a_reasoning_item_goes_back_to_the_provider_that_wrote_it(fake: Provider) -> None:
    first = responses(fake, input="hi", reasoning={"effort": "low"}, include=["reasoning.encrypted_content"],
                      store=False).json()
    reasoning = first["output"][0]
    assert reasoning["type"] == "reasoning" and reasoning["encrypted_content"]
    again = responses(fake, input=[{"role": "user", "content": "hi"}, reasoning, *first["output"][1:],
                                   {"role": "user", "content": "more"}], store=False)
    assert again.status_code == 200, again.text


def test_file_uploads_are_checked_and_kept_as_their_size_and_digest(fake: Provider) -> None:
    sdk = openai.OpenAI(base_url=f"{fake.url}/v1", api_key=KEY, max_retries=0)
    data = b'{"custom_id": "1"}\n' * 1000
    uploaded = sdk.files.create(file=("requests.jsonl", data), purpose="batch")
    assert (uploaded.bytes, uploaded.filename, uploaded.purpose) == (len(data), "requests.jsonl", "batch")
    [seen] = fake.requests()
    assert seen["path"] == "/v1/files"
    assert seen["body"] == {"filename": "requests.jsonl", "purpose": "batch", "bytes": len(data),
                            "sha256": hashlib.sha256(data).hexdigest()}
    with pytest.raises(openai.BadRequestError) as bad_purpose:
        sdk.files.create(file=("x.txt", b"x"), purpose="training")  # type: ignore[arg-type]
    assert bad_purpose.value.param == "purpose"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{fake.url}/v1", api_key="sk-wrong", max_retries=0).files.create(
            file=("x.txt", b"x"), purpose="batch")
    missing_file = httpx.post(f"{fake.url}/v1/files", data={"purpose": "batch"}, files={"other": b"x"},
                              headers=OPENAI_HEADERS)
    assert missing_file.status_code == 400 and missing_file.json()["error"]["param"] == "file"
