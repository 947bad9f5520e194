"""Router decisions kept per user turn (or per conversation), so an agent's tool loop, a client
retry or a burst of identical requests asks the router once (README: "Decisions for agents").

One bounded, expiring LRU per policy version: a policy edit starts an empty one. Only decisions
the router actually made are kept (a fallback after a router failure is not). Concurrent
requests for the same key share one router call.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from control_plane.observability.metrics import Metrics
from control_plane.policy.model import DecisionSettings, Policy


class TurnDecisions(Protocol):
    """Where a policy's turn decisions are kept: a TurnCache here, or the control plane's for a
    processor worker (control_plane/workers/shared_state.py)."""

    async def once(self, key: str, decide: Callable[[], Awaitable[CachedDecision | None]]
                   ) -> tuple[CachedDecision | None, bool]: ...


@dataclass(frozen=True)
class CachedDecision:
    route: str
    model: str  # configured model name
    turn: str  # the user turn it was decided for (control_plane/routing/conversations.py)


class TurnCache:
    def __init__(self, policy: str, max_entries: int, ttl_s: float,
                 clock: Callable[[], float] = time.monotonic, metrics: Metrics | None = None) -> None:
        self.policy = policy
        self.metrics = metrics or Metrics()
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, CachedDecision]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[CachedDecision | None]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> CachedDecision | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires, decision = found
        if self.clock() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return decision

    def put(self, key: str, decision: CachedDecision) -> None:
        self._entries[key] = (self.clock() + self.ttl_s, decision)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        self.metrics.decision_cache_entries.labels(self.policy).set(len(self._entries))

    async def once(
        self, key: str, decide: Callable[[], Awaitable[CachedDecision | None]]
    ) -> tuple[CachedDecision | None, bool]:
        """The kept decision for `key`, else `decide()` once for concurrent callers with the same
        key; (result, shared): shared is True for a kept decision and for the callers that waited
        for another's call. A result is kept when not None."""
        kept = self.get(key)
        if kept is not None:
            return kept, True
        pending = self._inflight.get(key)
        if pending is not None:
            try:
                return await asyncio.shield(pending), True
            except Exception:  # the first caller failed: decide on our own
                pass
        future: asyncio.Future[CachedDecision | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await decide()
        except BaseException as exc:
            future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            self._inflight.pop(key, None)
        future.set_result(result)
        if result is not None:
            self.put(key, result)
        return result, False


class DecisionCaches:
    """The current TurnCache of each policy; a new policy version gets a fresh one."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, metrics: Metrics | None = None) -> None:
        self.clock = clock
        self.metrics = metrics or Metrics()
        self._caches: dict[str, tuple[str, TurnCache]] = {}

    def for_policy(self, policy: Policy) -> TurnCache:
        return self.get(policy.name, policy.version, policy.decisions)

    def get(self, policy: str, version: str, settings: DecisionSettings) -> TurnCache:
        current = self._caches.get(policy)
        if current is None or current[0] != version:
            cache = TurnCache(policy, settings.max_entries, settings.ttl_s, self.clock, self.metrics)
            self._caches[policy] = (version, cache)
            self.metrics.decision_cache_entries.labels(policy).set(0)
            return cache
        return current[1]
