"""OpenAI Responses API <-> chat completions: requests and whole answers (streams are in
responses_streams.py). A Responses request reaches a chat-completions provider, and through the
chat form an Anthropic one, when its model's provider does not serve the Responses API itself.

Nothing is lost silently. What changes the answer is carried (instructions, messages, images,
function and custom tools and their calls and outputs, tool_choice, max_output_tokens, sampling,
`text.format` as `response_format`) or refused with `400 untranslatable` naming it. Hints meant for
another model or service are dropped and named (`x-switchyard-dropped`): reasoning items and
settings, hosted tools the chat provider cannot run (Codex offers `web_search` by default),
caching and storage hints.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from control_plane.apis.conversation import text_of
from control_plane.apis.request_error import RequestError
from control_plane.apis.responses import PREVIOUS, input_items, item_type
from control_plane.apis.sse import json_event
from control_plane.apis.translation import Dropped, untranslatable

Body = dict[str, Any]
# A custom (free-form) tool reaches a chat provider as a function with one string parameter.
CUSTOM_INPUT = {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}
# Carried into the chat request; any other setting that is set (reasoning, include, store,
# prompt_cache_key, service_tier, metadata, truncation, ...) only steers how a service works, not
# what the answer must be: it is dropped and named.
CARRIED = ("model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens",
           "temperature", "top_p", "user", "stream", "text", PREVIOUS,
           "store")  # Switchyard itself keeps the answer (routing/response_store.py)
# Input items another model or service wrote that a chat provider cannot read: dropped and named.
# (Reasoning items are written for the model that made them; hosted tools' calls for the service.)
FOREIGN_ITEMS = frozenset({"reasoning", "web_search_call", "file_search_call", "code_interpreter_call",
                           "image_generation_call", "mcp_call", "mcp_list_tools", "mcp_approval_request"})
# Settings a chat provider cannot honour, refused when set.
REFUSED = ("background", "conversation", "prompt", "top_logprobs")
STATUS_OF = {"length": ("incomplete", "max_output_tokens"), "content_filter": ("incomplete", "content_filter")}


def _untranslatable(what: str) -> RequestError:
    return untranslatable(what, "the chat-completions API",
                          "send it to a provider that serves the Responses API: `responses: native`")


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


# ---- Responses request -> chat completions ----------------------------------------------------


def _part(part: Body) -> Body:
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": part.get("text", "")}
    if kind == "refusal":
        return {"type": "text", "text": part.get("refusal", "")}
    if kind == "input_image" and isinstance(part.get("image_url"), str):
        image = {"url": part["image_url"], **({"detail": part["detail"]} if part.get("detail") else {})}
        return {"type": "image_url", "image_url": image}
    raise _untranslatable(f"a '{kind}' content part" + (" by file_id" if kind == "input_image" else ""))


def _content(content: Any) -> Any:
    if isinstance(content, str):
        return content
    parts = [_part(p) for p in content or [] if isinstance(p, dict)]
    return text_of(parts) if all(p["type"] == "text" for p in parts) else parts


def _call(item: Body, custom: bool) -> Body:
    arguments = json.dumps({"input": item.get("input", "")}) if custom else item.get("arguments", "")
    return {"id": item.get("call_id", ""), "type": "function",
            "function": {"name": item.get("name", ""), "arguments": arguments}}


def _messages(body: Body, dropped: Dropped) -> list[Body]:
    messages: list[Body] = []
    if isinstance(body.get("instructions"), str) and body["instructions"]:
        messages.append({"role": "system", "content": body["instructions"]})
    for item in input_items(body):
        kind = item_type(item)
        if kind == "message":
            # `developer` becomes `system`: every chat provider takes that one.
            role = {"developer": "system"}.get(str(item.get("role")), item.get("role"))
            messages.append({"role": role if role in ("user", "assistant", "system") else "user",
                             "content": _content(item.get("content"))})
        elif kind in ("function_call", "custom_tool_call"):
            call = _call(item, kind == "custom_tool_call")
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and isinstance(last.get("content"), (str, type(None))):
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            output = item.get("output")
            messages.append({"role": "tool", "tool_call_id": item.get("call_id", ""),
                             "content": output if isinstance(output, str) else text_of(output)})
        elif kind in FOREIGN_ITEMS:
            dropped.add(f"input:{kind}")
        elif kind == "additional_tools":
            continue  # its tools join the offer (Offer.of)
        else:
            raise _untranslatable(f"an input item of type '{kind}'")
    return messages


@dataclass
class Offer:
    """The tools a Responses request offers, as a chat provider gets them: function tools as they
    are, custom (free-form) tools as a function taking one string `input`, the tools of a
    `namespace` (and of Codex's `additional_tools` input items, its "code mode") flattened, with
    their namespace kept so that a call goes back as the app expects it. Hosted tools (web search,
    file search, ...) the chat provider cannot run are withdrawn."""

    functions: list[Body] = field(default_factory=list)
    custom: set[str] = field(default_factory=set)
    namespace_of: dict[str, str] = field(default_factory=dict)
    withdrawn: set[str] = field(default_factory=set)

    def add(self, tool: Any, dropped: Dropped, namespace: str | None = None) -> None:
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "namespace":
            for inner in tool.get("tools") or []:
                self.add(inner, dropped, str(tool.get("name", "")))
            return
        if kind not in ("function", "custom"):
            self.withdrawn.add(str(kind))
            dropped.add(f"tool:{kind}")
            return
        name = str(tool.get("name", ""))
        if any(f["function"]["name"] == name for f in self.functions):  # the same name in two namespaces
            dropped.add(f"tool:{namespace}.{name}" if namespace else f"tool:{name}")
            return
        if kind == "custom":
            self.custom.add(name)
            function = {"name": name, "parameters": CUSTOM_INPUT, "description": tool.get("description") or "free-form input"}
        else:
            function = {"name": name, "parameters": tool.get("parameters") or {"type": "object"}}
            function |= {k: tool[k] for k in ("description", "strict") if tool.get(k) is not None}
        if namespace:
            self.namespace_of[name] = namespace
        self.functions.append({"type": "function", "function": function})

    @classmethod
    def of(cls, request: Body, dropped: Dropped | None = None) -> Offer:
        offer, dropped = cls(), set() if dropped is None else dropped
        for tool in request.get("tools") or []:
            offer.add(tool, dropped)
        for item in input_items(request):
            if item_type(item) == "additional_tools":
                for tool in item.get("tools") or []:
                    offer.add(tool, dropped)
        return offer

    def call(self, call_id: str, name: str, arguments: str, item_id: str | None = None,
             status: str = "completed") -> Body:
        """A chat tool call as the Responses output item the app expects."""
        item = call_item(call_id, name, arguments, name in self.custom, item_id, status)
        if name in self.namespace_of:
            item["namespace"] = self.namespace_of[name]
        return item


def _tool_choice(choice: Any, withdrawn: set[str]) -> Any:
    if isinstance(choice, dict):
        if choice.get("type") in ("function", "custom"):
            return {"type": "function", "function": {"name": choice.get("name", "")}}
        if choice.get("type") in withdrawn:
            return "auto"
        raise _untranslatable(f"tool_choice of type '{choice.get('type')}'")
    return choice


def _response_format(text: Any) -> Body | None:
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    if fmt["type"] == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    raise _untranslatable(f"text.format of type '{fmt['type']}'")


def request_to_openai(body: Body, dropped: Dropped) -> Body:
    """A Responses request (its earlier conversation already put in front of its input) as a
    chat-completions request."""
    if body.get(PREVIOUS):
        raise _untranslatable(f"`{PREVIOUS}` naming a response Switchyard did not keep")
    for key in REFUSED:
        if body.get(key):
            raise _untranslatable(f"`{key}`")
    out: Body = {"model": body.get("model"), "messages": _messages(body, dropped)}
    offer = Offer.of(body, dropped)
    if offer.functions:
        out["tools"] = offer.functions
        if "parallel_tool_calls" in body:
            out["parallel_tool_calls"] = body["parallel_tool_calls"]
        if body.get("tool_choice") is not None:
            out["tool_choice"] = _tool_choice(body["tool_choice"], offer.withdrawn)
    if body.get("max_output_tokens") is not None:
        out["max_tokens"] = body["max_output_tokens"]
    for same in ("temperature", "top_p", "user"):
        if body.get(same) is not None:
            out[same] = body[same]
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}  # response.completed carries usage
    response_format = _response_format(body.get("text"))
    if response_format is not None:
        out["response_format"] = response_format
    if isinstance(body.get("text"), dict) and body["text"].get("verbosity"):
        dropped.add("text.verbosity")
    dropped.update(key for key, value in body.items() if key not in CARRIED and value not in (None, False, "", [], {}))
    return out


# ---- chat completion -> Responses object -------------------------------------------------------


def usage_from_openai(usage: Body | None) -> Body | None:
    if not usage:
        return None
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    details = usage.get("prompt_tokens_details") or {}
    cached, written = int(details.get("cached_tokens") or 0), int(details.get("cache_write_tokens") or 0)
    reasoning = int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
            "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": prompt + completion}


def message_item(text: str, item_id: str | None = None, status: str = "completed") -> Body:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if status == "completed" else []
    return {"type": "message", "id": item_id or new_id("msg"), "status": status, "role": "assistant",
            "content": content}


def call_item(call_id: str, name: str, arguments: str, custom: bool, item_id: str | None = None,
              status: str = "completed") -> Body:
    if custom:
        try:
            text = json.loads(arguments).get("input", arguments) if arguments else ""
        except (ValueError, AttributeError):
            text = arguments
        return {"type": "custom_tool_call", "id": item_id or new_id("ctc"), "status": status,
                "call_id": call_id, "name": name, "input": text}
    return {"type": "function_call", "id": item_id or new_id("fc"), "status": status, "call_id": call_id,
            "name": name, "arguments": arguments}


def response_object(request: Body, response_id: str, model: str, output: Iterable[Body], usage: Body | None,
                    finish_reason: str | None, status: str = "completed") -> Body:
    """A Responses API response, with the request's settings echoed as the API does."""
    incomplete = None
    if status == "completed" and finish_reason in STATUS_OF:
        status, reason = STATUS_OF[finish_reason]
        incomplete = {"reason": reason}
    return {
        "id": response_id, "object": "response", "created_at": int(time.time()), "status": status,
        "error": None, "incomplete_details": incomplete, "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"), "model": model, "output": list(output),
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": request.get(PREVIOUS), "reasoning": {"effort": None, "summary": None},
        "store": request.get("store", True), "temperature": request.get("temperature"),
        "text": request.get("text") or {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice", "auto"), "tools": request.get("tools") or [],
        "top_p": request.get("top_p"), "truncation": request.get("truncation", "disabled"),
        "usage": usage, "user": request.get("user"), "metadata": request.get("metadata") or {},
    }


def response_from_openai(raw: bytes, request: Body) -> bytes:
    """A chat completion as a Responses API response to `request` (the app's)."""
    completion = json_event(raw, "the provider's answer")
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    offer = Offer.of(request)
    output: list[Body] = []
    if message.get("refusal"):
        output.append({**message_item(""), "content": [{"type": "refusal", "refusal": message["refusal"]}]})
    text = text_of(message.get("content"))
    if text:
        output.append(message_item(text))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        output.append(offer.call(call.get("id") or new_id("call"), function.get("name", ""),
                                 function.get("arguments") or ""))
    answer = response_object(request, new_id("resp"), completion.get("model", ""), output,
                             usage_from_openai(completion.get("usage")), choice.get("finish_reason"))
    return json.dumps(answer, ensure_ascii=False).encode()


def output_items(response: Body) -> list[Body]:
    """A response's output items as the next request's input would carry them."""
    return [item for item in response.get("output") or [] if isinstance(item, dict)]
