"""The hybrid router: the embedding tier answers when it is confident, Arch-Router otherwise.

When Arch-Router fails (timeout, error, unusable answer), the embedding tier's own decision is used
instead of the policy's default model: a degraded decision, marked as such.
"""

from __future__ import annotations

import time

from router_model.client import ArchRouterClient
from router_model.embedding import EmbeddingRouter
from router_model.router import RouterOutcome, RouterQuery


class HybridRouter:
    def __init__(self, embedding: EmbeddingRouter, arch_router: ArchRouterClient, margin: float) -> None:
        self.embedding = embedding
        self.arch_router = arch_router
        self.margin = margin

    async def decide(self, query: RouterQuery) -> RouterOutcome:
        started = time.perf_counter()
        scores = await self.embedding.score(query.conversation)
        if scores is not None and scores.confident(self.margin):
            return self.embedding.outcome(scores, started)
        outcome = await self.arch_router.decide(query)
        if outcome.failed:
            return self.embedding.outcome(scores, started, degraded=outcome.reason)
        elapsed = (time.perf_counter() - started) * 1000
        return RouterOutcome(outcome.route, outcome.reason, elapsed, outcome.tier)
