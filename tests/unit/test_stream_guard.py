"""The stream checker: only whole, valid events pass; [DONE] is noticed."""

from __future__ import annotations

import json

import pytest

from control_plane.apis.stream_guard import MalformedStream, SseGuard
from control_plane.apis.openai_errors import error_event


def event(data: str) -> bytes:
    return f"data: {data}\n\n".encode()


def test_whole_events_pass_partial_ones_wait() -> None:
    guard = SseGuard()
    one, two = event('{"a": 1}'), event('{"b": 2}')
    assert guard.feed(one + two[:5]) == one
    assert guard.feed(two[5:]) == two
    assert not guard.done and guard.events == 2
    assert guard.feed(b"data: [DONE]\r\n\r\n") == b"data: [DONE]\r\n\r\n"
    assert guard.done


def test_comments_and_event_fields_pass() -> None:
    guard = SseGuard()
    chunk = b": keep-alive\n\nevent: message\nid: 3\ndata: {}\n\n"
    assert guard.feed(chunk) == chunk


@pytest.mark.parametrize("bad", ['{"choices": [', "[1, 2]", "hello"])
def test_malformed_event_is_refused_and_not_forwarded(bad: str) -> None:
    guard = SseGuard()
    guard.feed(event("{}"))
    with pytest.raises(MalformedStream):
        guard.feed(event(bad))


def test_error_event_is_openai_shaped() -> None:
    raw = error_event(502, "stream interrupted", "stream_interrupted")
    assert raw.startswith(b"event: error\ndata: ") and raw.endswith(b"\n\n")
    body = json.loads(raw.split(b"data: ", 1)[1])
    assert body["error"]["code"] == "stream_interrupted" and body["error"]["message"] == "stream interrupted"


def test_text_so_far_and_whether_it_is_plain_text() -> None:
    guard = SseGuard()
    guard.feed(event('{"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]}'))
    guard.feed(event('{"choices": [{"index": 0, "delta": {"content": "lo"}}]}'))
    assert guard.text == "Hello" and guard.text_only
    guard.feed(event('{"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0}]}}]}'))
    assert not guard.text_only  # a tool call cannot be continued as text
