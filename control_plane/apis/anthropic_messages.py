"""The Anthropic Messages API as a front door: reading a request, with clear 400s.

Only what routing needs, and what the API itself always requires, is checked: a request the
Anthropic API would take is never refused here. New block types, unknown fields and `system`
messages inside `messages` (Claude Code's mid-conversation system messages) go on as they came.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from control_plane.apis import conversation as view
from control_plane.apis.chat_request import ChatRequest
from control_plane.apis.json_body import json_object
from control_plane.apis.request_error import RequestError

DEFAULT_VERSION = "2023-06-01"  # sent to Anthropic providers unless a policy says otherwise
ROLES = ("user", "assistant", "system")


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


def _blocks(content: Any, kind: str) -> list[dict[str, Any]]:
    return [b for b in content if b.get("type") == kind] if isinstance(content, list) else []


def _user(content: Any, envelopes: Sequence[str]) -> list[view.Message]:
    """A user message; one that carries tool results continues its turn: `tool` messages, with
    any text beside the results kept in the last one (for the turn's identity, not routed)."""
    results = _blocks(content, "tool_result")
    if not results:
        message = view.user(content, envelopes)
        return [message] if message else []
    out = [view.tool(b.get("tool_use_id"), view.text_of(b.get("content"))) for b in results]
    beside = view.strip_envelopes(view.text_of(content), envelopes)
    if beside:
        out[-1]["content"] += "\n" + beside
    return out


def routing_view(body: dict[str, Any], envelopes: Sequence[str]) -> list[view.Message]:
    """The conversation as routing reads it (apis/conversation.py)."""
    out: list[view.Message] = []
    if body.get("system"):
        out.append(view.system(view.text_of(body["system"])))
    for message in body["messages"]:
        role, content = message["role"], message.get("content")
        if role == "assistant":
            calls = [view.tool_call(b.get("id"), b.get("name"), b.get("input")) for b in _blocks(content, "tool_use")]
            view.appended(out, view.assistant(view.text_of(content), calls))
        elif role == "system":
            out.append(view.system(view.text_of(content)))
        else:
            out.extend(_user(content, envelopes))
    return out


def _parse(raw: bytes, envelopes: Sequence[str], *, counting: bool) -> ChatRequest:
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
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise _invalid(f"{where}: must be an object with role 'user', 'assistant' or 'system'")
        _check_content(where, message.get("content"))
    system = body.get("system")
    if system is not None:
        _check_content("system", system)
    tools = body.get("tools")
    if tools is not None and not (
            isinstance(tools, list) and all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in tools)):
        raise _invalid("tools: must be a list of objects with a string `name`")
    return ChatRequest(body=body, model=model, messages=routing_view(body, envelopes))


def parse_messages_request(raw: bytes, envelopes: Sequence[str] = view.DEFAULT_ENVELOPES) -> ChatRequest:
    return _parse(raw, envelopes, counting=False)


def parse_count_tokens_request(raw: bytes, envelopes: Sequence[str] = view.DEFAULT_ENVELOPES) -> ChatRequest:
    return _parse(raw, envelopes, counting=True)
