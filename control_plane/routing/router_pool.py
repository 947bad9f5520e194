"""Routers for a policy set: one per policy, built by router_model's factory (the one place that
knows router kinds). Building is blocking; `snapshot()` runs it off the event loop."""

from __future__ import annotations

import asyncio

from control_plane.policy.model import Policy, PolicySet
from control_plane.policy.snapshot import Snapshot
from router_model.kinds import RouterFactory
from router_model.router import Router


class RouterPool:
    def __init__(self, factory: RouterFactory | None = None) -> None:
        self.factory = factory or RouterFactory()

    def router_for(self, policy: Policy) -> Router:
        return self.factory.build(policy.router, policy.route_specs)

    async def snapshot(self, policy_set: PolicySet) -> Snapshot:
        """Routers for every policy, prepared in a worker thread (the embedding tier encodes
        every route anchor here, so the next request pays nothing)."""
        return await asyncio.to_thread(self._build, policy_set)

    def _build(self, policy_set: PolicySet) -> Snapshot:
        routers = {name: self.router_for(p) for name, p in policy_set.policies.items()}
        return Snapshot(policy_set, routers)

    async def close(self) -> None:
        await self.factory.close()


class FixedRouterPool(RouterPool):
    """Every policy asks the same router (tests, scripted routers)."""

    def __init__(self, router: Router) -> None:
        super().__init__()
        self._router = router

    def router_for(self, policy: Policy) -> Router:
        return self._router
