"""The fake provider's Responses API (POST .../responses), as Codex CLI, the OpenAI Agents SDK and
pydantic-ai's OpenAIResponsesModel use it: `instructions`, `input` as a string or items, function
tools, answers as JSON or as the real `response.*` event stream, and `previous_response_id`
(served from the responses it remembered, unless a request said `store: false`).

A request that asks for `reasoning` also gets a reasoning item first, with encrypted content that
only this provider can "decrypt" (fake_checks.check_responses refuses another's), as Codex sends
such items back on later requests.
"""

from __future__ import annotations

import json
import time
from typing import Any

from harness.fake_provider.answers import Asked, Call, Tool, blocks, halves, pieces, responses_usage, schema_asked, text_of
from harness.fake_provider.checks import item_type

MALFORMED = b'event: response.output_text.delta\ndata: {"type": \n\n'
Event = tuple[bytes, bool]  # an SSE event, and whether the chunk-counting faults count it


def input_items(body: dict[str, Any]) -> list[Any]:
    """The request's own input items; a string is one user message."""
    value = body.get("input")
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return list(value) if isinstance(value, list) else []


def flat_tools(tools: Any, namespace: str | None = None) -> list[Tool]:
    """Function and custom tools, those in namespaces included (named with their namespace)."""
    found: list[Tool] = []
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict):
            continue
        if tool.get("type") == "namespace":
            found += flat_tools(tool.get("tools"), str(tool.get("name")))
        elif tool.get("type") in ("function", "custom"):
            found.append(Tool(str(tool.get("name")), tool.get("parameters") or {}, str(tool["type"]), namespace,
                              str(tool.get("description") or "")))
    return found


def offered_tools(body: dict[str, Any], items: list[dict[str, Any]]) -> tuple[Tool, ...]:
    """The request's `tools`, then those that `additional_tools` input items add (Codex's code mode
    offers its tools only so)."""
    added = [tool for item in items if item_type(item) == "additional_tools" for tool in item.get("tools") or []]
    return tuple(flat_tools(body.get("tools")) + flat_tools(added))


def asked_responses(body: dict[str, Any], items: list[dict[str, Any]]) -> Asked:
    """What the answer depends on, from the whole conversation (previous responses included)."""
    messages = [i for i in items if item_type(i) == "message"]
    users = [m for m in messages if m.get("role") == "user"]
    last = items[-1] if items else {}
    output = last.get("output") if item_type(last) in ("function_call_output", "custom_tool_call_output") else None
    images = sum(p.get("type") == "input_image" for m in users for p in blocks(m))
    turn = 1 + sum(item_type(i) in ("function_call", "custom_tool_call")
                   or (item_type(i) == "message" and i.get("role") == "assistant") for i in items)
    return Asked(tools=offered_tools(body, items), tool_result=None if output is None else text_of(output),
                 images=images, prefix="", turn=turn, user_text=text_of(users[-1].get("content")) if users else "",
                 schema=schema_asked((body.get("text") or {}).get("format")))


def output_items(name: str, body: dict[str, Any], asked: Asked, answer: str | Call) -> list[dict[str, Any]]:
    unique = time.monotonic_ns()
    items: list[dict[str, Any]] = []
    if body.get("reasoning") is not None:
        reasoning: dict[str, Any] = {"type": "reasoning", "id": f"rs_{unique}", "summary": []}
        if "reasoning.encrypted_content" in (body.get("include") or []):
            reasoning["encrypted_content"] = f"{issuer(name)}{unique}"
        items.append(reasoning)
    where = {"namespace": answer.namespace} if isinstance(answer, Call) and answer.namespace else {}
    if isinstance(answer, Call) and answer.text is not None:
        items.append({"type": "custom_tool_call", "id": f"ctc_{unique}", "call_id": f"call_{asked.turn}",
                      "name": answer.name, "input": answer.text, **where, "status": "completed"})
    elif isinstance(answer, Call):
        items.append({"type": "function_call", "id": f"fc_{unique}", "call_id": f"call_{asked.turn}",
                      "name": answer.name, "arguments": json.dumps(answer.arguments), **where, "status": "completed"})
    else:
        items.append({"type": "message", "id": f"msg_{unique}", "status": "completed", "role": "assistant",
                      "content": [{"type": "output_text", "text": answer, "annotations": [], "logprobs": []}]})
    return items


def issuer(name: str) -> str:
    """How this provider's encrypted reasoning content starts."""
    return f"fake-{name}:"


def response_object(name: str, body: dict[str, Any], output: list[dict[str, Any]],
                    tokens: dict[str, int] | None = None) -> dict[str, Any]:
    """A completed response, echoing the request's settings as the real API does."""
    return {
        "id": f"resp_{name}_{time.monotonic_ns()}", "object": "response", "created_at": int(time.time()),
        "status": "completed", "model": body.get("model", ""), "output": output, "usage": responses_usage(tokens),
        "instructions": body.get("instructions"), "previous_response_id": body.get("previous_response_id"),
        "store": body.get("store", True), "tools": body.get("tools") or [],
        "tool_choice": body.get("tool_choice", "auto"), "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "text": body.get("text") or {"format": {"type": "text"}},
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "metadata": body.get("metadata") or {}, "temperature": 1.0, "top_p": 1.0, "truncation": "disabled",
        "max_output_tokens": body.get("max_output_tokens"), "error": None, "incomplete_details": None, "user": None,
    }


def response_events(response: dict[str, Any], behaviour: dict[str, Any]) -> list[Event]:
    """The real event sequence of a streamed response; the text and argument deltas are the chunks."""
    events: list[Event] = []

    def emit(kind: str, counted: bool = False, **data: Any) -> None:
        payload = {"type": kind, "sequence_number": len(events), **data}
        events.append((f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode(), counted))

    started = {**response, "status": "in_progress", "output": [], "usage": None}
    emit("response.created", response=started)
    emit("response.in_progress", response=started)
    for index, item in enumerate(response["output"]):
        at = {"item_id": item["id"], "output_index": index}
        if item["type"] == "message":
            part = item["content"][0]
            started_item = {**item, "status": "in_progress", "content": []}
            emit("response.output_item.added", output_index=index, item=started_item)
            emit("response.content_part.added", **at, content_index=0, part={**part, "text": ""})
            for piece in pieces(part["text"]):
                emit("response.output_text.delta", True, **at, content_index=0, delta=piece, logprobs=[])
            emit("response.output_text.done", **at, content_index=0, text=part["text"], logprobs=[])
            emit("response.content_part.done", **at, content_index=0, part=part)
        elif item["type"] == "function_call":
            emit("response.output_item.added", output_index=index,
                 item={**item, "status": "in_progress", "arguments": ""})
            for half in halves(item["arguments"]):
                emit("response.function_call_arguments.delta", True, **at, delta=half)
            emit("response.function_call_arguments.done", **at, name=item["name"], arguments=item["arguments"])
        elif item["type"] == "custom_tool_call":
            emit("response.output_item.added", output_index=index, item={**item, "status": "in_progress", "input": ""})
            for half in halves(item["input"]):
                emit("response.custom_tool_call_input.delta", True, **at, delta=half)
            emit("response.custom_tool_call_input.done", **at, input=item["input"])
        else:
            emit("response.output_item.added", output_index=index, item=item)
        emit("response.output_item.done", output_index=index, item=item)
    if not behaviour["no_done"]:
        emit("response.completed", response=response)
    return events
