"""Mid-stream continuation: when a stream breaks after some content, a fallback that can continue
an assistant prefix is asked for the rest, and its events are spliced into the same SSE stream.

How a provider is told "continue this assistant message" differs; a model's `assistant_prefix`
names the way (README: "Mid-stream continuation"). One table, one place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Body = dict[str, Any]


def _vllm(body: Body, partial: str) -> Body:
    messages = [*body["messages"], {"role": "assistant", "content": partial}]
    return {**body, "messages": messages, "continue_final_message": True,
            "add_generation_prompt": False}


def _prefix_flag(body: Body, partial: str) -> Body:
    # Mistral's and DeepSeek's chat APIs: the last assistant message is marked as a prefix.
    return {**body, "messages": [*body["messages"], {"role": "assistant", "content": partial, "prefix": True}]}


def _trailing(body: Body, partial: str) -> Body:
    # Servers that continue a final assistant message by themselves.
    return {**body, "messages": [*body["messages"], {"role": "assistant", "content": partial}]}


STYLES: dict[str, Callable[[Body, str], Body]] = {
    "vllm": _vllm,
    "prefix": _prefix_flag,
    "trailing": _trailing,
}


def continuation_body(body: Body, style: str, partial: str) -> Body:
    """The request that asks a model of this `style` to continue `partial`."""
    return STYLES[style](body, partial)


def continuable(body: Body) -> bool:
    """Only a plain single-choice text answer can be continued."""
    return body.get("n", 1) in (1, None)
