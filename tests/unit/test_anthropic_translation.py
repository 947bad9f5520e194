"""Anthropic Messages <-> OpenAI chat completions: requests, answers, streams, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from control_plane.apis import anthropic_translate as translate
from control_plane.apis.anthropic_messages import parse_count_tokens_request, parse_messages_request
from control_plane.apis.anthropic_streams import AnthropicToOpenAIStream, OpenAIToAnthropicStream
from control_plane.apis.doors import door_for, models_body
from control_plane.apis.sse import MalformedStream, encode_event
from control_plane.apis.json_body import replace_model
from control_plane.apis.request_error import RequestError

IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
TOOLS = [{"name": "weather", "description": "the weather in a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
ANTHROPIC_REQUEST: dict[str, Any] = {
    "model": "auto", "max_tokens": 512, "temperature": 0.2, "stop_sequences": ["END"],
    "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
    "metadata": {"user_id": "u-1"}, "tools": TOOLS, "tool_choice": {"type": "any"},
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}, IMAGE]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hm", "signature": "s"},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}]},
            {"type": "text", "text": "And tomorrow?"}]},
    ],
}


def test_anthropic_request_becomes_openai() -> None:
    out = translate.request_to_openai(ANTHROPIC_REQUEST)
    assert out["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [
            {"type": "text", "text": "Weather in Paris?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
        {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]},
    ]
    assert out["max_tokens"] == 512 and out["temperature"] == 0.2 and out["stop"] == ["END"]
    assert out["user"] == "u-1" and out["tool_choice"] == "required"
    assert out["tools"] == [{"type": "function", "function": {
        "name": "weather", "description": "the weather in a city", "parameters": TOOLS[0]["input_schema"]}}]


def test_round_trip_keeps_the_conversation() -> None:
    back = translate.request_from_openai(translate.request_to_openai(ANTHROPIC_REQUEST))
    assert back["system"] == "You are terse."
    assert back["max_tokens"] == 512 and back["stop_sequences"] == ["END"]
    assert back["metadata"] == {"user_id": "u-1"} and back["tool_choice"] == {"type": "any"}
    assert back["tools"] == TOOLS
    # The thinking block is dropped (only its model can read it); everything else comes back.
    assert [m["role"] for m in back["messages"]] == ["user", "assistant", "user"]
    assert back["messages"][0]["content"][1] == IMAGE
    assert back["messages"][1]["content"][1] == ANTHROPIC_REQUEST["messages"][1]["content"][2]
    assert back["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
        {"type": "text", "text": "And tomorrow?"}]


def test_openai_request_becomes_anthropic() -> None:
    out = translate.request_from_openai({
        "model": "m", "stream": True, "temperature": 1.6, "stop": "x", "parallel_tool_calls": False,
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
                     {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/cat.png"}}]}],
    })
    assert out["system"] == "be brief" and out["stream"] is True
    assert out["max_tokens"] == translate.DEFAULT_MAX_TOKENS  # Anthropic requires one
    assert out["temperature"] == 1.0 and out["stop_sequences"] == ["x"]
    assert out["tool_choice"] == {"type": "tool", "name": "weather", "disable_parallel_tool_use": True}
    # Consecutive user messages are merged: Anthropic wants roles to alternate.
    assert out["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "hi"}, {"type": "image", "source": {"type": "url", "url": "https://x/cat.png"}}]}]


def test_what_cannot_be_translated_is_a_400() -> None:
    document = {"role": "user", "content": [{"type": "document", "source": {"type": "text", "data": "x"}}]}
    with pytest.raises(RequestError, match="document") as caught:
        translate.request_to_openai({"model": "m", "max_tokens": 5, "messages": [document]})
    assert caught.value.status == 400
    with pytest.raises(RequestError, match="n > 1"):
        translate.request_from_openai({"model": "m", "n": 2, "messages": [{"role": "user", "content": "x"}]})


def test_answers_translate_both_ways() -> None:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "stop_reason": "tool_use",
               "content": [{"type": "text", "text": "Let me check."},
                           {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}],
               "usage": {"input_tokens": 3, "output_tokens": 5, "cache_read_input_tokens": 2}}
    completion = json.loads(translate.response_to_openai(json.dumps(message).encode()))
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] == "Let me check."
    assert choice["message"]["tool_calls"][0]["function"] == {"name": "weather", "arguments": '{"city": "Paris"}'}
    assert completion["usage"] == {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}
    back = json.loads(translate.response_from_openai(json.dumps(completion).encode()))
    assert back["content"] == message["content"] and back["stop_reason"] == "tool_use"
    assert back["usage"] == {"input_tokens": 5, "output_tokens": 5}
    with pytest.raises(MalformedStream):
        translate.response_to_openai(b"<html>")


def test_errors_translate_and_context_length_is_recognised() -> None:
    too_long = b'{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 9 tokens > 5"}}'
    openai = json.loads(translate.error_to_openai(400, too_long))
    assert openai["error"]["code"] == "context_length_exceeded"
    back = json.loads(translate.error_from_openai(429, b'{"error": {"message": "slow down", "type": "x"}}'))
    assert back == {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}


def _feed_bytewise(translator: Any, data: bytes) -> bytes:
    """Chunk boundaries fall anywhere: feed one byte at a time."""
    return b"".join(translator.feed(data[i:i + 1]) for i in range(len(data)))


def _events(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for event in raw.split(b"\n\n"):
        data = [line[6:] for line in event.split(b"\n") if line.startswith(b"data: ")]
        if data and data[0] != b"[DONE]":
            out.append(json.loads(data[0]))
    return out


def _openai_chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return encode_event({"id": "c1", "model": "gpt", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def test_openai_stream_becomes_anthropic_events() -> None:
    stream = b"".join([
        _openai_chunk({"role": "assistant", "content": "Let "}), _openai_chunk({"content": "me."}),
        _openai_chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                       "function": {"name": "weather", "arguments": ""}}]}),
        _openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        _openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "Paris"}'}}]}),
        _openai_chunk({}, "tool_calls"),
        encode_event({"id": "c1", "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 4}}),
        b"data: [DONE]\n\n",
    ])
    events = _events(_feed_bytewise(OpenAIToAnthropicStream(), stream))
    assert [e["type"] for e in events] == [
        "message_start", "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop", "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop", "message_delta", "message_stop"]
    assert events[5]["content_block"] == {"type": "tool_use", "id": "call_1", "name": "weather", "input": {}}
    assert "".join(e["delta"].get("partial_json", "") for e in events if e["type"] == "content_block_delta") \
        == '{"city": "Paris"}'
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert events[-2]["usage"] == {"output_tokens": 4, "input_tokens": 7}


def test_anthropic_stream_becomes_openai_chunks() -> None:
    stream = b"".join(encode_event(e, e["type"]) for e in [
        {"type": "message_start", "message": {"id": "msg_1", "model": "claude", "usage": {"input_tokens": 3}}},
        {"type": "ping"},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t", "name": "w"}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 5}},
        {"type": "message_stop"},
    ])
    out = _feed_bytewise(AnthropicToOpenAIStream(include_usage=True), stream)
    assert out.endswith(b"data: [DONE]\n\n")
    chunks = _events(out)
    assert chunks[1]["choices"][0]["delta"] == {"content": "hi"}
    assert chunks[2]["choices"][0]["delta"]["tool_calls"][0]["id"] == "t"
    assert chunks[3]["choices"][0]["delta"]["tool_calls"][0]["function"] == {"arguments": "{}"}
    assert chunks[4]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[5]["usage"] == {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}


def test_an_anthropic_error_event_is_a_broken_stream() -> None:
    error = encode_event({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}, "error")
    with pytest.raises(MalformedStream, match="busy"):
        AnthropicToOpenAIStream().feed(error)


def test_parse_messages_request_checks_the_body() -> None:
    ok = json.dumps(ANTHROPIC_REQUEST).encode()
    request = parse_messages_request(ok)
    assert request.model == "auto" and request.body == ANTHROPIC_REQUEST
    # What routing reads: tool results with text beside them continue the turn (a `tool` message).
    assert request.messages[-1] == {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny\nAnd tomorrow?"}
    for bad, needle in [({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
                        ({"model": "m", "max_tokens": 5, "messages": []}, "messages"),
                        ({"model": "m", "max_tokens": 5, "messages": [{"role": "critic", "content": "x"}]}, "role"),
                        ({"model": "m", "max_tokens": 5, "stream": "yes", "messages": [{"role": "user", "content": "x"}]},
                         "stream")]:
        with pytest.raises(RequestError, match=needle):
            parse_messages_request(json.dumps(bad).encode())
    # count_tokens needs no max_tokens
    assert parse_count_tokens_request(b'{"model": "m", "messages": [{"role": "user", "content": "x"}]}').model == "m"


def test_doors_and_model_lists() -> None:
    door = door_for("/v1/messages?beta=true")
    assert door is not None and door.api.name == "anthropic"
    assert door_for("/v1/files") is None
    anthropic = json.loads(models_body(["auto", "m"], {"anthropic-version": "2023-06-01"}))
    assert anthropic["data"][0] == {"type": "model", "id": "auto", "display_name": "auto",
                                    "created_at": "1970-01-01T00:00:00Z"}
    assert anthropic["has_more"] is False and anthropic["last_id"] == "m"
    assert json.loads(models_body(["auto"], {}))["object"] == "list"


def test_replace_model_changes_only_the_model_bytes() -> None:
    raw = b'{"system": [{"model": "x"}] ,\n "model" : "auto", "t": "\\u00e9\\n", "model": "auto"}'
    assert replace_model(raw, "claude-\u00e9") == \
        b'{"system": [{"model": "x"}] ,\n "model" : "auto", "t": "\\u00e9\\n", "model": "claude-\xc3\xa9"}'
    with pytest.raises(ValueError):
        replace_model(b'{"messages": []}', "m")
