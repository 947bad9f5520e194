"""A chat request as every front door hands it to routing: the parsed body, the `model` asked
for, and the conversation in the OpenAI chat form that the router and turn ids read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ChatRequest:
    body: dict[str, Any]  # the whole parsed body; everything but `model` is passed on as is
    model: str
    messages: list[Any]  # the conversation as routing reads it (apis/conversation.py)
    continues: str | None = None  # the id of an earlier response this request continues (Responses API)
