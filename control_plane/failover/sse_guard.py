"""Checks an SSE chat-completion stream as it passes, so a broken stream is never a clean end.

The guard forwards only whole events it has checked: a `data:` payload must be `[DONE]` or a
JSON object. It reports a malformed event (the app never sees it) and tells whether `[DONE]`
came, so an upstream that ends early is told apart from one that finished.
"""

from __future__ import annotations

import json

from control_plane.openai_errors import error_body

DONE = b"[DONE]"


class MalformedStream(Exception):
    pass


class SseGuard:
    def __init__(self) -> None:
        self._pending = b""  # bytes of an event not yet complete
        self.done = False  # `data: [DONE]` was seen
        self.events = 0  # complete events forwarded
        self._text: list[str] = []  # choice 0's content so far (for a continuation)
        self.text_only = True  # no tool calls, no other choices: the answer is just text

    def feed(self, chunk: bytes) -> bytes:
        """The complete, checked events in `chunk` (plus what was pending), as bytes to forward.
        Raises MalformedStream on an event that is not valid; nothing of it is returned."""
        data = self._pending + chunk
        out = []
        start = 0
        while True:
            end, sep = _event_end(data, start)
            if end < 0:
                break
            event = data[start:end]
            self._check(event)
            out.append(data[start:end + sep])
            self.events += 1
            start = end + sep
        self._pending = data[start:]
        return b"".join(out)

    def _check(self, event: bytes) -> None:
        payload = [line[5:].lstrip(b" ") for line in event.replace(b"\r\n", b"\n").split(b"\n")
                   if line.startswith(b"data:")]
        if not payload:
            return  # comments (": keep-alive"), `event:`/`id:`/`retry:` only
        text = b"\n".join(payload)
        if text.strip() == DONE:
            self.done = True
            return
        try:
            parsed = json.loads(text)
        except ValueError:
            raise MalformedStream(f"event is not JSON: {text[:80]!r}") from None
        if not isinstance(parsed, dict):
            raise MalformedStream("event data is not a JSON object")
        choices = parsed.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                continue
            if choice.get("index", 0) != 0 or delta.get("tool_calls") or delta.get("function_call"):
                self.text_only = False
            if isinstance(delta.get("content"), str):
                self._text.append(delta["content"])

    @property
    def text(self) -> str:
        """The answer's text forwarded so far."""
        return "".join(self._text)


def _event_end(data: bytes, start: int) -> tuple[int, int]:
    """Where the next event ends (index of its blank-line separator) and the separator's length."""
    best, size = -1, 0
    for sep in (b"\n\n", b"\r\n\r\n", b"\r\r"):
        found = data.find(sep, start)
        if found >= 0 and (best < 0 or found < best):
            best, size = found, len(sep)
    return best, size


def error_event(status: int, message: str, code: str) -> bytes:
    """An SSE `error` event in the OpenAI shape: the openai SDKs raise APIError on it."""
    return b"event: error\ndata: " + error_body(status, message, code) + b"\n\n"
