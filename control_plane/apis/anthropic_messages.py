"""The Anthropic Messages API as a front door: reading a request, with clear 400s."""

from __future__ import annotations

from typing import Any

from control_plane.apis import anthropic_translate
from control_plane.apis.chat_request import ChatRequest
from control_plane.apis.json_body import json_object
from control_plane.apis.request_error import RequestError

VERSION_HEADER = "anthropic-version"
DEFAULT_VERSION = "2023-06-01"  # sent to Anthropic providers unless a policy says otherwise


def _invalid(message: str) -> RequestError:
    return RequestError(400, message, "invalid_request")


def _check_content(where: str, content: Any) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _invalid(f"{where}.content must be a string or a list of content blocks")
    for index, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise _invalid(f"{where}.content[{index}] must be an object with a string `type`")


def _parse(raw: bytes, *, counting: bool) -> ChatRequest:
    body = json_object(raw)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid("model: Field required (a string)")
    if not counting:
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise _invalid("max_tokens: Field required (an integer of at least 1)")
        if "stream" in body and not isinstance(body["stream"], bool):
            raise _invalid("stream: must be a boolean")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages: Field required (a non-empty list)")
    for index, message in enumerate(messages):
        where = f"messages.{index}"
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise _invalid(f"{where}: must be an object with role 'user' or 'assistant'")
        _check_content(where, message.get("content"))
    system = body.get("system")
    if system is not None:
        _check_content("system", system)
    tools = body.get("tools")
    if tools is not None and not (
            isinstance(tools, list) and all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in tools)):
        raise _invalid("tools: must be a list of objects with a string `name`")
    # The router sees what it would see for the same conversation sent as a chat completion.
    routed = anthropic_translate.request_to_openai(body, strict=False)["messages"]
    return ChatRequest(body=body, model=model, messages=routed)


def parse_messages_request(raw: bytes) -> ChatRequest:
    return _parse(raw, counting=False)


def parse_count_tokens_request(raw: bytes) -> ChatRequest:
    return _parse(raw, counting=True)
