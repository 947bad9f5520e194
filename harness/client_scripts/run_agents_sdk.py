"""The OpenAI Agents SDK: an agent with a function tool, run with Runner.run or Runner.run_streamed,
on the SDK's default model (the Responses API) or OpenAIChatCompletionsModel.

Modes: responses, responses-streamed, chat, chat-streamed.
"""

from __future__ import annotations

import asyncio

from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool, set_default_openai_client
from agents import set_tracing_disabled
from common import arguments, lookup_weather, report
from openai import AsyncOpenAI


async def main() -> None:
    args = arguments("responses", "responses-streamed", "chat", "chat-streamed")
    set_tracing_disabled(True)  # no trace export to OpenAI
    client = AsyncOpenAI(base_url=args.base_url, api_key=args.key, max_retries=0)
    if args.mode.startswith("chat"):
        model: object = OpenAIChatCompletionsModel(model=args.model, openai_client=client)
    else:
        set_default_openai_client(client, use_for_tracing=False)
        model = args.model  # a name: the SDK's default model class, which speaks the Responses API
    agent = Agent(name="weather", instructions="Answer with the tool's result.", model=model,  # type: ignore[arg-type]
                  tools=[function_tool(lookup_weather)])
    if args.mode.endswith("streamed"):
        streamed = Runner.run_streamed(agent, args.tool_prompt)
        kinds = [event.type async for event in streamed.stream_events()]
        report(streamed.final_output, events=len(kinds))
    else:
        result = await Runner.run(agent, args.tool_prompt)
        report(result.final_output)


asyncio.run(main())
