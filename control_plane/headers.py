"""Switchyard's HTTP header names (the contract in README.md), in one place."""

from __future__ import annotations

from urllib.parse import quote, unquote

CLUSTER_HEADER = "x-switchyard-cluster"  # internal: set only by the processor, routes in Envoy
# Its value for the guarded path (control_plane/failover/runner.py; a static cluster in the bootstrap).
FAILOVER_CLUSTER = "switchyard_failover"
# Client credentials never reach a provider: Switchyard injects the provider's own key.
CLIENT_CREDENTIAL_HEADERS = ("authorization", "x-api-key", "api-key")
POLICY_HEADER = "x-switchyard-policy"  # request: which policy; response: which policy applied
MODEL_HEADER = "x-switchyard-model"  # response: the configured model that answered
ATTEMPTS_HEADER = "x-switchyard-attempts"  # response (guarded path): model:result,... in order
# Internal, processor -> guarded path: "<policy> <model> <route>" (URL-quoted) the request is for.
PLAN_HEADER = "x-switchyard-plan"
# Response (guarded path): hints a translation dropped, comma-separated (apis/translation.py).
DROPPED_HEADER = "x-switchyard-dropped"

# Request headers Switchyard reads that others define.
REQUEST_ID_HEADER = "x-request-id"  # Envoy's request id: in every log line, passed to providers
ANTHROPIC_VERSION_HEADER = "anthropic-version"  # the Anthropic API's version (its SDKs always send it)
# request: never sent to a provider on either path (answers are read as text on their way)
ACCEPT_ENCODING = "accept-encoding"
RETRY_AFTER_HEADER = "retry-after"  # seconds to wait (a 429 of Switchyard's, or a provider's)
SESSION_HEADER = "x-switchyard-session"  # request: names the conversation (README: "Decisions for agents")

# Every request header the processor reads; Envoy sends it no others (fewer to serialize and
# parse on every request). Names starting with INTERNAL_PREFIX are sent too.
INTERNAL_PREFIX = "x-switchyard-"
PROCESSOR_READS = (":method", ":path", "content-length", *CLIENT_CREDENTIAL_HEADERS, REQUEST_ID_HEADER,
                   "traceparent", "tracestate", ANTHROPIC_VERSION_HEADER)

# Envoy dynamic-metadata namespace the processor writes the decision into.
METADATA_NAMESPACE = "switchyard"
# Its key that tells Envoy to hide from the app the usage Switchyard asked a stream for.
HIDE_USAGE = "hide_usage"
# Its key where Envoy puts the usage objects it read in an answer on the direct path (a JSON list).
ANSWER_USAGE = "usage"

# Response headers carrying the decision record -> the Envoy dynamic-metadata key of each.
DECISION_HEADERS = {
    POLICY_HEADER: "policy",
    "x-switchyard-route": "route",
    MODEL_HEADER: "model",
    "x-switchyard-decision": "decision",
    "x-switchyard-router-ms": "router_ms",
    "x-switchyard-requested-model": "requested_model",  # only when a policy alias applied
}


def plan_value(policy: str, model: str, route: str) -> str:
    """PLAN_HEADER's value."""
    return " ".join(quote(part, safe="") for part in (policy, model, route))


def parse_plan(value: str) -> tuple[str, str, str]:
    policy, model, route = (value.split(" ") + ["", "", ""])[:3]
    return unquote(policy), unquote(model), unquote(route)
