"""Reading token usage from answers in each API, whole or streamed in any chunks; hiding usage
from an app that did not ask; pricing it."""

from __future__ import annotations

import json

from control_plane.apis.sse import encode_event
from control_plane.apis.usage import AnthropicUsage, HiddenUsage, OpenAIUsage, ResponsesUsage, Usage, asking_openai_usage
from control_plane.policy.model import Price


def feed_bytewise(reader: OpenAIUsage | AnthropicUsage | ResponsesUsage, data: bytes) -> Usage | None:
    for i in range(len(data)):
        reader.feed(data[i:i + 1])
    return reader.finish()


def test_openai_answers_whole_and_streamed() -> None:
    usage = {"prompt_tokens": 120, "completion_tokens": 50, "prompt_tokens_details": {"cached_tokens": 20},
             "completion_tokens_details": {"reasoning_tokens": 10}}
    want = Usage(input=100, cached_input=20, output=50, reasoning=10)
    assert feed_bytewise(OpenAIUsage(False), json.dumps({"choices": [], "usage": usage}).encode()) == want
    stream = (encode_event({"choices": [{"delta": {"content": "hi"}}], "usage": None})
              + encode_event({"choices": [], "usage": usage}) + b"data: [DONE]\n\n")
    assert feed_bytewise(OpenAIUsage(True), stream) == want
    assert OpenAIUsage(True).finish() is None  # a stream that never said


def test_anthropic_streams_add_message_delta_to_message_start() -> None:
    start = {"type": "message_start", "message": {"usage": {
        "input_tokens": 80, "cache_read_input_tokens": 30, "cache_creation_input_tokens": 5, "output_tokens": 1}}}
    stream = encode_event(start, "message_start") + encode_event(
        {"type": "message_delta", "usage": {"output_tokens": 40}}, "message_delta")
    assert feed_bytewise(AnthropicUsage(True), stream) == Usage(input=80, cached_input=30, cache_write=5, output=40)


def test_responses_completed_carries_the_usage() -> None:
    event = {"type": "response.completed", "response": {"usage": {
        "input_tokens": 60, "input_tokens_details": {"cached_tokens": 12}, "output_tokens": 30,
        "output_tokens_details": {"reasoning_tokens": 5}}}}
    assert feed_bytewise(ResponsesUsage(True), encode_event(event, event["type"])) == \
        Usage(input=48, cached_input=12, output=30, reasoning=5)


def test_usage_objects_alone_read_as_the_answers_do() -> None:
    """What Envoy hands over on the direct path: the answer's `usage` objects, in order (the first
    and the last two kept)."""
    first = {"prompt_tokens": 1, "completion_tokens": 1}
    last = {"prompt_tokens": 120, "completion_tokens": 50, "prompt_tokens_details": {"cached_tokens": 20}}
    assert OpenAIUsage.from_objects([first, last]) == Usage(input=100, cached_input=20, output=50)
    assert OpenAIUsage.from_objects([last, "not usage"]) == Usage(input=100, cached_input=20, output=50)
    assert OpenAIUsage.from_objects([]) is None
    start = {"input_tokens": 80, "cache_read_input_tokens": 30, "cache_creation_input_tokens": 5, "output_tokens": 1}
    assert AnthropicUsage.from_objects([start, {"output_tokens": 40}]) == \
        Usage(input=80, cached_input=30, cache_write=5, output=40)  # message_start, then message_delta
    assert ResponsesUsage.from_objects([{"input_tokens": 60, "output_tokens": 30}]) == Usage(input=60, output=30)


def test_usage_is_asked_of_openai_streams_only_when_their_app_did_not() -> None:
    assert asking_openai_usage({"stream": True, "stream_options": {"x": 1}}) == \
        {"stream": True, "stream_options": {"x": 1, "include_usage": True}}
    assert asking_openai_usage({"stream": True, "stream_options": {"include_usage": True}}) is None
    assert asking_openai_usage({"stream": False}) is None


def test_hidden_usage_leaves_the_stream_the_app_asked_for() -> None:
    shown = encode_event({"choices": [{"delta": {"content": "hi"}}]})
    asked = (encode_event({"choices": [{"delta": {"content": "hi"}}], "usage": None})
             + encode_event({"choices": [], "usage": {"prompt_tokens": 1}}) + b"data: [DONE]\n\n")
    hider = HiddenUsage()
    out = b"".join(hider.feed(asked[i:i + 5]) for i in range(0, len(asked), 5))
    assert out == shown + b"data: [DONE]\n\n"


def test_cost_uses_each_kinds_price() -> None:
    usage = Usage(input=1_000_000, cached_input=1_000_000, cache_write=1_000_000, output=1_000_000)
    assert Price(2.5, 10.0).cost_usd(usage) == 2.5 + 2.5 + 2.5 + 10.0  # cached and writes at the input price
    assert Price(2.5, 10.0, 1.25, 3.75).cost_usd(usage) == 2.5 + 1.25 + 3.75 + 10.0
