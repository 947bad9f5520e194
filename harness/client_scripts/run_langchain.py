"""LangChain chat models, ChatOpenAI and ChatAnthropic: invoke, stream, and a bind_tools round trip.

Modes: openai-invoke, openai-stream, openai-tools, anthropic-invoke, anthropic-stream, anthropic-tools.
"""

from __future__ import annotations

from common import arguments, lookup_weather, report
from langchain_anthropic import ChatAnthropic
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI


def tool_round_trip(llm: BaseChatModel, prompt: str) -> str:
    weather = tool(lookup_weather)
    bound = llm.bind_tools([weather])
    messages: list[BaseMessage] = [HumanMessage(prompt)]
    asked = bound.invoke(messages)
    assert asked.tool_calls, f"no tool call in {asked!r}"  # type: ignore[attr-defined]
    messages += [asked, *(weather.invoke(call) for call in asked.tool_calls)]  # type: ignore[attr-defined]
    return bound.invoke(messages).text


def main() -> None:
    args = arguments(*(f"{p}-{m}" for p in ("openai", "anthropic") for m in ("invoke", "stream", "tools")))
    provider, mode = args.mode.split("-")
    llm: BaseChatModel
    if provider == "openai":
        llm = ChatOpenAI(model=args.model, base_url=args.base_url, api_key=args.key, max_retries=0)
    else:
        llm = ChatAnthropic(model=args.model, base_url=args.base_url, api_key=args.key, max_retries=0)
    if mode == "invoke":
        report(llm.invoke(args.plain_prompt).text)
    elif mode == "stream":
        chunks = list(llm.stream(args.plain_prompt))
        report("".join(chunk.text for chunk in chunks), chunks=len(chunks))
    else:
        report(tool_round_trip(llm, args.tool_prompt))


main()
