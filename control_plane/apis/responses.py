"""OpenAI's Responses API (`POST /v1/responses`, what Codex CLI and the OpenAI Agents SDK speak)
as a front door: reading a request, with clear 400s, and what routing reads of it.

Only what routing needs is checked (`model`; `input` as a string or a list of items); item types
this code does not know go on as they came to a provider that serves the Responses API itself.
A request that continues an earlier response (`previous_response_id`) says so (`continues`): the
processor pins it to the model that answered, or reads it after what Switchyard kept of that
conversation (routing/response_store.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from control_plane.apis import conversation as view
from control_plane.apis.chat_request import ChatRequest
from control_plane.apis.json_body import json_object
from control_plane.apis.request_error import RequestError

Item = dict[str, Any]
PREVIOUS = "previous_response_id"
# Items that answer a tool call: a request whose newest items are these continues its turn.
TOOL_OUTPUTS = frozenset({"function_call_output", "custom_tool_call_output", "local_shell_call_output",
                          "computer_call_output", "mcp_approval_response"})
# Tool calls the model made (and that came back in the input).
TOOL_CALLS = frozenset({"function_call", "custom_tool_call", "local_shell_call", "computer_call",
                        "web_search_call", "file_search_call", "code_interpreter_call", "mcp_call",
                        "image_generation_call"})


def _invalid(message: str, param: str) -> RequestError:
    return RequestError(400, message, f"invalid_{param}", param)


def input_items(body: dict[str, Any]) -> list[Item]:
    """`input` as a list of items (a string is one user message)."""
    value = body.get("input")
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def item_type(item: Item) -> str:
    """An item's type; an item with a role and no type is a message (the SDKs' short form)."""
    return str(item.get("type") or ("message" if "role" in item else ""))


def _item_view(item: Item, envelopes: Sequence[str]) -> view.Message | None:
    kind = item_type(item)
    if kind == "message":
        role, content = item.get("role"), item.get("content")
        if role == "user":
            return view.user(content, envelopes)
        if role == "assistant":
            return view.assistant(view.text_of(content))
        return view.system(view.text_of(content))  # system, developer
    if kind in TOOL_CALLS:
        arguments = item.get("arguments", item.get("input", item.get("action")))
        return view.assistant("", [view.tool_call(item.get("call_id") or item.get("id"), item.get("name") or kind,
                                                  arguments)])
    if kind in TOOL_OUTPUTS:
        output = item.get("output")
        return view.tool(item.get("call_id") or item.get("id"), output if isinstance(output, str) else view.text_of(output))
    return None  # reasoning, item references, ...: not part of what routing reads


def routing_view(instructions: Any, items: Sequence[Item], envelopes: Sequence[str]) -> list[view.Message]:
    """The conversation as routing reads it (apis/conversation.py)."""
    out: list[view.Message] = [view.system(instructions)] if isinstance(instructions, str) and instructions else []
    for item in items:
        view.appended(out, _item_view(item, envelopes))
    return out


def parse_responses_request(raw: bytes, envelopes: Sequence[str] = view.DEFAULT_ENVELOPES) -> ChatRequest:
    body = json_object(raw)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid("`model` is required and must be a string", "model")
    value = body.get("input")
    if not isinstance(value, (str, list)) or (isinstance(value, list) and not all(isinstance(i, dict) for i in value)):
        raise _invalid("`input` is required: a string or a list of input items (objects)", "input")
    previous = body.get(PREVIOUS)
    if previous is not None and (not isinstance(previous, str) or not previous):
        raise _invalid(f"`{PREVIOUS}` must be a non-empty string", PREVIOUS)
    if not value and previous is None:
        raise _invalid("`input` must not be empty", "input")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise _invalid("`stream` must be a boolean", "stream")
    messages = routing_view(body.get("instructions"), input_items(body), envelopes)
    return ChatRequest(body=body, model=model, messages=messages, continues=previous)


def continued(body: dict[str, Any], kept: Sequence[Item]) -> dict[str, Any]:
    """A request that continues a response Switchyard kept, as one whole request: the kept
    conversation in front of its input, and no `previous_response_id`."""
    whole = {k: v for k, v in body.items() if k != PREVIOUS}
    whole["input"] = [*kept, *input_items(body)]
    return whole


def unknown_response(response_id: str) -> RequestError:
    """A follow-up naming a response nobody kept (or one since evicted)."""
    return RequestError(404, f"Previous response with id '{response_id}' not found.", "previous_response_not_found",
                        PREVIOUS)
