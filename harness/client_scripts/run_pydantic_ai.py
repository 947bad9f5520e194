"""pydantic-ai: an agent with a tool, on OpenAIResponsesModel, OpenAIChatModel or AnthropicModel.

Modes: responses, chat, anthropic (each run once, and the chat model streamed too: chat-streamed).
"""

from __future__ import annotations

import asyncio

from common import arguments, lookup_weather, report
from pydantic_ai import Agent
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.openai import OpenAIProvider


async def main() -> None:
    args = arguments("responses", "chat", "chat-streamed", "anthropic")
    if args.mode == "anthropic":
        model: object = AnthropicModel(args.model, provider=AnthropicProvider(base_url=args.base_url, api_key=args.key))
    else:
        provider = OpenAIProvider(base_url=args.base_url, api_key=args.key)
        kind = OpenAIResponsesModel if args.mode == "responses" else OpenAIChatModel
        model = kind(args.model, provider=provider)
    agent = Agent(model, instructions="Answer with the tool's result.",  # type: ignore[call-overload]
                  tools=[lookup_weather])
    if args.mode == "chat-streamed":
        async with agent.run_stream(args.tool_prompt) as streamed:
            report(await streamed.get_output())
    else:
        report((await agent.run(args.tool_prompt)).output)


asyncio.run(main())
