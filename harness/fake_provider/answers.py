"""What the fake provider (harness/fake_provider/server.py) answers, decided alike for its three APIs
(chat completions, Anthropic Messages, Responses) from what each request asks.

Directives that real agents can follow, read from the latest user text (less the `<system-reminder>`
blocks that Claude Code wraps around it: its system prompt quotes "run `git status`"):
  run `CMD`                      when a shell-like tool is offered (a tool whose arguments have a
                                 `command` or `cmd` property: Claude Code's `Bash`, Codex's
                                 `exec_command`), call it with CMD; in Codex's code mode (a
                                 freeform tool that runs JavaScript calling `tools.exec_command`,
                                 or that tool offered as a function of one string `input`, as
                                 a translation offers it), call that tool with such a script
  call `NAME` [with {JSON}]      when a tool NAME is offered, call it with JSON (default {})
When the conversation ends with a tool's result, the answer quotes it: "<name> read the tool
result: <result>", so a test can tell that the answer came from the tool.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

TOOL_INPUT = {"city": "Paris"}  # the arguments of a `use_tools` call
RUN = re.compile(r"\brun `([^`]+)`")
CALL = re.compile(r"\bcall `([\w.-]+)`(?: with (\{.*\}))?")
ENVELOPE = re.compile(r"<system-reminder>.*?</system-reminder>", re.DOTALL)


@dataclass(frozen=True)
class Tool:
    """A tool offered by the request, in any API's shape: its name and its arguments' JSON schema;
    (Responses) a `custom` tool takes free text instead, and a tool may sit in a namespace."""

    name: str
    schema: dict[str, Any]
    kind: str = "function"
    namespace: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Call:
    """The answer "call this tool with these arguments" (a custom tool: with this free text)."""

    name: str
    arguments: dict[str, Any]
    text: str | None = None
    namespace: str | None = None


@dataclass(frozen=True)
class Asked:
    """What the answer depends on, read alike from a request in any of the three APIs."""

    tools: tuple[Tool, ...]
    tool_result: str | None  # the tool result the conversation ends with
    images: int
    prefix: str  # the assistant's own partial answer, when the last message is the assistant's
    turn: int  # 1 + the assistant's messages: names tool calls alike for the same request, anew each round
    user_text: str = ""  # the latest user text, where directives are read
    schema: dict[str, Any] | None = None  # structured output asked for: the answer is JSON of this schema


def blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def text_of(content: Any) -> str:
    """A plain string, or the text of its text parts/blocks (every API allows either)."""
    if isinstance(content, str):
        return content
    return "".join(str(b.get("text", "")) for b in blocks({"content": content})
                   if b.get("type") in ("text", "input_text", "output_text"))


def shell_call(tools: tuple[Tool, ...], command: str) -> Call | None:
    """A call of the first shell-like tool offered, in the argument shape its schema asks for; else
    a script for a code-mode tool that can call `tools.exec_command` (Codex's `exec`)."""
    for tool in tools:
        properties = tool.schema.get("properties") if isinstance(tool.schema, dict) else None
        for key in ("command", "cmd"):
            if tool.kind == "function" and isinstance(properties, dict) and isinstance(properties.get(key), dict):
                argv = properties[key].get("type") == "array"
                return Call(tool.name, {key: ["bash", "-lc", command] if argv else command}, namespace=tool.namespace)
    for tool in tools:
        if "tools.exec_command" not in tool.description:
            continue
        script = f"const result = await tools.exec_command({{cmd: {json.dumps(command)}}});\ntext(result.output);"
        if tool.kind == "custom":
            return Call(tool.name, {}, text=script, namespace=tool.namespace)
        properties = tool.schema.get("properties") if isinstance(tool.schema, dict) else None
        if isinstance(properties, dict) and "input" in properties:  # the same tool, translated to a function
            return Call(tool.name, {"input": script}, namespace=tool.namespace)
    return None


def directed_call(asked: Asked) -> Call | None:
    """The tool call that the latest user text asks for, when its tool is offered."""
    words = ENVELOPE.sub("", asked.user_text)
    if match := RUN.search(words):
        return shell_call(asked.tools, match.group(1))
    if (match := CALL.search(words)) and match.group(1) in {t.name for t in asked.tools}:
        return Call(match.group(1), json.loads(match.group(2)) if match.group(2) else {})
    return None


def decide(name: str, asked: Asked, behaviour: dict[str, Any]) -> str | Call:
    """The whole answer, the same in every API: a text, or a tool call."""
    if asked.tool_result is not None:
        return f"{name} read the tool result: {asked.tool_result}"
    if call := directed_call(asked):
        return call
    if behaviour["use_tools"] and asked.tools:
        return Call(asked.tools[0].name, dict(TOOL_INPUT))
    if asked.schema is not None:  # structured output, as the real services honour it
        return json.dumps(instance_of(asked.schema))
    if behaviour["answer"] is not None:  # continue the partial answer
        return " ".join(behaviour["answer"].split()[len(asked.prefix.split()):])
    return f"hello from {name}" + (f" ({asked.images} images)" if asked.images else "")


def instance_of(schema: Any) -> Any:
    """A value that `schema` (a JSON schema: objects, arrays, scalars, enums) accepts."""
    if not isinstance(schema, dict):
        return None
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {key: instance_of(value) for key, value in (schema.get("properties") or {}).items()}
    return {"array": [], "string": "fake", "integer": 1, "number": 1.5, "boolean": True}.get(str(kind))


def schema_asked(*formats: Any) -> dict[str, Any] | None:
    """The JSON schema of the first structured-output request among `formats` (chat's
    response_format, Anthropic's output_config.format, Responses' text.format)."""
    for fmt in formats:
        if not isinstance(fmt, dict):
            continue
        if fmt.get("type") == "json_object":
            return {"type": "object"}
        schema = (fmt.get("json_schema") or {}).get("schema") if "json_schema" in fmt else fmt.get("schema")
        if fmt.get("type") == "json_schema" and isinstance(schema, dict):
            return schema
    return None


def pieces(text: str) -> list[str]:
    """Word pieces that concatenate back to exactly `text` (a stream equals the whole answer)."""
    return re.findall(r"\s*\S+\s*|\s+", text)


def halves(text: str) -> list[str]:
    return [text[:len(text) // 2], text[len(text) // 2:]]


# The usage the fake reports: its defaults, or the counts a test sets (control(tokens={...})), in
# each API's shape (input without cached; output with reasoning; Anthropic's cache writes apart).
DEFAULT_TOKENS = {"openai": {"input": 1, "output": 1}, "anthropic": {"input": 3, "output": 5},
                  "responses": {"input": 3, "output": 5}}


def _tokens(api: str, tokens: dict[str, int] | None) -> dict[str, int]:
    counts = {"input": 0, "cached": 0, "cache_write": 0, "output": 0, "reasoning": 0}
    return counts | (tokens or DEFAULT_TOKENS[api])


def openai_usage(tokens: dict[str, int] | None) -> dict[str, Any]:
    t = _tokens("openai", tokens)
    prompt = t["input"] + t["cached"]
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": t["output"],
                             "total_tokens": prompt + t["output"]}
    if tokens:
        usage |= {"prompt_tokens_details": {"cached_tokens": t["cached"]},
                  "completion_tokens_details": {"reasoning_tokens": t["reasoning"]}}
    return usage


def anthropic_usage(tokens: dict[str, int] | None) -> dict[str, Any]:
    t = _tokens("anthropic", tokens)
    usage = {"input_tokens": t["input"], "output_tokens": t["output"]}
    if tokens:
        usage |= {"cache_read_input_tokens": t["cached"], "cache_creation_input_tokens": t["cache_write"]}
    return usage


def responses_usage(tokens: dict[str, int] | None) -> dict[str, Any]:
    t = _tokens("responses", tokens)
    return {"input_tokens": t["input"] + t["cached"], "input_tokens_details": {"cached_tokens": t["cached"]},
            "output_tokens": t["output"], "output_tokens_details": {"reasoning_tokens": t["reasoning"]},
            "total_tokens": t["input"] + t["cached"] + t["output"]}
