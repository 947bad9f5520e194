"""One pooled router client per router target, shared by every request of every policy."""

from __future__ import annotations

import os

from control_plane.policy import RouterTarget
from router_model.client import ArchRouterClient
from router_model.router import Router


class RouterPool:
    def __init__(self) -> None:
        self._routers: dict[RouterTarget, Router] = {}

    def get(self, target: RouterTarget) -> Router:
        router = self._routers.get(target)
        if router is None:
            api_key = os.environ.get(target.api_key_env) if target.api_key_env else None
            router = ArchRouterClient(target.endpoint, target.model, target.timeout_ms, api_key)
            self._routers[target] = router
        return router

    async def close(self) -> None:
        for router in self._routers.values():
            await router.close()
        self._routers.clear()


class FixedRouterPool(RouterPool):
    """Every policy asks the same router (tests, scripted routers)."""

    def __init__(self, router: Router) -> None:
        super().__init__()
        self._router = router

    def get(self, target: RouterTarget) -> Router:
        return self._router
