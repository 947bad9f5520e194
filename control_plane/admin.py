"""The control plane's admin HTTP endpoints: /healthz, /readyz, /metrics, /policies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from aiohttp import web

from control_plane.failover.circuits import Circuits
from control_plane.observability.metrics import Metrics
from control_plane.reloader import ReloadStatus
from control_plane.policy.snapshot import SnapshotStore

ReadyCheck = Callable[[], Awaitable[bool]]


def admin_app(
    snapshots: SnapshotStore, ready: ReadyCheck, reload_status: Callable[[], ReloadStatus],
    circuits: Circuits, metrics: Metrics, workers: Callable[[], list[dict[str, Any]]] = list,
    usage: Callable[[], Awaitable[dict[str, Any]]] | None = None,
) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        ok = await ready()
        return web.json_response({"ready": ok}, status=200 if ok else 503)

    async def metrics_page(_: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(), content_type="text/plain", charset="utf-8")

    async def policies(_: web.Request) -> web.Response:
        current = snapshots.current
        status = reload_status()
        return web.json_response({
            "generation": snapshots.generation,
            "last_reload_ok": status.ok,
            "last_reload_at": status.at,
            "last_reload_error": None if status.ok else list(status.errors),
            "policies": {
                name: {
                    "version": p.version,
                    "source": p.source,
                    "router": {"kind": p.router.kind, "endpoint": p.router.endpoint,
                               "model": p.router.model, "timeout_ms": p.router.timeout_ms,
                               "one_step": p.router.one_step,
                               "stickiness": p.decisions.stickiness,
                               "cache": {"max_entries": p.decisions.max_entries,
                                         "ttl_s": p.decisions.ttl_s}},
                    "routes": {r.name: r.model.name for r in p.routes},
                    "providers": {pr.name: {"api": pr.api, "base_url": pr.base_url, "cluster": pr.cluster,
                                            "anthropic_version": pr.anthropic_version}
                                  for pr in p.providers.values()},
                    "models": {m.name: {"provider": m.provider.name, "cluster": m.provider.cluster,
                                        "upstream_model": m.upstream_model,
                                        "fallbacks": list(m.fallbacks), "chain": list(m.chain),
                                        "context_window_fallbacks": list(m.context_window_fallbacks),
                                        "failover": asdict(m.failover),
                                        "assistant_prefix": m.assistant_prefix,
                                        "circuit": circuits.describe(m)}
                               for m in p.models.values()},
                    "default_model": p.default_model.name,
                }
                for name, p in current.policy_set.policies.items()
            },
            # Apps by name and what each may use; never a key or a key's digest.
            "apps": None if current.policy_set.apps is None else {
                app.name: {"policies": None if app.policies is None else sorted(app.policies),
                           "models": None if app.models is None else sorted(app.models),
                           "requests_per_minute": app.requests_per_minute,
                           "budget": {"usd_per_day": app.limits.usd_per_day,
                                      "usd_per_month": app.limits.usd_per_month},
                           "tokens_per_minute": app.limits.tokens_per_minute}
                for app in current.policy_set.apps.by_digest.values()
            },
        })

    async def usage_page(_: web.Request) -> web.Response:
        """Per app and per model: today's and this month's tokens and cost (the ledger's)."""
        return web.json_response(await usage() if usage is not None else {"apps": {}})

    app = web.Application()
    app.router.add_get("/usage", usage_page)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_page)

    async def workers_page(_: web.Request) -> web.Response:
        return web.json_response({"generation": snapshots.generation, "workers": workers()})

    app.router.add_get("/workers", workers_page)
    app.router.add_get("/policies", policies)
    return app
