"""An in-process Router that answers what a test tells it to (a faked collaborator)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from router_model.router import RouterOutcome, RouterQuery


@dataclass
class ScriptedRouter:
    route: str | None = None
    reason: str = "matched"
    elapsed_ms: float = 12.5
    raises: Exception | None = None
    delay_s: float = 0.0
    queries: list[RouterQuery] = field(default_factory=list)

    async def decide(self, query: RouterQuery) -> RouterOutcome:
        self.queries.append(query)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.raises is not None:
            raise self.raises
        return RouterOutcome(self.route, self.reason, self.elapsed_ms)

    async def close(self) -> None:
        pass
