"""The OpenAI chat-completions door: reading a request, just enough to route it, with clear 400s."""

from __future__ import annotations

from control_plane.apis.chat_request import ChatRequest
from control_plane.apis.json_body import json_object
from control_plane.apis.request_error import RequestError


def parse_chat_request(raw: bytes) -> ChatRequest:
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
    return ChatRequest(body=body, model=model, messages=messages)
