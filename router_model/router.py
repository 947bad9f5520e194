"""The router interface: what the processor asks, and what it gets back.

Router kinds (Arch-Router over HTTP, the in-process embedding tier, the hybrid of both) are built in
one place, `kinds.py`. A router is built once per policy snapshot for that policy's routes, off the
event loop, so each kind prepares its per-policy state (Arch-Router's route block, the embedding
tier's vectors) once; `decide` is then cheap. Nothing here knows about Envoy or the policy YAML.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from router_model.prompt import Message

NO_ROUTE = "other"  # the route name meaning "no route fits": the ONE definition

# Tiers: which kind of router made a decision (the `routed:<tier>` decision kinds).
ARCH_ROUTER = "arch-router"
EMBEDDING = "embedding"


@dataclass(frozen=True)
class RouteSpec:
    """A route as routers see it: a name, a plain-language description, optional examples."""

    name: str
    description: str
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouterQuery:
    """One routing question: the policy's routes and the selected conversation (oldest first)."""

    routes: Sequence[RouteSpec]
    conversation: Sequence[Message]


@dataclass(frozen=True)
class RouterOutcome:
    """`route` is a route name or None. `reason` says why:
    matched | other (no route fits) | unknown_route | unparseable |
    router_timeout | router_unavailable | router_error.

    `tier` is the kind of router that decided. `degraded` is set when a hybrid's Arch-Router
    failed (its reason) and the embedding tier decided instead. A router that scores its
    choices (the embedding tier) gives the winner's score (the route's, or `other`'s) and the
    runner-up with its score."""

    route: str | None
    reason: str
    elapsed_ms: float
    tier: str = ARCH_ROUTER
    degraded: str | None = None
    score: float | None = None
    runner_up: str | None = None
    runner_up_score: float | None = None

    @property
    def failed(self) -> bool:
        """The router could not decide (as opposed to deciding that no route fits)."""
        return self.route is None and self.reason not in ("matched", NO_ROUTE)


class Router(Protocol):
    async def decide(self, query: RouterQuery) -> RouterOutcome: ...
