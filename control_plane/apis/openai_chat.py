"""The OpenAI chat-completions door: reading a request, just enough to route it, with clear 400s.

Only what routing needs is checked (`model`, and `messages` as a list of objects with a string
`role`): roles, fields and part types this code does not know go on to the provider as they came,
since the provider may well accept them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from control_plane.apis import conversation as view
from control_plane.apis.chat_request import ChatRequest
from control_plane.apis.json_body import json_object
from control_plane.apis.request_error import RequestError


def _calls(message: dict[str, Any]) -> list[dict[str, str]]:
    calls = message.get("tool_calls")
    out = []
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            out.append(view.tool_call(call.get("id"), function.get("name"), function.get("arguments")))
    legacy = message.get("function_call")  # the pre-tools form
    if isinstance(legacy, dict):
        out.append(view.tool_call("", legacy.get("name"), legacy.get("arguments")))
    return out


def routing_view(messages: Sequence[dict[str, Any]], envelopes: Sequence[str]) -> list[view.Message]:
    """The conversation as routing reads it (apis/conversation.py)."""
    out: list[view.Message] = []
    for message in messages:
        role, content = message["role"], message.get("content")
        if role in ("system", "developer"):
            view.appended(out, view.system(view.text_of(content)))
        elif role == "user":
            view.appended(out, view.user(content, envelopes))
        elif role == "assistant":
            view.appended(out, view.assistant(view.text_of(content), _calls(message)))
        elif role in ("tool", "function"):
            view.appended(out, view.tool(message.get("tool_call_id") or message.get("name"), view.text_of(content)))
    return out


def parse_chat_request(raw: bytes, envelopes: Sequence[str] = view.DEFAULT_ENVELOPES) -> ChatRequest:
    body = json_object(raw)
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
    return ChatRequest(body=body, model=model, messages=routing_view(messages, envelopes))
