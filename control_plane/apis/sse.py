"""Server-sent events, as LLM APIs use them: splitting a byte stream into whole events, and
reading an event's name and data. Shared by the stream guard and the stream translators."""

from __future__ import annotations

import json
from typing import Any


class MalformedStream(Exception):
    """An upstream stream event that is not what its API promises."""


def event_end(data: bytes, start: int) -> tuple[int, int]:
    """Where the next event ends (index of its blank-line separator) and the separator's length."""
    best, size = -1, 0
    for sep in (b"\n\n", b"\r\n\r\n", b"\r\r"):
        found = data.find(sep, start)
        if found >= 0 and (best < 0 or found < best):
            best, size = found, len(sep)
    return best, size


class EventSplitter:
    """Feeds arbitrary chunks, returns whole events (with their separators, as sent)."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        data = self._pending + chunk
        events, start = [], 0
        while True:
            end, sep = event_end(data, start)
            if end < 0:
                break
            events.append(data[start:end + sep])
            start = end + sep
        self._pending = data[start:]
        return events


def event_data(event: bytes) -> bytes | None:
    """The event's `data:` lines joined; None for comments and data-less events."""
    payload = [line[5:].lstrip(b" ") for line in event.replace(b"\r\n", b"\n").split(b"\n")
               if line.startswith(b"data:")]
    return b"\n".join(payload) if payload else None


def json_event(data: bytes, what: str = "event data") -> dict[str, Any]:
    """An event's data (or a provider's whole answer: `what`) as a JSON object, or MalformedStream."""
    try:
        parsed = json.loads(data)
    except ValueError:
        raise MalformedStream(f"{what} is not JSON: {data[:80]!r}") from None
    if not isinstance(parsed, dict):
        raise MalformedStream(f"{what} is not a JSON object")
    return parsed


def encode_event(data: dict[str, Any], name: str | None = None) -> bytes:
    head = f"event: {name}\n".encode() if name else b""
    return head + b"data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


class ChatChunks:
    """Chat-completion chunks out of arbitrary stream bytes: each whole event's JSON object, and
    None for `data: [DONE]` (what translators of chat streams into other APIs read)."""

    def __init__(self) -> None:
        self._events = EventSplitter()

    def feed(self, chunk: bytes) -> list[dict[str, Any] | None]:
        out: list[dict[str, Any] | None] = []
        for event in self._events.feed(chunk):
            data = event_data(event)
            if data is not None:
                out.append(None if data.strip() == b"[DONE]" else json_event(data))
        return out
