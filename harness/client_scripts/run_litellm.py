"""litellm as a client library: completion() with a tool round trip, through its openai/ or
anthropic/ provider prefix (the OpenAI chat API, or the Anthropic Messages API).

Modes: openai, anthropic.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch of the price list (offline)

import litellm  # noqa: E402

from common import arguments, lookup_weather, report  # noqa: E402

TOOLS = [{"type": "function", "function": {
    "name": "lookup_weather", "description": "Look up the weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def main() -> None:
    args = arguments("openai", "anthropic")
    options = {"model": f"{args.mode}/{args.model}", "api_base": args.base_url, "api_key": args.key,
               "tools": TOOLS, "max_tokens": 256, "num_retries": 0}
    messages: list[dict[str, object]] = [{"role": "user", "content": args.tool_prompt}]
    asked = litellm.completion(messages=messages, **options).choices[0].message
    assert asked.tool_calls, f"no tool call in {asked!r}"
    messages.append(asked.model_dump())
    for call in asked.tool_calls:
        result = lookup_weather(**json.loads(call.function.arguments))
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    report(litellm.completion(messages=messages, **options).choices[0].message.content)


main()
