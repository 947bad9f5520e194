"""Router kinds, built in ONE place: a policy's `router:` settings + its routes -> a Router.

A new kind is a new row in KINDS. Building is blocking (the embedding tier encodes every route
anchor), so callers run it off the event loop, once per policy snapshot.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from router_model.batching import EncodeBatcher
from router_model.calibration import DEFAULT_STRICTNESS
from router_model.client import ArchRouterClient, HttpSessions
from router_model.embedding import EmbeddingRouter, Gate
from router_model.encoder import Encoder
from router_model.encoders import DEFAULT_ENCODER, load_encoder
from router_model.hybrid import HybridRouter
from router_model.one_step import ServedTokenizer, plan_one_step
from router_model.router import ARCH_ROUTER, EMBEDDING, Router, RouteSpec

HYBRID = "hybrid"
# The hybrid margin is a starting point, not tuned yet: measure yours with `switchyard eval
# --router hybrid`. (The embedding tier's `other` line is calibrated: calibration.py.)
DEFAULT_MARGIN = 0.05


@dataclass(frozen=True)
class RouterConfig:
    """A policy's `router:` section, compiled. Endpoint and model are None for `embedding`."""

    kind: str = ARCH_ROUTER
    endpoint: str | None = None
    model: str | None = None
    timeout_ms: int = 400
    api_key_env: str | None = None
    threshold: float | None = None  # a fixed cosine; None: calibrated to `strictness`
    strictness: float = DEFAULT_STRICTNESS
    margin: float = DEFAULT_MARGIN
    other_examples: tuple[str, ...] = ()
    encoder: str = DEFAULT_ENCODER  # a name in ENCODERS (router_model/encoders.py)
    one_step: bool = True  # ask for one token when the route names allow it (one_step.py)

    @property
    def uses_arch_router(self) -> bool:
        return self.kind in (ARCH_ROUTER, HYBRID)

    @property
    def uses_embedding(self) -> bool:
        return self.kind in (EMBEDDING, HYBRID)


class RouterFactory:
    """Builds routers; owns what they share across policies and snapshots: HTTP connection
    pools, the sentence encoders (each loaded on first use), the thread that runs them, and the
    batcher that gathers every policy's requests for each. `encoder_threads`: onnxruntime's
    threads for this process (encoder.intra_op_threads). `encoder`: name -> Encoder (tests)."""

    def __init__(self, encoder: Callable[[str], Encoder] | None = None, encoder_threads: int = 1) -> None:
        self.sessions = HttpSessions()
        self._make_encoder = encoder or functools.partial(load_encoder, threads=encoder_threads)
        self._batchers: dict[str, EncodeBatcher] = {}
        self._lock = threading.Lock()
        # One thread: a batch is one onnxruntime call, parallel inside when it has threads.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedding")

    def batcher(self, encoder: str = DEFAULT_ENCODER) -> EncodeBatcher:
        """That encoder (loaded on first use) behind its batcher: every embedding router of this
        factory that names it shares both, so one batch holds any policy's requests."""
        with self._lock:
            if encoder not in self._batchers:
                self._batchers[encoder] = EncodeBatcher(self._make_encoder(encoder), self.executor)
            return self._batchers[encoder]

    def build(self, config: RouterConfig, routes: Sequence[RouteSpec]) -> Router:
        return KINDS[config.kind](self, config, routes)

    def arch_router(self, config: RouterConfig, routes: Sequence[RouteSpec]) -> ArchRouterClient:
        assert config.endpoint and config.model, "checked when the policy was loaded"
        api_key = os.environ.get(config.api_key_env) if config.api_key_env else None
        client = ArchRouterClient(
            self.sessions, routes, config.endpoint, config.model, config.timeout_ms, api_key
        )
        if config.one_step:
            tokenizer = ServedTokenizer(config.endpoint, config.model, api_key)
            names = [r.name for r in routes]
            client.plan_with(lambda: plan_one_step(names, tokenizer.tokenize, tokenizer.detokenize))
        return client

    def embedding(self, config: RouterConfig, routes: Sequence[RouteSpec]) -> EmbeddingRouter:
        gate = Gate(config.threshold, config.strictness)
        batcher = self.batcher(config.encoder)
        return EmbeddingRouter(batcher.encoder, routes, batcher, gate, config.other_examples)

    def hybrid(self, config: RouterConfig, routes: Sequence[RouteSpec]) -> HybridRouter:
        return HybridRouter(self.embedding(config, routes), self.arch_router(config, routes), config.margin)

    async def close(self) -> None:
        await self.sessions.close()
        self.executor.shutdown(wait=False, cancel_futures=True)


KINDS: dict[str, Callable[[RouterFactory, RouterConfig, Sequence[RouteSpec]], Router]] = {
    ARCH_ROUTER: RouterFactory.arch_router,
    EMBEDDING: RouterFactory.embedding,
    HYBRID: RouterFactory.hybrid,
}


def embedding_tier(router: Router) -> EmbeddingRouter | None:
    """The embedding tier inside a router, if its kind has one (for scores and explanations)."""
    if isinstance(router, HybridRouter):
        return router.embedding
    return router if isinstance(router, EmbeddingRouter) else None
