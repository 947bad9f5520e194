"""What routing reads of a request, whatever door and client it came from: the conversation as
plain OpenAI-form messages (`role`, text `content`, tool-call identity). The router and the turn
ids (control_plane/routing/conversations.py) read only this view, so:

- a string equals one text block, and only text and tool calls count: `cache_control` and other
  non-semantic fields, or a client resending a turn in another shape, never change a turn;
- client envelopes (`<system-reminder>…</system-reminder>` and the like, a configurable list of
  tag names) are cut from the text: the router sees what the person typed, and a user message
  that holds nothing else is no user turn;
- a user message that carries tool results is a `tool` message (its text blocks beside them too):
  it continues its turn, it does not start one.

Each door's parser builds the view with these helpers (openai_chat.py, anthropic_messages.py,
responses.py). A message is a dict so that routing reads every door alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

Message = dict[str, Any]
# Claude Code wraps what it adds to a user's message in <system-reminder>; Codex sends its
# environment and AGENTS.md instructions as user messages wrapped in these tags.
DEFAULT_ENVELOPES = ("system-reminder", "environment_context", "user_instructions")
# Content block or part types that carry text, in any of the three APIs.
TEXT_TYPES = frozenset({"text", "input_text", "output_text"})


@lru_cache(maxsize=64)
def _envelope_pattern(tags: tuple[str, ...]) -> re.Pattern[str] | None:
    if not tags:
        return None
    names = "|".join(re.escape(tag) for tag in tags)
    return re.compile(rf"<({names})(?:\s[^>]*)?>.*?</\1>", re.DOTALL)


def strip_envelopes(text: str, envelopes: Sequence[str]) -> str:
    """`text` without the envelopes a client put around (or beside) the user's words."""
    pattern = _envelope_pattern(tuple(envelopes))
    return text if pattern is None or "<" not in text else pattern.sub("", text).strip()


def text_of(content: Any) -> str:
    """The text of message content: a string, or the text blocks/parts of a list, joined."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts = (b.get("text") for b in content if isinstance(b, dict) and b.get("type") in TEXT_TYPES)
    return "\n".join(t for t in texts if isinstance(t, str) and t)


def attachments(content: Any) -> list[str]:
    """The types of content that is not text (images, documents, files): part of a turn's
    identity, so an image-only user message is a turn too."""
    if not isinstance(content, list):
        return []
    kinds = (b.get("type") for b in content if isinstance(b, dict))
    return [str(k) for k in kinds if k not in TEXT_TYPES]


def canonical_arguments(arguments: Any) -> str:
    """A tool call's arguments as one canonical JSON text, whether they came as an object
    (Anthropic) or a JSON string (OpenAI): the same call hashes alike from either."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return str(arguments)
    return json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def tool_call(call_id: Any, name: Any, arguments: Any) -> dict[str, str]:
    return {"id": str(call_id or ""), "name": str(name or ""), "arguments": canonical_arguments(arguments)}


def user(content: Any, envelopes: Sequence[str]) -> Message | None:
    """A user message, or None when it holds only envelopes (no words of the person)."""
    text = strip_envelopes(text_of(content), envelopes)
    extra = attachments(content)
    if not text.strip() and not extra:
        return None
    message: Message = {"role": "user", "content": text}
    if extra:
        message["attachments"] = extra
    return message


def assistant(text: str, calls: Iterable[dict[str, str]] = ()) -> Message:
    message: Message = {"role": "assistant", "content": text}
    calls = list(calls)
    if calls:
        message["tool_calls"] = calls
    return message


def tool(call_id: Any, text: str) -> Message:
    return {"role": "tool", "tool_call_id": str(call_id or ""), "content": text}


def system(text: str) -> Message:
    return {"role": "system", "content": text}


def appended(messages: list[Message], message: Message | None) -> list[Message]:
    """`messages` plus `message`; consecutive assistant tool calls (one per item in the Responses
    API) merge into one assistant message, as the chat form has them."""
    if message is None:
        return messages
    last = messages[-1] if messages else None
    if (last is not None and message["role"] == "assistant" == last["role"] and not message["content"]
            and "tool_calls" in message):
        last.setdefault("tool_calls", []).extend(message["tool_calls"])
    else:
        messages.append(message)
    return messages
