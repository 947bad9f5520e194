"""Which configured model serves a chat request, and the decision record saying why.

The ONE decision path: the processor, `switchyard route` and `switchyard eval` all call it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import structlog
from opentelemetry.trace import SpanKind, StatusCode

from control_plane.observability import tracing
from control_plane.apis.request_error import RequestError
from control_plane.policy.model import CONVERSATION, Model, Policy
from control_plane.routing.cache import CachedDecision, TurnDecisions
from control_plane.routing.conversations import identify
from control_plane.routing.decision import (
    CACHED,
    EXPLICIT,
    NO_ROUTE,
    STICKY,
    Decision,
    degraded,
    fallback,
    routed,
)
from router_model.conversation import select_conversation
from router_model.prompt import Message
from router_model.router import Router, RouterOutcome, RouterQuery

log = structlog.get_logger("switchyard.routing")


def _decision(policy: Policy, route: str, model: Model, kind: str, ms: float | None) -> Decision:
    return Decision(policy.name, policy.version, route, model.name, kind, ms)


def _from_outcome(policy: Policy, outcome: RouterOutcome) -> tuple[Model, Decision]:
    if outcome.degraded is not None:
        kind = degraded(outcome.degraded)
    elif outcome.failed:
        kind = fallback(outcome.reason)
    else:
        kind = routed(outcome.tier)
    route = NO_ROUTE if outcome.route is None else outcome.route
    model = policy.default_model if outcome.route is None else policy.routes_by_name[outcome.route].model
    decision = _decision(policy, route, model, kind, outcome.elapsed_ms)
    return model, replace(decision, score=outcome.score, runner_up=outcome.runner_up,
                          runner_up_score=outcome.runner_up_score)


def explicit_model(policy: Policy, model_name: str) -> tuple[Model, Decision]:
    """A configured model the app named (the router is not asked), or a 404 naming the known ones."""
    model = policy.models.get(model_name)
    if model is None:
        known = ", ".join(policy.model_names())
        raise RequestError(
            404,
            f"The model `{model_name}` does not exist in policy '{policy.name}'. Known models: {known}",
            "model_not_found",
            "model",
        )
    return model, _decision(policy, NO_ROUTE, model, EXPLICIT, None)


async def choose_model(
    policy: Policy, model_name: str, messages: list[Any], router: Router,
    cache: TurnDecisions | None = None, session: str | None = None,
) -> tuple[Model, Decision]:
    """Explicit model -> that model; the router alias -> the router's decision for this user turn
    (from `cache` when it was made before); else a 404."""
    if model_name != policy.router_alias:
        return explicit_model(policy, model_name)
    default = policy.default_model
    if not policy.routes:
        return default, _decision(policy, NO_ROUTE, default, fallback("no_routes"), None)
    conversation = select_conversation(messages)
    if not conversation:
        return default, _decision(policy, NO_ROUTE, default, fallback("no_user_text"), None)
    turn = identify(messages, session) if cache is not None else None
    if cache is None or turn is None:
        return await _ask_router(policy, router, conversation)
    key = turn.conversation if policy.decisions.stickiness == CONVERSATION else turn.turn
    fresh: tuple[Model, Decision] | None = None

    async def decide() -> CachedDecision | None:
        nonlocal fresh
        fresh = await _ask_router(policy, router, conversation)
        model, decision = fresh
        # Only what the router decided is kept: a fallback after a failure is asked again.
        if not decision.kind.startswith("routed:"):
            return None
        return CachedDecision(decision.route, model.name, turn.turn)

    kept, shared = await cache.once(key, decide)
    if not shared and fresh is not None:
        return fresh
    if kept is None:  # a concurrent twin's router call failed: that fallback, again
        return await _ask_router(policy, router, conversation)
    # The same user turn asked again (a retry, a concurrent twin) is `cached`; a tool loop going
    # on, or a later turn under `stickiness: conversation`, is `sticky`.
    same_turn = kept.turn == turn.turn and not turn.continues
    model = policy.models[kept.model]
    return model, _decision(policy, kept.route, model, CACHED if same_turn else STICKY, None)


async def _ask_router(
    policy: Policy, router: Router, conversation: list[Message]
) -> tuple[Model, Decision]:
    default = policy.default_model
    # The router call, as a child span of the request's decision (Arch-Router gets its traceparent).
    with tracing.TRACER.start_as_current_span("switchyard.router", kind=SpanKind.CLIENT) as span:
        try:
            outcome = await router.decide(RouterQuery(policy.route_specs, conversation))
        except Exception:  # a failing router never fails a request the default model can serve
            log.exception("router_crashed", policy=policy.name)
            span.set_status(StatusCode.ERROR, "router_error")
            return default, _decision(policy, NO_ROUTE, default, fallback("router_error"), None)
        if span.is_recording():
            span.set_attributes({"switchyard.router.tier": outcome.tier,
                                 "switchyard.route": outcome.route or NO_ROUTE,
                                 "switchyard.router.reason": outcome.reason})
            if outcome.failed:
                span.set_status(StatusCode.ERROR, outcome.reason)
    return _from_outcome(policy, outcome)
