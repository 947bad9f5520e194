"""Reading an OpenAI chat-completions body: just enough to route it, with clear 400s.

Pure functions over bytes and dicts; nothing here knows about Envoy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from control_plane.openai_errors import RequestError


@dataclass(frozen=True)
class ChatRequest:
    body: dict[str, Any]  # the whole parsed body; everything but `model` is passed on as is
    model: str
    messages: list[Any]


def parse_chat_request(raw: bytes) -> ChatRequest:
    try:
        text = raw.decode("utf-8")  # explicit: json.loads(bytes) would also accept UTF-16/32
    except UnicodeDecodeError:
        raise RequestError(400, "request body is not valid UTF-8", "invalid_body") from None
    try:
        body = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise RequestError(400, f"request body is not valid JSON: {exc}", "invalid_json") from None
    if not isinstance(body, dict):
        raise RequestError(400, "request body must be a JSON object", "invalid_body")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError(400, "`model` is required and must be a string", "invalid_model", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(
            400, "`messages` is required and must be a non-empty list", "invalid_messages", "messages"
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise RequestError(
                400, f"messages[{index}] must be an object with a string `role`",
                "invalid_messages", f"messages[{index}]",
            )
    return ChatRequest(body=body, model=model, messages=messages)


def with_model(body: Mapping[str, Any], upstream_model: str) -> bytes:
    """The body to send upstream: identical but for `model` (the direct path, and each attempt
    of the guarded path)."""
    return json.dumps({**body, "model": upstream_model}, ensure_ascii=False,
                      separators=(",", ":")).encode()
