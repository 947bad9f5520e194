"""Which part of an OpenAI chat request the router sees.

Follows the reference gateway: only user/assistant text, newest first within a budget of about
2048 tokens (estimated as chars/4); the newest user message is kept whole even when it alone is
over budget, since it carries the intent being routed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from router_model.prompt import Message

ROUTED_ROLES = frozenset({"user", "assistant"})
DEFAULT_TOKEN_BUDGET = 2048
CHARS_PER_TOKEN = 4


def message_text(content: Any) -> str:
    """Text of an OpenAI message `content`: a string, or the text parts of a part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = (
            part.get("text")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
        return "\n".join(t for t in texts if isinstance(t, str) and t)
    return ""


def text_messages(messages: Iterable[Any]) -> list[Message]:
    """User/assistant turns with text, oldest first; everything else is dropped."""
    kept = []
    for raw in messages:
        if not isinstance(raw, dict) or raw.get("role") not in ROUTED_ROLES:
            continue
        text = message_text(raw.get("content"))
        if text.strip():
            kept.append(Message(role=raw["role"], content=text))
    return kept


def select_conversation(
    messages: Sequence[Any], token_budget: int = DEFAULT_TOKEN_BUDGET
) -> list[Message]:
    """The turns the router sees, oldest first, newest-first within `token_budget`."""
    candidates = text_messages(messages)
    budget_chars = token_budget * CHARS_PER_TOKEN
    selected: list[Message] = []
    used = 0
    for message in reversed(candidates):
        cost = len(message.content)
        if used + cost > budget_chars:
            # An oversized newest user turn is the intent itself: keep it whole, stop there.
            if not selected and message.role == "user":
                selected.append(message)
            break
        selected.append(message)
        used += cost
    selected.reverse()
    return selected


def latest_user_turn(messages: Sequence[Any]) -> int | None:
    """Index of the newest user message (None if there is none): identifies the turn routed."""
    for index in range(len(messages) - 1, -1, -1):
        raw = messages[index]
        if isinstance(raw, dict) and raw.get("role") == "user":
            return index
    return None
