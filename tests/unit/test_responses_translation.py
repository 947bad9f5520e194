"""OpenAI Responses API <-> chat completions: requests, whole answers and streams, checked
against the openai SDK's own Responses types (so what Codex and the Agents SDK read parses)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from control_plane.apis import anthropic_translate
from control_plane.apis.request_error import RequestError
from control_plane.apis.responses import continued, parse_responses_request
from control_plane.apis.responses_streams import OpenAIToResponsesStream
from control_plane.apis.responses_translate import request_to_openai, response_from_openai
from control_plane.apis.sse import encode_event

EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
SHELL = {"type": "function", "name": "shell", "description": "run a command", "strict": False,
         "parameters": {"type": "object", "properties": {"command": {"type": "array"}}}}
PATCH = {"type": "custom", "name": "apply_patch", "description": "apply a patch",
         "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}
REQUEST: dict[str, Any] = {
    "model": "auto", "instructions": "You are Codex.", "stream": True, "store": False,
    "tools": [SHELL, PATCH, {"type": "web_search"}], "tool_choice": "auto", "parallel_tool_calls": False,
    "reasoning": {"effort": "medium", "summary": "auto"}, "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "abc", "max_output_tokens": 300,
    "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<environment_context>cwd</environment_context>"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list the files"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"},
        {"type": "function_call", "call_id": "call_1", "name": "shell", "arguments": '{"command": ["ls"]}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "a.txt"},
        {"type": "custom_tool_call", "call_id": "call_2", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "custom_tool_call_output", "call_id": "call_2", "output": "Done"},
    ],
}


def test_a_responses_request_becomes_a_chat_request() -> None:
    dropped: set[str] = set()
    out = request_to_openai(REQUEST, dropped)
    assert out["messages"] == [
        {"role": "system", "content": "You are Codex."},
        {"role": "user", "content": "<environment_context>cwd</environment_context>"},
        {"role": "user", "content": "list the files"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "shell", "arguments": '{"command": ["ls"]}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "a.txt"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_2", "type": "function", "function": {"name": "apply_patch",
                                                              "arguments": '{"input": "*** Begin Patch"}'}}]},
        {"role": "tool", "tool_call_id": "call_2", "content": "Done"},
    ]
    assert [t["function"]["name"] for t in out["tools"]] == ["shell", "apply_patch"]
    assert out["tools"][1]["function"]["parameters"]["required"] == ["input"]
    assert out["max_tokens"] == 300 and out["parallel_tool_calls"] is False and out["tool_choice"] == "auto"
    assert out["stream_options"] == {"include_usage": True}
    # Hints meant for another model or service are named, not silently lost.
    assert dropped == {"tool:web_search", "input:reasoning", "reasoning", "include", "prompt_cache_key"}


def test_what_a_chat_provider_cannot_carry_is_a_400() -> None:
    for body, needle in [({**REQUEST, "background": True}, "background"),
                         ({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}, "item_reference"),
                         ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
                          "input_file")]:
        with pytest.raises(RequestError, match=needle) as caught:
            request_to_openai(body, set())
        assert caught.value.code == "untranslatable"


def test_structured_output_is_carried_both_to_chat_and_to_anthropic() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    chat = request_to_openai({"model": "m", "input": "x", "text": {
        "format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": True}}}, set())
    assert chat["response_format"] == {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema,
                                                                              "strict": True}}
    anthropic = anthropic_translate.request_from_openai({**chat, "max_tokens": 10}, set())
    assert anthropic["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    back = anthropic_translate.request_to_openai({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "x"}], "output_config": anthropic["output_config"]})
    assert back["response_format"]["json_schema"]["schema"] == schema


def test_a_chat_answer_becomes_a_response_the_sdk_reads() -> None:
    completion = {"id": "c1", "model": "gpt-x", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Let me look.", "tool_calls": [
            {"id": "call_9", "type": "function", "function": {"name": "shell", "arguments": '{"command":["ls"]}'}},
            {"id": "call_10", "type": "function", "function": {"name": "apply_patch", "arguments": '{"input":"P"}'}}]}}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 2}}}
    response = Response.model_validate(json.loads(response_from_openai(json.dumps(completion).encode(), REQUEST)))
    assert response.status == "completed" and response.output_text == "Let me look."
    kinds = [item.type for item in response.output]
    assert kinds == ["message", "function_call", "custom_tool_call"]
    assert response.output[1].call_id == "call_9" and response.output[2].input == "P"  # type: ignore[union-attr]
    assert response.usage is not None and response.usage.input_tokens == 7
    assert response.usage.input_tokens_details.cached_tokens == 2
    cut = {"choices": [{"index": 0, "finish_reason": "length", "message": {"content": "abc"}}]}
    incomplete = json.loads(response_from_openai(json.dumps(cut).encode(), {}))
    assert incomplete["status"] == "incomplete" and incomplete["incomplete_details"] == {"reason": "max_output_tokens"}


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return encode_event({"id": "c1", "model": "gpt-x", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def test_a_chat_stream_becomes_responses_events() -> None:
    stream = b"".join([
        _chunk({"role": "assistant", "content": "Let "}), _chunk({"content": "me look."}),
        _chunk({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "shell", "arguments": '{"comm'}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'and":["ls"]}'}}]}),
        _chunk({"tool_calls": [{"index": 1, "id": "call_2", "function": {"name": "apply_patch", "arguments": '{"input":'}}]}),
        _chunk({"tool_calls": [{"index": 1, "function": {"arguments": '"P"}'}}]}),
        _chunk({}, "tool_calls"),
        encode_event({"id": "c1", "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 4}}),
        b"data: [DONE]\n\n"])
    translator = OpenAIToResponsesStream(REQUEST)
    out = b"".join(translator.feed(stream[i:i + 7]) for i in range(0, len(stream), 7))  # any chunk boundary
    events = [json.loads(e.split(b"data: ", 1)[1]) for e in out.split(b"\n\n") if e]
    for event in events:
        EVENTS.validate_python(event)  # every event is one the SDK knows
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == "Let me look."
    assert "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta") == \
        '{"command":["ls"]}'
    final = Response.model_validate(events[-1]["response"])
    assert [i.type for i in final.output] == ["message", "function_call", "custom_tool_call"]
    assert final.output[2].input == "P" and final.usage is not None and final.usage.output_tokens == 4  # type: ignore[union-attr]
    assert translator.completed == events[-1]["response"]


def test_a_continued_request_is_read_whole() -> None:
    kept = [{"type": "message", "role": "user", "content": "hi"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hello"}]}]
    body = {"model": "auto", "input": "bye", "previous_response_id": "resp_1"}
    whole = continued(body, kept)
    assert "previous_response_id" not in whole and whole["input"][:2] == kept
    assert [m["content"] for m in request_to_openai(whole, set())["messages"]] == ["hi", "hello", "bye"]
    request = parse_responses_request(json.dumps(body).encode())
    assert request.continues == "resp_1" and request.messages == [{"role": "user", "content": "bye"}]
