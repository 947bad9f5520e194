"""Per-request logic of the ext_proc processor, in plain Python types.

One RequestProcessor lives for one HTTP request (one ext_proc stream). It answers each phase with
an action; extproc_messages turns actions into Envoy messages. Nothing here imports Envoy types.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import structlog

from control_plane import metrics
from control_plane.chat_request import parse_chat_request, with_model
from control_plane.decision import NO_ROUTE, PASSTHROUGH, Decision
from control_plane.headers import (
    CLIENT_CREDENTIAL_HEADERS,
    CLUSTER_HEADER,
    FAILOVER_CLUSTER,
    PLAN_HEADER,
    POLICY_HEADER,
    plan_value,
)
from control_plane.limits import MAX_BODY_BYTES, body_too_large
from control_plane.model_choice import choose_model
from control_plane.openai_errors import RequestError
from control_plane.policy import DEFAULT_POLICY, Model, Policy
from control_plane.snapshot import Snapshot

log = structlog.get_logger("switchyard.processor")

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"


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


Action = Forward | Reply


def _path(raw: str) -> str:
    return raw.split("?", 1)[0]


def _declared_length(headers: Mapping[str, str]) -> int:
    value = headers.get("content-length", "")
    return int(value) if value.isdigit() else 0


def _direct_headers(model: Model) -> list[tuple[str, str]]:
    """Envoy sends the request straight to `model`'s provider, with the provider's key."""
    provider = model.provider
    set_headers = [(CLUSTER_HEADER, provider.cluster)]
    key = os.environ.get(provider.api_key_env) if provider.api_key_env else None
    if key:
        set_headers.append(("authorization", f"Bearer {key}"))
    return set_headers


def _guarded_headers(policy: Policy, model: Model) -> list[tuple[str, str]]:
    """Envoy sends the request to the guarded path, which sets model and key per attempt."""
    return [(CLUSTER_HEADER, FAILOVER_CLUSTER), (PLAN_HEADER, plan_value(policy.name, model.name))]


def _upstream_headers(set_headers: list[tuple[str, str]], client_headers: Mapping[str, str]) -> tuple[
    tuple[tuple[str, str], ...], tuple[str, ...]
]:
    """`set_headers`, and the client headers to remove: internal ones and its credentials."""
    owned = {name for name, _ in set_headers}
    remove = [h for h in client_headers if h.startswith("x-switchyard-") and h not in owned]
    remove += [h for h in CLIENT_CREDENTIAL_HEADERS if h in client_headers and h not in owned]
    return tuple(set_headers), tuple(remove)


def _reply(error: RequestError, decision_headers: list[tuple[str, str]]) -> Reply:
    headers = (("content-type", "application/json"), *decision_headers)
    return Reply(error.status, error.body(), headers)


class RequestProcessor:
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.policies = snapshot.policy_set
        self.policy: Policy | None = None
        self.headers: Mapping[str, str] = {}

    def on_request_headers(self, headers: Mapping[str, str], end_of_stream: bool) -> Action:
        self.headers = headers
        name = headers.get(POLICY_HEADER) or DEFAULT_POLICY
        policy = self.policies.policies.get(name)
        if policy is None:
            known = ", ".join(self.policies.policies)
            error = RequestError(
                404, f"unknown policy '{name}' (known: {known})", "policy_not_found", POLICY_HEADER
            )
            return _reply(error, [])
        self.policy = policy
        method, path = headers.get(":method", ""), _path(headers.get(":path", ""))
        if path == CHAT_PATH and method == "POST":
            if end_of_stream:
                return _reply(RequestError(400, "request body is empty", "invalid_body"), [])
            if _declared_length(headers) > MAX_BODY_BYTES:  # refuse before Envoy buffers it
                return _reply(body_too_large(), [(POLICY_HEADER, policy.name)])
            return Forward(want_body=True)
        if path == MODELS_PATH and method == "GET":
            return self._models_reply(policy)
        return self._forward_to(policy.default_model, Decision(
            policy.name, policy.version, NO_ROUTE, policy.default_model.name, PASSTHROUGH
        ))

    async def on_request_body(self, body: bytes) -> Action:
        assert self.policy is not None, "body before headers"
        policy = self.policy
        try:
            if len(body) > MAX_BODY_BYTES:  # chunked bodies carry no content-length
                raise body_too_large()
            request = parse_chat_request(body)
            model, decision = await choose_model(
                policy, request.model, request.messages, self.snapshot.routers[policy.name]
            )
        except RequestError as error:
            return _reply(error, [(POLICY_HEADER, policy.name)])
        if model.has_fallbacks:
            # The guarded path rewrites `model` per attempt: the body goes on untouched.
            return self._forward(_guarded_headers(policy, model), decision)
        body = with_model(request, model.upstream_model)
        return self._forward(_direct_headers(model), decision, body)

    def _forward_to(self, model: Model, decision: Decision) -> Forward:
        return self._forward(_direct_headers(model), decision)

    def _forward(self, headers: list[tuple[str, str]], decision: Decision,
                 body: bytes | None = None) -> Forward:
        set_headers, remove = _upstream_headers(headers, self.headers)
        if body is not None:
            set_headers += (("content-length", str(len(body))),)
        metrics.record(decision)
        log.info("decision", request_id=self.headers.get("x-request-id"), **decision.log_fields())
        return Forward(
            set_headers=set_headers,
            remove_headers=remove,
            body=body,
            clear_route_cache=True,
            metadata=decision.metadata(),
        )

    def _models_reply(self, policy: Policy) -> Reply:
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "switchyard"}
            for name in policy.model_names()
        ]
        body = json.dumps({"object": "list", "data": data}).encode()
        return Reply(200, body, (("content-type", "application/json"), (POLICY_HEADER, policy.name)))
