"""The router interface: what the processor asks, and what it gets back.

Arch-Router over HTTP is one implementation (client.py); tests hand in scripted ones, and an
in-process router can sit beside it later. Nothing here knows about Envoy or policies' YAML.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from router_model.prompt import Message


@dataclass(frozen=True)
class RouterQuery:
    """One routing question: the policy's routes (pre-rendered) and the selected conversation."""

    routes_text: str  # the prompt's {routes}, rendered once per policy
    route_names: Sequence[str]
    conversation: Sequence[Message]


@dataclass(frozen=True)
class RouterOutcome:
    """`route` is a route name or None. `reason` says why:
    matched | other (the model said no route fits) | unknown_route | unparseable |
    router_timeout | router_unavailable | router_error."""

    route: str | None
    reason: str
    elapsed_ms: float

    @property
    def failed(self) -> bool:
        """The router could not decide (as opposed to deciding that no route fits)."""
        return self.route is None and self.reason != "other"


class Router(Protocol):
    async def decide(self, query: RouterQuery) -> RouterOutcome: ...

    async def close(self) -> None: ...
