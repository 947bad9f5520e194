"""Token usage, as each wire API reports it in an answer, in one shape: what a request cost to
answer (README: "Usage and cost").

Kinds: `input` excludes cached input; `cached_input` is cache reads; `cache_write` is Anthropic's
cache creation (input too, priced at the model's `cache_write_per_mtok` when it has one);
`output` includes reasoning; `reasoning` where the provider reports it.

Readers take an answer whole (a JSON body) or as it streams (SSE events, fed in any chunks), and
keep the provider's own counts: the last ones a stream reports win (Anthropic's message_delta
carries the final output count). On the direct path Envoy reads no JSON: it hands over the
answer's `usage` objects alone, in order (envoy/bootstrap.yaml), and `from_objects` folds them
by the same rule.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any, Protocol

from control_plane.apis.sse import EventSplitter, event_data

Body = dict[str, Any]
MAX_WHOLE_BYTES = 16 * 1024 * 1024  # a non-streamed answer larger than this is not read for usage


@dataclass(frozen=True)
class Usage:
    input: int = 0
    cached_input: int = 0
    cache_write: int = 0
    output: int = 0
    reasoning: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __add__(self, other: Usage) -> Usage:
        return Usage(**{name: count + getattr(other, name) for name, count in self.as_dict().items()})


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _details(usage: Body, key: str) -> Body:
    value = usage.get(key)
    return value if isinstance(value, dict) else {}


def _openai_style(usage: Any, inputs: str, outputs: str) -> Usage | None:
    """OpenAI's APIs count cached input inside input (`<inputs>_details.cached_tokens`) and
    reasoning inside output (`<outputs>_details.reasoning_tokens`)."""
    if not isinstance(usage, dict):
        return None
    cached = _int(_details(usage, f"{inputs}_details").get("cached_tokens"))
    return Usage(input=max(_int(usage.get(inputs)) - cached, 0), cached_input=cached,
                 output=_int(usage.get(outputs)),
                 reasoning=_int(_details(usage, f"{outputs}_details").get("reasoning_tokens")))


def from_openai(usage: Any) -> Usage | None:
    """Chat completions' `usage`."""
    return _openai_style(usage, "prompt_tokens", "completion_tokens")


_ANTHROPIC_KINDS = {"input_tokens": "input", "cache_read_input_tokens": "cached_input",
                    "cache_creation_input_tokens": "cache_write", "output_tokens": "output"}


def from_anthropic(usage: Any, earlier: Usage | None = None) -> Usage | None:
    """Anthropic's `usage` (input tokens exclude cache reads and writes, reported apart); a
    stream's message_delta carries only the counts that changed, over the `earlier` ones."""
    if not isinstance(usage, dict):
        return earlier
    counts = (earlier or Usage()).as_dict()
    for key, kind in _ANTHROPIC_KINDS.items():
        if usage.get(key) is not None:
            counts[kind] = _int(usage[key])
    return Usage(**counts)


def from_responses(usage: Any) -> Usage | None:
    """The Responses API's `usage`."""
    return _openai_style(usage, "input_tokens", "output_tokens")


class UsageReader(Protocol):
    """An answer's reader (constructed with whether the answer streams), and the same API's
    reading of an answer's `usage` objects alone."""

    usage: Usage | None

    def __init__(self, streamed: bool) -> None: ...

    def feed(self, chunk: bytes) -> None: ...

    def finish(self) -> Usage | None: ...

    @classmethod
    def from_objects(cls, objects: list[Any]) -> Usage | None: ...


class _Reader:
    """Reads an answer in one API: SSE events as they pass, or a whole JSON body at the end."""

    @staticmethod
    def merged(earlier: Usage | None, usage: Any) -> Usage | None:
        """The usage so far, after the answer reported `usage` (one of its `usage` objects)."""
        raise NotImplementedError

    @classmethod
    def from_objects(cls, objects: list[Any]) -> Usage | None:
        """The usage of an answer that carried these `usage` objects, in this order."""
        usage = None
        for reported in objects:
            usage = cls.merged(usage, reported)
        return usage

    def __init__(self, streamed: bool) -> None:
        self.streamed = streamed
        self.usage: Usage | None = None
        self._events = EventSplitter()
        self._whole = bytearray()

    def feed(self, chunk: bytes) -> None:
        if not self.streamed:
            if len(self._whole) + len(chunk) <= MAX_WHOLE_BYTES:
                self._whole += chunk
            return
        for event in self._events.feed(chunk):
            data = event_data(event)
            if data is None or data.strip() == b"[DONE]":
                continue
            parsed = _json(data)
            if parsed is not None:
                self._event(parsed)

    def finish(self) -> Usage | None:
        if not self.streamed and self._whole:
            parsed = _json(bytes(self._whole))
            if parsed is not None:
                self._answer(parsed)
        return self.usage

    def _event(self, event: Body) -> None:
        raise NotImplementedError

    def _answer(self, answer: Body) -> None:
        raise NotImplementedError


def _json(data: bytes) -> Body | None:
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


class OpenAIUsage(_Reader):
    @staticmethod
    def merged(earlier: Usage | None, usage: Any) -> Usage | None:
        return from_openai(usage) or earlier  # the last chunk's, with include_usage

    def _event(self, event: Body) -> None:
        self.usage = self.merged(self.usage, event.get("usage"))

    def _answer(self, answer: Body) -> None:
        self.usage = from_openai(answer.get("usage"))


class AnthropicUsage(_Reader):
    @staticmethod
    def merged(earlier: Usage | None, usage: Any) -> Usage | None:
        return from_anthropic(usage, earlier)

    def _event(self, event: Body) -> None:
        if event.get("type") == "message_start":
            self.usage = from_anthropic((event.get("message") or {}).get("usage"))
        elif event.get("type") == "message_delta":
            self.usage = self.merged(self.usage, event.get("usage"))

    def _answer(self, answer: Body) -> None:
        self.usage = from_anthropic(answer.get("usage"))


class ResponsesUsage(_Reader):
    @staticmethod
    def merged(earlier: Usage | None, usage: Any) -> Usage | None:
        return from_responses(usage) or earlier

    def _event(self, event: Body) -> None:
        if event.get("type") in ("response.completed", "response.incomplete", "response.failed"):
            self.usage = self.merged(self.usage, (event.get("response") or {}).get("usage"))

    def _answer(self, answer: Body) -> None:
        self.usage = from_responses(answer.get("usage"))


class UsageSink(Protocol):
    """Where the guarded path hands each request's usage, by request id; control_plane/spend/
    settles it with Envoy's access-log entry.
    `begin` when an answer starts, `add` at its end (None: it reported no usage)."""

    def begin(self, request_id: str) -> None: ...

    def add(self, request_id: str, usage: Usage | None) -> None: ...


def asking_openai_usage(request: Body) -> Body | None:
    """An OpenAI chat-completions stream reports usage only when asked (stream_options.include_usage):
    the request asking for it, when it streams and does not; else None."""
    options = request.get("stream_options")
    if request.get("stream") is not True or (isinstance(options, dict) and options.get("include_usage")):
        return None
    return {**request, "stream_options": {**(options if isinstance(options, dict) else {}), "include_usage": True}}


class HiddenUsage:
    """What an app that did not ask for usage sees of an OpenAI stream Switchyard asked it of: the
    usage-only last chunk left out, and the `"usage": null` the others then carry removed."""

    def __init__(self) -> None:
        self._events = EventSplitter()

    def feed(self, chunk: bytes) -> bytes:
        out: list[bytes] = []
        for event in self._events.feed(chunk):
            data = event_data(event)
            parsed = _json(data) if data is not None and data.strip() != b"[DONE]" else None
            if parsed is None or "usage" not in parsed:
                out.append(event)
            elif parsed.get("choices"):
                del parsed["usage"]
                out.append(b"data: " + json.dumps(parsed, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n")
        return b"".join(out)
