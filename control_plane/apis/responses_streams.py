"""Chat-completion chunks -> OpenAI Responses API stream events, event by event: what Codex CLI
and the Agents SDK read when their request was answered by a chat (or Anthropic) provider.

response.created and response.in_progress; per output item (a message, or a function/custom
tool call) response.output_item.added, its deltas (response.output_text.delta /
response.function_call_arguments.delta, custom_tool_call_input.delta), their .done events and
response.output_item.done; then response.completed carrying the whole response with usage.
"""

from __future__ import annotations

from typing import Any

from control_plane.apis.responses_translate import Offer, message_item, new_id, response_object, usage_from_openai
from control_plane.apis.sse import ChatChunks, encode_event

Body = dict[str, Any]


class _Item:
    """An output item being streamed: its index, id and what it has gathered so far."""

    def __init__(self, index: int, kind: str, offer: Offer, call_id: str = "", name: str = "") -> None:
        self.index, self.kind, self.offer, self.call_id, self.name = index, kind, offer, call_id, name
        self.custom = name in offer.custom
        self.id = new_id("msg" if kind == "message" else "ctc" if self.custom else "fc")
        self.text: list[str] = []

    def item(self, status: str) -> Body:
        text = "".join(self.text)
        if self.kind == "message":
            return message_item(text, self.id, status)
        return self.offer.call(self.call_id, self.name, text, self.id, status)


class OpenAIToResponsesStream:
    """Chat-completion chunks in (the app's Responses request given), Responses events out.
    `completed` holds the final response once response.completed was sent."""

    def __init__(self, request: Body) -> None:
        self._request = request
        self._offer = Offer.of(request)
        self._chunks = ChatChunks()
        self._id = new_id("resp")
        self._model = ""
        self._sequence = 0
        self._started = False
        self._items: list[_Item] = []
        self._open: _Item | None = None
        self._calls: dict[int, _Item] = {}  # chat tool-call index -> its item
        self._finish: str | None = None
        self._usage: Body | None = None
        self.completed: Body | None = None

    def feed(self, chunk: bytes) -> bytes:
        out: list[bytes] = []
        for parsed in self._chunks.feed(chunk):
            out += self._end() if parsed is None else self._chunk(parsed)
        return b"".join(out)

    def _event(self, kind: str, **fields: Any) -> bytes:
        self._sequence += 1
        return encode_event({"type": kind, "sequence_number": self._sequence - 1, **fields}, kind)

    def _response(self, status: str, output: list[Body]) -> Body:
        return response_object(self._request, self._id, self._model, output, self._usage, self._finish, status)

    def _start(self, chunk: Body) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        self._model = str(chunk.get("model", ""))
        response = self._response("in_progress", [])
        return [self._event("response.created", response=response),
                self._event("response.in_progress", response=response)]

    def _close(self) -> list[bytes]:
        item, self._open = self._open, None
        if item is None:
            return []
        text, where = "".join(item.text), {"item_id": item.id, "output_index": item.index}
        if item.kind == "message":
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            out = [self._event("response.output_text.done", **where, content_index=0, text=text, logprobs=[]),
                   self._event("response.content_part.done", **where, content_index=0, part=part)]
        elif item.custom:
            out = [self._event("response.custom_tool_call_input.done", **where, input=item.item("completed")["input"])]
        else:
            out = [self._event("response.function_call_arguments.done", **where, arguments=text)]
        return out + [self._event("response.output_item.done", output_index=item.index, item=item.item("completed"))]

    def _begin(self, item: _Item) -> list[bytes]:
        out = self._close()
        self._items.append(item)
        self._open = item
        out.append(self._event("response.output_item.added", output_index=item.index, item=item.item("in_progress")))
        if item.kind == "message":
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            out.append(self._event("response.content_part.added", item_id=item.id, output_index=item.index,
                                   content_index=0, part=part))
        return out

    def _chunk(self, chunk: Body) -> list[bytes]:
        out = self._start(chunk)
        if isinstance(chunk.get("usage"), dict):
            self._usage = usage_from_openai(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            out += self._text(delta.get("content"))
            for call in delta.get("tool_calls") or []:
                out += self._call(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return out

    def _text(self, text: Any) -> list[bytes]:
        if not isinstance(text, str) or not text:
            return []
        out = [] if self._open is not None and self._open.kind == "message" else self._begin(
            _Item(len(self._items), "message", self._offer))
        assert self._open is not None
        self._open.text.append(text)
        return out + [self._event("response.output_text.delta", item_id=self._open.id,
                                  output_index=self._open.index, content_index=0, delta=text, logprobs=[])]

    def _call(self, call: Body) -> list[bytes]:
        position, function = int(call.get("index", 0)), call.get("function") or {}
        out: list[bytes] = []
        if position not in self._calls:
            name = str(function.get("name", ""))
            item = _Item(len(self._items), "call", self._offer, str(call.get("id") or new_id("call")), name)
            self._calls[position] = item
            out += self._begin(item)
        item = self._calls[position]
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            item.text.append(arguments)
            if not item.custom:  # a custom tool's input is known whole only at the end
                out.append(self._event("response.function_call_arguments.delta", item_id=item.id,
                                       output_index=item.index, delta=arguments))
        return out

    def _end(self) -> list[bytes]:
        out = self._start({}) + self._close()
        self.completed = self._response("completed", [item.item("completed") for item in self._items])
        return out + [self._event(f"response.{self.completed['status']}", response=self.completed)]
