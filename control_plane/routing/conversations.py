"""Which conversation, and which user turn, a chat request belongs to: computed from the request
alone, so agents need no cooperation (README: "Decisions for agents").

- The *turn* is the conversation up to and including its latest user message. Every request of
  one user turn (the first one, then each tool result or assistant continuation in an agent's
  tool loop) has the same turn id; a client retry of the same request has it too.
- The *conversation* is everything up to and including the first user message (with
  `stickiness: conversation`, its first decision holds for every later turn).
- A client may name the conversation itself with `x-switchyard-session`; the turn is then that
  session's n-th user message.

Ids are SHA-256 digests of a canonical JSON of the routing view of the messages (role, text,
attachment types and tool-call fields; control_plane/apis/conversation.py): the same turn sent in
another shape, or with other cache hints, has the same id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# The fields of the routing view (control_plane/apis/conversation.py) that make a message.
_IDENTITY_FIELDS = ("role", "content", "attachments", "tool_calls", "tool_call_id")


@dataclass(frozen=True)
class Turn:
    conversation: str  # the conversation's id
    turn: str  # the latest user turn's id
    continues: bool  # the newest message is not the user's: the turn's decision carries on


def _digest(messages: Sequence[Any], salt: str = "") -> str:
    hasher = hashlib.sha256(salt.encode())
    for message in messages:
        fields = {k: message.get(k) for k in _IDENTITY_FIELDS if isinstance(message, dict) and k in message}
        hasher.update(json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
        hasher.update(b"\n")
    return hasher.hexdigest()


def identify(messages: Sequence[Any], session: str | None = None) -> Turn | None:
    """The request's conversation and user turn; None when it has no user message."""
    users = [i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        return None
    first, latest = users[0], users[-1]
    # An answer or a tool result after the latest user message: the turn goes on. (A system
    # message after it, as Claude Code sends, does not make it a continuation.)
    continues = any(isinstance(m, dict) and m.get("role") in ("assistant", "tool") for m in messages[latest + 1:])
    if session:
        conversation = _digest([], f"session:{session}")
        return Turn(conversation, f"{conversation}:{len(users)}", continues)
    return Turn(_digest(messages[:first + 1]), _digest(messages[:latest + 1]), continues)
