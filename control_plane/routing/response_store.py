"""Responses Switchyard answered on the Responses API door, kept so that a follow-up naming one
(`previous_response_id`) can be served (README: "The Responses API door"):

- answered by a provider that serves the Responses API itself: only *who* answered. The provider
  keeps the conversation; the follow-up is pinned to the same model.
- answered through translation: the whole conversation (input and output items), so that the
  follow-up can be expanded for a chat provider, and what routing reads of it.

Bounded (entries and bytes), least recently used first out; `store: false` requests are not kept.
It lives in the control plane, with the guarded path that writes it; workers ask it over the
shared-state socket (control_plane/workers/shared_state.py).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

MAX_ENTRIES = 10_000
MAX_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class StoredResponse:
    policy: str
    model: str  # the configured model that answered
    route: str  # the route of the decision that chose it
    native: bool  # answered by a provider that keeps the conversation itself
    items: tuple[dict[str, Any], ...] = ()  # (translated) the conversation: input, then output items
    messages: tuple[dict[str, Any], ...] = ()  # (translated) what routing reads of it

    def size(self) -> int:
        return 256 + (len(json.dumps([self.items, self.messages])) if self.items else 0)

    def wire(self) -> dict[str, Any]:
        """What a worker needs of it (not the items: only the guarded path expands them)."""
        return {"policy": self.policy, "model": self.model, "route": self.route, "native": self.native,
                "messages": list(self.messages)}

    @classmethod
    def from_wire(cls, fields: dict[str, Any]) -> StoredResponse:
        return cls(str(fields["policy"]), str(fields["model"]), str(fields["route"]), bool(fields["native"]),
                   messages=tuple(fields.get("messages") or ()))


class ResponseStore:
    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._entries: OrderedDict[str, tuple[StoredResponse, int]] = OrderedDict()
        self._bytes = 0

    def keep(self, response_id: str, stored: StoredResponse) -> None:
        self._drop(response_id)
        size = stored.size()
        self._entries[response_id] = (stored, size)
        self._bytes += size
        while self._entries and (len(self._entries) > self.max_entries or self._bytes > self.max_bytes):
            self._drop(next(iter(self._entries)))

    def get(self, response_id: str) -> StoredResponse | None:
        found = self._entries.get(response_id)
        if found is None:
            return None
        self._entries.move_to_end(response_id)
        return found[0]

    def _drop(self, response_id: str) -> None:
        found = self._entries.pop(response_id, None)
        if found is not None:
            self._bytes -= found[1]

    def __len__(self) -> int:
        return len(self._entries)
