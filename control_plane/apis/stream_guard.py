"""Checks an SSE stream as it passes, so a broken stream is never a clean end: one checker per
wire API (the API table names each API's, apis/table.py), since each ends cleanly its own way.

A guard forwards only whole events it has checked: a `data:` payload must be `[DONE]` or a JSON
object. It reports a malformed event (the app never sees it) and tells whether the clean end came,
so an upstream that ends early is told apart from one that finished.
"""

from __future__ import annotations

from control_plane.apis.sse import EventSplitter, MalformedStream, event_data, json_event

__all__ = ["DONE", "AnthropicGuard", "MalformedStream", "ResponsesGuard", "SseGuard"]

DONE = b"[DONE]"


class SseGuard:
    """OpenAI chat completions: `data: [DONE]` is the clean end."""

    def __init__(self) -> None:
        self._events = EventSplitter()
        self.done = False  # `data: [DONE]` was seen
        self.events = 0  # complete events forwarded
        self._text: list[str] = []  # choice 0's content so far (for a continuation)
        self.text_only = True  # no tool calls, no other choices: the answer is just text

    def feed(self, chunk: bytes) -> bytes:
        """The complete, checked events in `chunk` (plus what was pending), as bytes to forward.
        Raises MalformedStream on an event that is not valid; nothing of it is returned."""
        out = []
        for event in self._events.feed(chunk):
            self._check(event)
            out.append(event)
            self.events += 1
        return b"".join(out)

    def _check(self, event: bytes) -> None:
        text = event_data(event)
        if text is None:
            return  # comments (": keep-alive"), `event:`/`id:`/`retry:` only
        if text.strip() == DONE:
            self.done = True
            return
        parsed = json_event(text)
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


class _TypedEventGuard(SseGuard):
    """Checks for a stream of typed JSON events relayed as it is (Anthropic's, the Responses
    API's): every event JSON, an `error` event is a broken stream, and the API's own end event
    the clean end. Such an answer is never continued on another model (its items cannot be
    spliced)."""

    ENDS: frozenset[str] = frozenset()

    def __init__(self) -> None:
        super().__init__()
        self.text_only = False

    def _check(self, event: bytes) -> None:
        text = event_data(event)
        if text is None:
            return
        parsed = json_event(text)
        kind = parsed.get("type")
        if kind == "error":
            raise MalformedStream(f"the provider sent an error event: {parsed.get('error', parsed)}")
        if kind in self.ENDS:
            self.done = True
            self._ended(parsed)

    def _ended(self, event: dict[str, object]) -> None:
        """The end event, for a guard that keeps something of it."""


class AnthropicGuard(_TypedEventGuard):
    """An Anthropic Messages stream: `message_stop` is the clean end."""

    ENDS = frozenset({"message_stop"})


class ResponsesGuard(_TypedEventGuard):
    """A Responses API stream: response.completed (or .incomplete/.failed: the provider's own
    verdict) is the end. `completed` keeps that final response (who answered it is remembered for
    a follow-up naming its id)."""

    ENDS = frozenset({"response.completed", "response.incomplete", "response.failed"})

    def __init__(self) -> None:
        super().__init__()
        self.completed: dict[str, object] | None = None

    def _ended(self, event: dict[str, object]) -> None:
        response = event.get("response")
        self.completed = response if isinstance(response, dict) else None
