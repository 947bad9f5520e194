"""Anthropic Messages <-> OpenAI chat completions: requests, whole responses and errors (streams
are in anthropic_streams.py). Either direction, so any route can point at any provider.

Nothing is lost silently. What changes the answer is carried (structured output included:
`response_format` <-> `output_config.format`) or refused with `400 untranslatable` naming it.
Only hints are dropped, and each is named (`x-switchyard-dropped`): `cache_control`, `top_k`,
`thinking` and thinking blocks (only the model that wrote them can read them), sampling knobs the
other API lacks, and settings this code does not know.
"""

from __future__ import annotations

import json
import time
from typing import Any

from control_plane.apis.anthropic_errors import error_body as anthropic_error_body
from control_plane.apis.sse import json_event
from control_plane.apis.openai_errors import error_body as openai_error_body
from control_plane.apis.provider_errors import as_text, read_error
from control_plane.apis.request_error import RequestError
from control_plane.apis.translation import Dropped, untranslatable

Body = dict[str, Any]

# An OpenAI request may leave max_tokens out; Anthropic requires it.
DEFAULT_MAX_TOKENS = 4096
STOP_TO_OPENAI = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                  "tool_use": "tool_calls", "refusal": "content_filter", "pause_turn": "stop",
                  "model_context_window_exceeded": "length"}
STOP_FROM_OPENAI = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                    "function_call": "tool_use", "content_filter": "refusal"}
_DROPPED_BLOCKS = ("thinking", "redacted_thinking")


# Top-level fields each direction carries; any other field that is set is a hint, dropped and named.
ANTHROPIC_CARRIED = frozenset({"model", "messages", "system", "max_tokens", "temperature", "top_p", "stream",
                               "stop_sequences", "metadata", "tools", "tool_choice", "output_config",
                               "output_format"})
OPENAI_CARRIED = frozenset({"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p",
                            "stop", "user", "tools", "tool_choice", "parallel_tool_calls", "stream",
                            "stream_options", "response_format", "n"})
# OpenAI settings that change the answer's shape and have no Anthropic counterpart: refused when set.
OPENAI_REFUSED = ("logprobs", "top_logprobs", "audio", "functions", "function_call")


def _untranslatable(what: str) -> RequestError:
    return untranslatable(what, "the other API (Anthropic <-> OpenAI)", "send it to a provider of the same API")


def _hints(body: Body, carried: frozenset[str], dropped: Dropped) -> None:
    dropped.update(k for k, v in body.items() if k not in carried and v not in (None, False, "", [], {}))


def _has_cache_control(value: Any) -> bool:
    if isinstance(value, dict):
        return "cache_control" in value or any(_has_cache_control(v) for v in value.values())
    return isinstance(value, list) and any(_has_cache_control(v) for v in value)


def message_id(upstream_id: Any) -> str:
    text = str(upstream_id or time.monotonic_ns())
    return text if text.startswith("msg_") else f"msg_{text}"


def json_arguments(arguments: Any) -> Any:
    """A tool call's arguments (a JSON string in OpenAI's API) as Anthropic's `input` object."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        return json.loads(arguments)
    except ValueError:
        return {"_raw_arguments": arguments}  # kept, not lost: the model wrote invalid JSON


# ---- Anthropic request -> OpenAI -------------------------------------------------------------


def _blocks(content: Any) -> list[Any]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])


def _text(content: Any) -> str:
    """The text of Anthropic content (a string or blocks)."""
    return "".join(b.get("text", "") for b in _blocks(content) if isinstance(b, dict) and b.get("type") == "text")


def _image_url(block: Body) -> str:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        return f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    if source.get("type") == "url":
        return str(source.get("url", ""))
    raise _untranslatable(f"an image source of type '{source.get('type')}'")


def _assistant_to_openai(content: Any, strict: bool) -> Body:
    texts, calls = [], []
    for block in _blocks(content):
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use":
            calls.append({"id": block.get("id", ""), "type": "function", "function": {
                "name": block.get("name", ""), "arguments": json.dumps(block.get("input", {}))}})
        elif strict and kind not in _DROPPED_BLOCKS:
            raise _untranslatable(f"an assistant '{kind}' block")
    message: Body = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _user_to_openai(content: Any) -> list[Body]:
    """Tool results become `tool` messages (first, as Anthropic requires them first); the rest
    one user message."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    out: list[Body] = []
    parts: list[Body] = []
    for block in content:
        kind = block.get("type")
        if kind == "tool_result":
            result = block.get("content", "")
            text = result if isinstance(result, str) else _text(result)
            out.append({"role": "tool", "tool_call_id": block.get("tool_use_id", ""), "content": text})
        elif kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block)}})
        elif kind not in _DROPPED_BLOCKS:
            raise _untranslatable(f"a user '{kind}' block")
    if parts:
        out.append({"role": "user", "content": parts})
    return out


def _tool_to_openai(tool: Body) -> Body:
    function = {"name": tool["name"], "parameters": tool.get("input_schema") or {"type": "object"}}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _tool_choice_to_openai(choice: Body) -> Any:
    kind = choice.get("type")
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name", "")}}
    return {"any": "required", "none": "none"}.get(str(kind), "auto")


def _output_config(body: Body) -> Body:
    config = body.get("output_config")
    return config if isinstance(config, dict) else {}


def _format_to_openai(body: Body) -> Body | None:
    """Anthropic structured output (`output_config.format`, or the beta `output_format`) as an
    OpenAI `response_format`."""
    fmt = _output_config(body).get("format") or body.get("output_format")
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") != "json_schema":
        raise _untranslatable(f"an output format of type '{fmt.get('type')}'")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt.get("schema") or {}, "strict": True}}


def request_to_openai(body: Body, dropped: Dropped | None = None) -> Body:
    """An Anthropic Messages request as an OpenAI chat-completions request; the hints it drops
    are added to `dropped`."""
    dropped = set() if dropped is None else dropped
    messages: list[Body] = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": _text(system)})
    for message in body.get("messages", []):
        if message.get("role") == "assistant":
            if any(b.get("type") in _DROPPED_BLOCKS for b in _blocks(message.get("content"))):
                dropped.add("thinking")
            messages.append(_assistant_to_openai(message.get("content"), strict=True))
        elif message.get("role") == "system":  # mid-conversation: kept at its place
            messages.append({"role": "system", "content": _text(message.get("content"))})
        else:
            messages.extend(_user_to_openai(message.get("content")))
    out: Body = {"model": body.get("model"), "messages": messages}
    for same in ("max_tokens", "temperature", "top_p", "stream"):
        if same in body:
            out[same] = body[same]
    if body.get("stream"):
        out["stream_options"] = {"include_usage": True}  # Anthropic's message_delta carries usage
    if body.get("stop_sequences"):
        out["stop"] = body["stop_sequences"]
    user = (body.get("metadata") or {}).get("user_id")
    if isinstance(user, str):
        out["user"] = user
    # Server tools (web search, code execution, ...) run at Anthropic: withdrawn from the offer.
    offered = body.get("tools") or []
    tools = [_tool_to_openai(tool) for tool in offered if tool.get("type") in (None, "custom")]
    dropped.update(f"tool:{tool['type']}" for tool in offered if tool.get("type") not in (None, "custom"))
    if tools:
        out["tools"] = tools
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        out["tool_choice"] = _tool_choice_to_openai(choice)
        if choice.get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False
    response_format = _format_to_openai(body)
    if response_format is not None:
        out["response_format"] = response_format
    if _has_cache_control([system, body.get("messages"), body.get("tools")]):
        dropped.add("cache_control")
    dropped.update(f"output_config.{key}" for key in _output_config(body) if key != "format")  # effort
    _hints(body, ANTHROPIC_CARRIED, dropped)
    return out


# ---- OpenAI request -> Anthropic -------------------------------------------------------------


def _openai_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict) and p.get("type") == "text")


def _openai_part_to_block(part: Any) -> Body:
    if isinstance(part, dict) and part.get("type") == "text":
        return {"type": "text", "text": part.get("text", "")}
    if isinstance(part, dict) and part.get("type") == "image_url":
        url = str((part.get("image_url") or {}).get("url", ""))
        if url.startswith("data:") and ";base64," in url:
            media_type, data = url[5:].split(";base64,", 1)
            return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
        return {"type": "image", "source": {"type": "url", "url": url}}
    kind = part.get("type") if isinstance(part, dict) else type(part).__name__
    raise _untranslatable(f"a '{kind}' content part")


def _format_from_openai(response_format: Any) -> Body | None:
    """An OpenAI `response_format` as Anthropic's structured output (`output_config.format`)."""
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind in (None, "text"):
        return None
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
    elif kind == "json_object":
        schema = {"type": "object"}
    else:
        raise _untranslatable(f"a response_format of type '{kind}'")
    return {"format": {"type": "json_schema", "schema": schema}}


def request_from_openai(body: Body, dropped: Dropped | None = None) -> Body:
    """An OpenAI chat-completions request as an Anthropic Messages request; the hints it drops
    are added to `dropped`."""
    dropped = set() if dropped is None else dropped
    if body.get("n", 1) not in (1, None):
        raise RequestError(400, "n > 1 is not supported by Anthropic-API providers", "unsupported_parameter", "n")
    for key in OPENAI_REFUSED:
        if body.get(key):
            raise _untranslatable(f"`{key}`")
    system: list[str] = []
    messages: list[Body] = []

    def add(role: str, blocks: list[Body]) -> None:
        blocks = [b for b in blocks if not (b.get("type") == "text" and not b.get("text"))]
        if not blocks:
            return
        if messages and messages[-1]["role"] == role:  # Anthropic wants roles to alternate
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})

    for message in body.get("messages", []):
        role, content = message.get("role"), message.get("content")
        if role in ("system", "developer"):
            system.append(_openai_text(content))
        elif role == "tool":
            add("user", [{"type": "tool_result", "tool_use_id": message.get("tool_call_id", ""),
                          "content": _openai_text(content)}])
        elif role == "assistant":
            blocks = [{"type": "text", "text": _openai_text(content)}]
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                blocks.append({"type": "tool_use", "id": call.get("id", ""), "name": function.get("name", ""),
                               "input": json_arguments(function.get("arguments"))})
            add("assistant", blocks)
        else:
            parts = content if isinstance(content, list) else [{"type": "text", "text": content or ""}]
            add("user", [_openai_part_to_block(p) for p in parts])
    out: Body = {"model": body.get("model"), "messages": messages,
                 "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS}
    if system:
        out["system"] = "\n\n".join(system)
    if body.get("stream"):
        out["stream"] = True
    if "temperature" in body and body["temperature"] is not None:
        out["temperature"] = min(float(body["temperature"]), 1.0)  # OpenAI's range is 0..2
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if isinstance(body.get("user"), str):
        out["metadata"] = {"user_id": body["user"]}
    tools = [t.get("function") or {} for t in body.get("tools") or [] if t.get("type") == "function"]
    if tools:
        out["tools"] = [{"name": f.get("name", ""), **({"description": f["description"]} if f.get("description") else {}),
                         "input_schema": f.get("parameters") or {"type": "object", "properties": {}}}
                        for f in tools]
    choice = body.get("tool_choice")
    if choice is not None or body.get("parallel_tool_calls") is False:
        if isinstance(choice, dict):
            mapped: Body = {"type": "tool", "name": (choice.get("function") or {}).get("name", "")}
        else:
            mapped = {"type": {"required": "any", "none": "none"}.get(str(choice), "auto")}
        if body.get("parallel_tool_calls") is False and mapped["type"] != "none":
            mapped["disable_parallel_tool_use"] = True
        out["tool_choice"] = mapped
    output_config = _format_from_openai(body.get("response_format"))
    if output_config is not None:
        out["output_config"] = output_config
    _hints(body, OPENAI_CARRIED, dropped)
    return out


# ---- whole responses --------------------------------------------------------------------------


def _json(raw: bytes) -> Body:
    return json_event(raw, "the provider's answer")


def usage_to_openai(usage: Body) -> Body:
    prompt = sum(int(usage.get(k) or 0) for k in
                 ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
    completion = int(usage.get("output_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def response_to_openai(raw: bytes) -> bytes:
    """An Anthropic message as an OpenAI chat completion."""
    answer = _json(raw)
    content = answer.get("content") or []
    message = _assistant_to_openai(content, strict=False)
    completion = {
        "id": answer.get("id", ""), "object": "chat.completion", "created": int(time.time()),
        "model": answer.get("model", ""),
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": STOP_TO_OPENAI.get(str(answer.get("stop_reason")), "stop")}],
        "usage": usage_to_openai(answer.get("usage") or {}),
    }
    return json.dumps(completion, ensure_ascii=False).encode()


def response_from_openai(raw: bytes) -> bytes:
    """An OpenAI chat completion as an Anthropic message."""
    completion = _json(raw)
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    content: list[Body] = []
    text = _openai_text(message.get("content"))
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id", ""), "name": function.get("name", ""),
                        "input": json_arguments(function.get("arguments"))})
    usage = completion.get("usage") or {}
    answer = {
        "id": message_id(completion.get("id")), "type": "message", "role": "assistant",
        "model": completion.get("model", ""), "content": content,
        "stop_reason": STOP_FROM_OPENAI.get(str(choice.get("finish_reason")), "end_turn"),
        "stop_sequence": None,
        "usage": {"input_tokens": int(usage.get("prompt_tokens") or 0),
                  "output_tokens": int(usage.get("completion_tokens") or 0)},
    }
    return json.dumps(answer, ensure_ascii=False).encode()


# ---- errors ------------------------------------------------------------------------------------


def error_to_openai(status: int, raw: bytes) -> bytes:
    """An Anthropic error in the OpenAI shape (what the guarded path's rules read)."""
    error = read_error(raw)
    if error is None:
        return openai_error_body(status, as_text(raw), "provider_error")
    code = "context_length_exceeded" if error.context_length_exceeded else (error.type or "provider_error")
    return openai_error_body(status, error.message, code)


def error_from_openai(status: int, raw: bytes) -> bytes:
    error = read_error(raw)
    return anthropic_error_body(status, error.message if error else as_text(raw))
