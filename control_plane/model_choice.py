"""Which configured model serves a chat request, and the decision record saying why."""

from __future__ import annotations

import structlog

from control_plane.chat_request import ChatRequest
from control_plane.decision import EXPLICIT, NO_ROUTE, ROUTED, Decision, fallback
from control_plane.openai_errors import RequestError
from control_plane.policy import Model, Policy
from router_model.conversation import select_conversation
from router_model.router import Router, RouterQuery

log = structlog.get_logger("switchyard.routing")


def _decision(policy: Policy, route: str, model: Model, kind: str, ms: float | None) -> Decision:
    return Decision(policy.name, policy.version, route, model.name, kind, ms)


async def choose_model(policy: Policy, request: ChatRequest, router: Router) -> tuple[Model, Decision]:
    """Explicit model -> that model; the router alias -> ask the router; else a 404."""
    if request.model != policy.router_alias:
        model = policy.models.get(request.model)
        if model is None:
            known = ", ".join(policy.model_names())
            raise RequestError(
                404,
                f"The model `{request.model}` does not exist in policy '{policy.name}'. "
                f"Known models: {known}",
                "model_not_found",
                "model",
            )
        return model, _decision(policy, NO_ROUTE, model, EXPLICIT, None)
    default = policy.default_model
    if not policy.routes:
        return default, _decision(policy, NO_ROUTE, default, fallback("no_routes"), None)
    conversation = select_conversation(request.messages)
    if not conversation:
        return default, _decision(policy, NO_ROUTE, default, fallback("no_user_text"), None)
    query = RouterQuery(policy.routes_text, list(policy.routes_by_name), conversation)
    try:
        outcome = await router.decide(query)
    except Exception:  # a failing router never fails a request the default model can serve
        log.exception("router_crashed", policy=policy.name)
        return default, _decision(policy, NO_ROUTE, default, fallback("router_error"), None)
    if outcome.route is not None:
        model = policy.routes_by_name[outcome.route].model
        return model, _decision(policy, outcome.route, model, ROUTED, outcome.elapsed_ms)
    kind = fallback(outcome.reason) if outcome.failed else ROUTED
    return default, _decision(policy, NO_ROUTE, default, kind, outcome.elapsed_ms)
