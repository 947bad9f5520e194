"""Streams translated event by event, both ways: OpenAI chat-completion chunks <-> Anthropic
Messages events. Each translator is fed chunks as they arrive and returns whole events at once;
nothing waits for the end of the answer."""

from __future__ import annotations

import time
from typing import Any

from control_plane.apis.anthropic_translate import (
    STOP_FROM_OPENAI,
    STOP_TO_OPENAI,
    message_id,
    usage_to_openai,
)
from control_plane.apis.sse import ChatChunks, EventSplitter, MalformedStream, encode_event, event_data, json_event

Body = dict[str, Any]


class OpenAIToAnthropicStream:
    """Chat-completion chunks in; message_start, content blocks (text, tool_use with
    input_json_delta), message_delta with stop_reason and usage, message_stop out."""

    def __init__(self) -> None:
        self._chunks = ChatChunks()
        self._started = False
        self._open: tuple[str, int] | None = None  # ("text", -1) or ("tool", openai tool index)
        self._blocks = 0  # Anthropic content-block indexes handed out
        self._tools: dict[int, int] = {}  # OpenAI tool-call index -> content-block index
        self._stop_reason = "end_turn"
        self._usage: Body = {}

    def feed(self, chunk: bytes) -> bytes:
        out: list[bytes] = []
        for parsed in self._chunks.feed(chunk):
            out += self._finish() if parsed is None else self._chunk(parsed)
        return b"".join(out)

    def _start(self, chunk: Body) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        message = {"id": message_id(chunk.get("id")), "type": "message", "role": "assistant",
                   "model": chunk.get("model", ""), "content": [], "stop_reason": None,
                   "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}
        return [encode_event({"type": "message_start", "message": message}, "message_start")]

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        self._open = None
        index = self._blocks - 1
        return [encode_event({"type": "content_block_stop", "index": index}, "content_block_stop")]

    def _begin(self, kind: tuple[str, int], block: Body) -> list[bytes]:
        out = self._close()
        self._open = kind
        self._blocks += 1
        out.append(encode_event({"type": "content_block_start", "index": self._blocks - 1,
                                 "content_block": block}, "content_block_start"))
        return out

    @staticmethod
    def _delta(index: int, delta: Body) -> bytes:
        return encode_event({"type": "content_block_delta", "index": index, "delta": delta},
                            "content_block_delta")

    def _chunk(self, chunk: Body) -> list[bytes]:
        out = self._start(chunk)
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                if self._open != ("text", -1):
                    out += self._begin(("text", -1), {"type": "text", "text": ""})
                out.append(self._delta(self._blocks - 1, {"type": "text_delta", "text": text}))
            for call in delta.get("tool_calls") or []:
                position = int(call.get("index", 0))
                function = call.get("function") or {}
                if position not in self._tools:
                    out += self._begin(("tool", position), {
                        "type": "tool_use", "id": call.get("id") or f"toolu_{position}",
                        "name": function.get("name", ""), "input": {}})
                    self._tools[position] = self._blocks - 1
                if function.get("arguments"):
                    out.append(self._delta(self._tools[position],
                                           {"type": "input_json_delta", "partial_json": function["arguments"]}))
            if choice.get("finish_reason"):
                self._stop_reason = STOP_FROM_OPENAI.get(choice["finish_reason"], "end_turn")
        return out

    def _finish(self) -> list[bytes]:
        out = self._start({}) + self._close()
        usage: Body = {"output_tokens": int(self._usage.get("completion_tokens") or 0)}
        if self._usage:
            usage["input_tokens"] = int(self._usage.get("prompt_tokens") or 0)
        out.append(encode_event({"type": "message_delta", "usage": usage,
                                 "delta": {"stop_reason": self._stop_reason, "stop_sequence": None}},
                                "message_delta"))
        out.append(encode_event({"type": "message_stop"}, "message_stop"))
        return out


class AnthropicToOpenAIStream:
    """Anthropic Messages events in; chat-completion chunks and `[DONE]` out (a usage chunk
    first when the request asked for `stream_options.include_usage`). An `error` event from the
    provider is a broken stream (MalformedStream), never a clean end."""

    def __init__(self, include_usage: bool = False) -> None:
        self._events = EventSplitter()
        self._include_usage = include_usage
        self._id, self._model, self._created = "", "", int(time.time())
        self._usage: Body = {}
        self._tools: dict[int, int] = {}  # content-block index -> OpenAI tool-call index

    def feed(self, chunk: bytes) -> bytes:
        out: list[bytes] = []
        for event in self._events.feed(chunk):
            data = event_data(event)
            if data is not None:
                out += self._event(json_event(data))
        return b"".join(out)

    def _chunk(self, delta: Body, finish_reason: str | None = None) -> bytes:
        chunk = {"id": self._id, "object": "chat.completion.chunk", "created": self._created,
                 "model": self._model,
                 "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
        return encode_event(chunk)

    def _event(self, event: Body) -> list[bytes]:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self._id, self._model = str(message.get("id", "")), str(message.get("model", ""))
            self._usage = dict(message.get("usage") or {})
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                position = self._tools.setdefault(int(event.get("index", 0)), len(self._tools))
                return [self._chunk({"tool_calls": [{
                    "index": position, "id": block.get("id", ""), "type": "function",
                    "function": {"name": block.get("name", ""), "arguments": ""}}]})]
            if block.get("type") == "text" and block.get("text"):
                return [self._chunk({"content": block["text"]})]
            return []
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                return [self._chunk({"content": delta.get("text", "")})]
            if delta.get("type") == "input_json_delta":
                position = self._tools.get(int(event.get("index", 0)), 0)
                return [self._chunk({"tool_calls": [{
                    "index": position, "function": {"arguments": delta.get("partial_json", "")}}]})]
            return []  # thinking and signature deltas have no OpenAI counterpart
        if kind == "message_delta":
            self._usage |= {k: v for k, v in (event.get("usage") or {}).items() if v is not None}
            reason = STOP_TO_OPENAI.get(str((event.get("delta") or {}).get("stop_reason")), "stop")
            return [self._chunk({}, reason)]
        if kind == "message_stop":
            out = []
            if self._include_usage:
                out.append(encode_event({"id": self._id, "object": "chat.completion.chunk",
                                         "created": self._created, "model": self._model, "choices": [],
                                         "usage": usage_to_openai(self._usage)}))
            return [*out, b"data: [DONE]\n\n"]
        if kind == "error":
            error = event.get("error") or {}
            raise MalformedStream(f"the provider sent an error event: {error.get('message', error)}")
        return []  # ping, content_block_stop
