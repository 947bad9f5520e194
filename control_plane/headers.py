"""Switchyard's HTTP header names (the contract in README.md), in one place."""

from __future__ import annotations

CLUSTER_HEADER = "x-switchyard-cluster"  # internal: set only by the processor, routes in Envoy
POLICY_HEADER = "x-switchyard-policy"  # request: which policy; response: which policy applied

# Envoy dynamic-metadata namespace the processor writes the decision into.
METADATA_NAMESPACE = "switchyard"

# Response headers carrying the decision record -> the Envoy dynamic-metadata key of each.
DECISION_HEADERS = {
    POLICY_HEADER: "policy",
    "x-switchyard-route": "route",
    "x-switchyard-model": "model",
    "x-switchyard-decision": "decision",
    "x-switchyard-router-ms": "router_ms",
}
