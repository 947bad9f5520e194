"""Per-request logic of the ext_proc processor, in plain Python types.

One RequestProcessor lives for one HTTP request (one ext_proc stream). It answers each phase with
an action; extproc/wire.py turns actions into Envoy's messages. Nothing here imports Envoy types.
It runs in every processor worker (control_plane/workers/).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol
from urllib.parse import unquote

import structlog
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from control_plane.apis.chat_request import ChatRequest
from control_plane.apis.doors import (
    COUNT,
    MODELS_PATH,
    NAMED,
    ROUTE,
    Door,
    door_for,
    error_api,
    model_body,
    models_api,
    models_body,
)
from control_plane.apis.responses import unknown_response
from control_plane.apis.table import APIS, OPENAI, Api
from control_plane.apis.json_body import replace_model, with_model
from control_plane.extproc.rate_limits import RateLimiter
from control_plane.ledger import Ledger, Refusal
from control_plane.headers import (
    CLIENT_CREDENTIAL_HEADERS,
    CLUSTER_HEADER,
    FAILOVER_CLUSTER,
    HIDE_USAGE,
    INTERNAL_PREFIX,
    PLAN_HEADER,
    POLICY_HEADER,
    REQUEST_ID_HEADER,
    RETRY_AFTER_HEADER,
    SESSION_HEADER,
    plan_value,
)
from control_plane.limits import MAX_BODY_BYTES
from control_plane.observability import tracing
from control_plane.observability.metrics import Metrics
from control_plane.apis.request_error import RequestError, body_too_large
from control_plane.policy.apps import App
from control_plane.policy.model import DEFAULT_POLICY, Model, Policy
from control_plane.policy.snapshot import Snapshot
from control_plane.routing.cache import DecisionCaches, TurnDecisions
from control_plane.routing.choice import choose_model, explicit_model
from control_plane.routing.decision import NO_ROUTE, PASSTHROUGH, REJECTED, STICKY, Decision
from control_plane.routing.response_store import ResponseStore, StoredResponse

log = structlog.get_logger("switchyard.processor")


@dataclass(frozen=True)
class Forward:
    """Let the request go on, changed as described."""

    set_headers: tuple[tuple[str, str], ...] = ()
    remove_headers: tuple[str, ...] = ()
    body: bytes | None = None  # replacement body (BUFFERED body phase only)
    want_body: bool = False  # ask Envoy for the buffered body next
    clear_route_cache: bool = False
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """Answer the app directly; nothing goes upstream."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)


Action = Forward | Reply


def _path(raw: str) -> str:
    return raw.split("?", 1)[0]


def _declared_length(headers: Mapping[str, str]) -> int:
    value = headers.get("content-length", "")
    return int(value) if value.isdigit() else 0


def _direct_headers(model: Model, client_headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """Envoy sends the request, in the provider's own API, straight to `model`'s provider, with
    the provider's key."""
    return [(CLUSTER_HEADER, model.provider.cluster), *model.provider.key_headers(client_headers)]


def _guarded_headers(policy: Policy, model: Model, route: str) -> list[tuple[str, str]]:
    """Envoy sends the request to the guarded path, which sets model and key per attempt."""
    return [(CLUSTER_HEADER, FAILOVER_CLUSTER), (PLAN_HEADER, plan_value(policy.name, model.name, route))]


def _upstream_headers(set_headers: list[tuple[str, str]], client_headers: Mapping[str, str]) -> tuple[
    tuple[tuple[str, str], ...], tuple[str, ...]
]:
    """`set_headers`, and the client headers to remove: internal ones and its credentials."""
    owned = {name for name, _ in set_headers}
    remove = [h for h in client_headers if h.startswith(INTERNAL_PREFIX) and h not in owned]
    remove += [h for h in CLIENT_CREDENTIAL_HEADERS if h in client_headers and h not in owned]
    return tuple(set_headers), tuple(remove)


class Shared:
    """What outlives one request: per-app rate limits, the router-decision caches, the responses
    a follow-up may name (written by the guarded path), and the metrics they are counted in."""

    def __init__(self, metrics: Metrics | None = None, limiter: RateLimiter | None = None,
                 decisions: DecisionCaches | None = None, ledger: Ledger | None = None) -> None:
        self.metrics = metrics or Metrics()
        self.limiter = limiter or RateLimiter()
        self.decisions = decisions or DecisionCaches(metrics=self.metrics)
        self.responses = ResponseStore()  # Responses API answers a follow-up may name
        self.ledger = ledger  # what apps spent, for their budgets (None: no budgets kept)

    def decisions_for(self, policy: Policy) -> TurnDecisions:
        return self.decisions.for_policy(policy)

    async def retry_after_s(self, app: App) -> int | None:
        return self.limiter.retry_after_s(app)

    async def stored_response(self, response_id: str) -> StoredResponse | None:
        return self.responses.get(response_id)

    async def refusal(self, app: App) -> Refusal | None:
        return await self.ledger.refusal(app.name, app.limits) if self.ledger is not None else None


class SharedState(Protocol):
    """What the processor shares across requests: `Shared` in one process, or the control
    plane's for a worker (control_plane/workers/shared_state.py: RemoteShared)."""

    metrics: Metrics

    def decisions_for(self, policy: Policy) -> TurnDecisions: ...

    async def retry_after_s(self, app: App) -> int | None: ...

    async def stored_response(self, response_id: str) -> StoredResponse | None: ...

    async def refusal(self, app: App) -> Refusal | None: ...


class RequestProcessor:
    def __init__(self, snapshot: Snapshot, shared: SharedState | None = None,
                 trace_carrier: Mapping[str, str] | None = None) -> None:
        self.snapshot = snapshot
        self.policies = snapshot.policy_set
        self.shared = shared or Shared()  # the ext_proc service passes one for all requests
        self.policy: Policy | None = None
        self.app: App | None = None
        self.headers: Mapping[str, str] = {}
        self.requested_model: str | None = None
        self.door: Door | None = None  # the front door a routed request came in by
        self.errors: Api = APIS[OPENAI]  # whose error shape this request's errors take
        self.span: trace.Span = trace.INVALID_SPAN
        self.trace_carrier = trace_carrier  # Envoy's trace context, when its tracer is on

    async def on_request_headers(self, headers: Mapping[str, str], end_of_stream: bool) -> Action:
        self.headers = headers
        if not tracing.enabled():  # the hot path pays nothing for tracing it does not do
            return await self._unforeseen(self._on_headers(headers, end_of_stream))
        # One span per request decision (a child of the caller's trace, when it sent one).
        self.span = tracing.TRACER.start_span(
            "switchyard.decision", tracing.extract(self.trace_carrier or headers))
        with trace.use_span(self.span, end_on_exit=False):
            return self._finish(await self._unforeseen(self._on_headers(headers, end_of_stream)))

    async def on_request_body(self, body: bytes) -> Action:
        if not tracing.enabled():
            return await self._unforeseen(self._on_body(body))
        with trace.use_span(self.span, end_on_exit=False):
            return self._finish(await self._unforeseen(self._on_body(body)))

    async def _unforeseen(self, phase: Awaitable[Action]) -> Action:
        """The one place an exception nobody foresaw ends: a `500 internal_error` in the door's
        shape naming the request id, and a stack trace in the log. Never a gRPC error, which
        Envoy would report as `503 processor_unavailable` (a processor that is down)."""
        try:
            return await phase
        except RequestError as error:  # one raised outside a phase's own checks (shared state)
            return self._reject(error)
        except Exception:
            request_id = self.headers.get(REQUEST_ID_HEADER)
            log.exception("internal_error", request_id=request_id)
            return self._reject(RequestError(500, f"Switchyard failed on this request (request id {request_id}); "
                                             "the error is in its log", "internal_error"))

    def _finish(self, action: Action) -> Action:
        if not (isinstance(action, Forward) and action.want_body):
            self.span.end()  # the decision is made (the body phase would come next otherwise)
        return action

    async def _on_headers(self, headers: Mapping[str, str], end_of_stream: bool) -> Action:
        name = headers.get(POLICY_HEADER) or DEFAULT_POLICY
        method, path = headers.get(":method", ""), headers.get(":path", "")
        self.errors = error_api(path)
        apps = self.policies.apps
        if apps is not None:  # before anything else: an unknown caller learns nothing
            self.app = apps.authenticate(headers)
            if self.app is None:
                return self._reject(RequestError(
                    401, "a valid Switchyard app key is required (Authorization: Bearer <key>)",
                    "invalid_api_key"))
            if not self.app.may_use_policy(name):
                return self._reject(RequestError(
                    403, f"app '{self.app.name}' may not use policy '{name}'", "policy_not_allowed",
                    POLICY_HEADER))
            wait_s = await self.shared.retry_after_s(self.app)
            if wait_s is not None:
                return self._reject(RequestError(
                    429, f"app '{self.app.name}' is over its limit of "
                    f"{self.app.requests_per_minute} requests per minute; retry in {wait_s} s",
                    "rate_limit_exceeded"), ((RETRY_AFTER_HEADER, str(wait_s)),))
            # Budgets and token limits: refused before the router or any provider is asked.
            refusal = await self.shared.refusal(self.app) if self.app.spends_limited else None
            if refusal is not None:
                return self._reject(RequestError(429, refusal.message, refusal.code),
                                    ((RETRY_AFTER_HEADER, str(refusal.retry_after_s)),))
        policy = self.policies.policies.get(name)
        if policy is None:
            known = ", ".join(self.policies.policies)
            return self._reject(RequestError(
                404, f"unknown policy '{name}' (known: {known})", "policy_not_found", POLICY_HEADER))
        self.policy = policy
        door = door_for(path)
        if door is not None and method == "POST":
            self.door = door
            if end_of_stream:
                return self._reject(RequestError(400, "request body is empty", "invalid_body"))
            if _declared_length(headers) > MAX_BODY_BYTES:  # refuse before Envoy buffers it
                return self._reject(body_too_large())
            return Forward(want_body=True)
        if method == "GET" and _path(path) == MODELS_PATH:
            return self._models_reply(policy)
        if method == "GET" and _path(path).startswith(MODELS_PATH + "/"):
            return self._model_reply(policy, unquote(_path(path)[len(MODELS_PATH) + 1:]))
        return self._forward_to(policy.default_model, Decision(
            policy.name, policy.version, NO_ROUTE, policy.default_model.name, PASSTHROUGH
        ))

    def _reject(self, error: RequestError, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
        """Switchyard answers with an error in the door's shape; the rejection is a decision
        record too (log line, metric, and Envoy's access log through dynamic metadata)."""
        policy = self.policy.name if self.policy else None
        app = self.app.name if self.app else None
        self.shared.metrics.rejections.labels(app or "", error.code).inc()
        log.info("rejected", request_id=self.headers.get(REQUEST_ID_HEADER), app=app, policy=policy,
                 status=error.status, reason=error.code, trace_id=tracing.trace_id())
        if self.span.is_recording():
            self.span.set_status(StatusCode.ERROR, error.code)
            self.span.set_attributes({"switchyard.decision": REJECTED, "error.type": error.code,
                                      "http.response.status_code": error.status,
                                      "switchyard.policy": policy or "", "switchyard.app": app or ""})
        fields = {"decision": REJECTED, "reason": error.code}
        fields |= {"policy": policy} if policy else {}
        fields |= {"app": app} if app else {}
        decision_headers = ((POLICY_HEADER, policy),) if policy else ()
        body = self.errors.error_body(error.status, error.message, error.code, error.param)
        return Reply(error.status, body,
                     (("content-type", "application/json"), *decision_headers, *headers), fields)

    async def _on_body(self, body: bytes) -> Action:
        assert self.policy is not None and self.door is not None, "body before headers"
        policy, door = self.policy, self.door
        try:
            if len(body) > MAX_BODY_BYTES:  # chunked bodies carry no content-length
                raise body_too_large()
            request = door.parse(body, policy.envelopes)
            self.requested_model = request.model
            # An alias never widens what an app may use: its allow-list applies to what it means.
            name = policy.resolve(request.model)
            if self.app is not None and not self.app.may_use_model(name):
                raise RequestError(403, f"app '{self.app.name}' may not use model '{name}'",
                                   "model_not_allowed", "model")
            deciders = {ROUTE: self._routed, COUNT: self._token_counter, NAMED: self._named}
            model, decision = await deciders[door.decides](policy, request, name)
        except RequestError as error:
            return self._reject(error)
        if name != request.model:
            decision = replace(decision, requested_model=request.model)
        if door.decides == NAMED and model.name != name:  # not a configured name: passed on as it came
            return self._forward(_direct_headers(model, self.headers), decision, model)
        # Who answered is only seen on the guarded path: a response that may be continued by id goes there.
        remembered = door.keeps_responses and request.body.get("store") is not False
        if door.decides == ROUTE and (not model.provider.serves(door.api) or model.has_fallbacks or remembered):
            # The guarded path sets `model` and translates per attempt: the body goes on untouched.
            return self._forward(_guarded_headers(policy, model, decision.route), decision, model)
        # A stream that reports usage only when asked, whose app did not ask: asked here (the one
        # change to the body but `model`), and Envoy hides it from the app (envoy/bootstrap.yaml).
        asking = model.provider.asking_usage(door.api, request.body) if door.decides == ROUTE else None
        if asking is not None:
            return self._forward(_direct_headers(model, self.headers), decision, model,
                                 with_model(asking, model.upstream_model), {HIDE_USAGE: "1"})
        return self._forward(_direct_headers(model, self.headers), decision, model,
                             replace_model(body, model.upstream_model))

    async def _routed(self, policy: Policy, request: ChatRequest, name: str) -> tuple[Model, Decision]:
        """The router alias: the router's decision for this user turn (the router is asked only
        for allowed requests); a model name: that model. A request that continues a response
        (Responses API) is read after the conversation kept for it, or pinned to the model whose
        provider keeps it."""
        messages = request.messages
        if request.continues is not None:
            stored = await self.shared.stored_response(request.continues)
            if stored is None:
                raise unknown_response(request.continues)
            pinned = policy.models.get(stored.model) if stored.native and name == policy.router_alias else None
            if pinned is not None:
                return pinned, Decision(policy.name, policy.version, stored.route, pinned.name, STICKY)
            messages = [*stored.messages, *messages]
        return await choose_model(policy, name, messages, self.snapshot.routers[policy.name],
                                  self.shared.decisions_for(policy), self.headers.get(SESSION_HEADER))

    async def _named(self, policy: Policy, request: ChatRequest, name: str) -> tuple[Model, Decision]:
        """Embeddings: a configured model, or unchanged to the default model's provider; never the
        router (it decides chats)."""
        if name == policy.router_alias:
            raise RequestError(400, f"the router alias '{name}' routes chat requests, not embeddings: "
                               "name an embedding model", "router_alias_not_supported", "model")
        if name in policy.models:
            return explicit_model(policy, name)
        model = policy.default_model
        return model, Decision(policy.name, policy.version, NO_ROUTE, model.name, PASSTHROUGH)

    async def _token_counter(self, policy: Policy, request: ChatRequest, name: str) -> tuple[Model, Decision]:
        """count_tokens goes to the model named, or for the router alias the default model (the
        router is not asked to count), and only to a provider that can count: an Anthropic one."""
        if name == policy.router_alias:
            model = policy.default_model
            decision = Decision(policy.name, policy.version, NO_ROUTE, model.name, PASSTHROUGH)
        else:
            model, decision = explicit_model(policy, name)
        if not model.provider.wire_api.counts_tokens:
            raise RequestError(400, f"count_tokens is not supported for model '{model.name}': its "
                               f"provider '{model.provider.name}' speaks the {model.provider.api} API, "
                               "which cannot count tokens", "unsupported_endpoint")
        return model, decision

    def _forward_to(self, model: Model, decision: Decision) -> Forward:
        return self._forward(_direct_headers(model, self.headers), decision, model)

    def _forward(self, headers: list[tuple[str, str]], decision: Decision, model: Model,
                 body: bytes | None = None, extra: Mapping[str, str] | None = None) -> Forward:
        if self.app is not None:
            decision = replace(decision, app=self.app.name)
        # The provider (or the guarded path) continues this trace: W3C traceparent.
        set_headers, remove = _upstream_headers(headers + list(tracing.inject().items()), self.headers)
        if body is not None:
            set_headers += (("content-length", str(len(body))),)
        self.shared.metrics.record_decision(decision.metric_labels(), decision.router_ms)
        log.info("decision", request_id=self.headers.get(REQUEST_ID_HEADER), trace_id=tracing.trace_id(),
                 **decision.log_fields())
        if self.span.is_recording():
            self.span.set_attributes({
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": self.requested_model or "",
                "gen_ai.provider.name": model.provider.name,
                "switchyard.policy": decision.policy,
                "switchyard.route": decision.route,
                "switchyard.decision": decision.kind,
                "switchyard.model": decision.model,
                "switchyard.app": decision.app,
            })
        # For the usage Envoy reads in the answer (control_plane/spend/): whose answer comes back,
        # and which request it is.
        answer_api = (self.door.api if self.door else APIS[OPENAI]).name
        request_id = self.headers.get(REQUEST_ID_HEADER, "")
        return Forward(
            set_headers=set_headers,
            remove_headers=remove,
            body=body,
            clear_route_cache=True,
            metadata=decision.metadata() | {"api": answer_api, "request_id": request_id, **(extra or {})},
        )

    def _models_reply(self, policy: Policy) -> Reply:
        return self._answer(policy, models_body(policy.model_names(), self.headers))

    def _model_reply(self, policy: Policy, name: str) -> Reply:
        """`GET /v1/models/{name}`: a name the policy answers to (an alias too), in the asking
        SDK's shape; else a 404 in that shape."""
        if policy.resolve(name) not in policy.model_names():
            self.errors = models_api(self.headers)
            return self._reject(RequestError(404, f"The model `{name}` does not exist in policy '{policy.name}'. "
                                             f"Known models: {', '.join(policy.model_names())}", "model_not_found",
                                             "model"))
        return self._answer(policy, model_body(name, self.headers))

    def _answer(self, policy: Policy, body: bytes) -> Reply:
        headers = (("content-type", "application/json"), (POLICY_HEADER, policy.name))
        fields = {"policy": policy.name, "decision": PASSTHROUGH}
        return Reply(200, body, headers, fields | ({"app": self.app.name} if self.app else {}))
