"""Envoy's configuration, rendered from envoy/bootstrap.yaml and the loaded policies.

The template holds everything static (listener, filters, processor cluster); this module adds one
cluster and one route per provider. Envoy routes on the `x-switchyard-cluster` header that only
the processor sets, and rewrites host and path prefix to the provider's base URL.
"""

from __future__ import annotations

import ipaddress
import ssl
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from control_plane.openai_errors import error_body
from control_plane.policy import PolicySet, Provider

TEMPLATE = Path(__file__).resolve().parent.parent / "envoy" / "bootstrap.yaml"
CLUSTER_HEADER = "x-switchyard-cluster"
SYSTEM_CA_FALLBACK = "/etc/ssl/certs/ca-certificates.crt"
# Envoy waits this much longer than the slowest router timeout before failing the request.
MESSAGE_TIMEOUT_MARGIN_MS = 1000


@dataclass(frozen=True)
class EnvoyPorts:
    listen_address: str = "127.0.0.1"
    listen_port: int = 10000
    admin_port: int = 9901
    processor_address: str = "127.0.0.1"
    processor_port: int = 50051


def _system_ca() -> str:
    return ssl.get_default_verify_paths().cafile or SYSTEM_CA_FALLBACK


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def provider_cluster(provider: Provider) -> dict[str, Any]:
    endpoint = {"address": {"socket_address": {"address": provider.host, "port_value": provider.port}}}
    cluster: dict[str, Any] = {
        "name": provider.cluster,
        "type": "STATIC" if _is_ip(provider.host) else "LOGICAL_DNS",
        "dns_lookup_family": "V4_PREFERRED",
        "connect_timeout": "5s",
        "load_assignment": {
            "cluster_name": provider.cluster,
            "endpoints": [{"lb_endpoints": [{"endpoint": endpoint}]}],
        },
    }
    if provider.tls:
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": provider.host,
                "common_tls_context": {
                    "validation_context": {
                        "trusted_ca": {"filename": provider.ca_file or _system_ca()},
                        "match_typed_subject_alt_names": [
                            {"san_type": "DNS", "matcher": {"exact": provider.host}}
                        ],
                    }
                },
            },
        }
    return cluster


def _authority(provider: Provider) -> str:
    default_port = 443 if provider.tls else 80
    return provider.host if provider.port == default_port else f"{provider.host}:{provider.port}"


def provider_route(provider: Provider) -> dict[str, Any]:
    header = {"name": CLUSTER_HEADER, "string_match": {"exact": provider.cluster}}
    return {
        "name": provider.cluster,
        "match": {"prefix": "/v1/", "headers": [header]},
        "route": {
            "cluster": provider.cluster,
            "prefix_rewrite": provider.path_prefix + "/",
            "host_rewrite_literal": _authority(provider),
            "timeout": f"{provider.request_timeout_s}s",
        },
        # The internal header never leaves Switchyard.
        "request_headers_to_remove": [CLUSTER_HEADER],
    }


def _unknown_path_route() -> dict[str, Any]:
    body = error_body(404, "unknown path: Switchyard serves the OpenAI API under /v1/", "unknown_path")
    return {
        "name": "unknown_path",
        "match": {"prefix": "/"},
        "direct_response": {"status": 404, "body": {"inline_string": body.decode()}},
        "response_headers_to_add": [
            {"header": {"key": "content-type", "value": "application/json"}}
        ],
    }


def render_bootstrap(policies: PolicySet, ports: EnvoyPorts) -> dict[str, Any]:
    timeout_ms = policies.max_router_timeout_ms + MESSAGE_TIMEOUT_MARGIN_MS
    text = string.Template(TEMPLATE.read_text()).substitute(
        listen_address=ports.listen_address,
        listen_port=ports.listen_port,
        admin_port=ports.admin_port,
        processor_address=ports.processor_address,
        processor_port=ports.processor_port,
        message_timeout=f"{timeout_ms / 1000:.3f}s",
    )
    config: dict[str, Any] = yaml.safe_load(text)
    static = config["static_resources"]
    providers = policies.providers()
    static["clusters"] += [provider_cluster(p) for p in providers]
    hcm = static["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    virtual_host = hcm["route_config"]["virtual_hosts"][0]
    virtual_host["routes"] = [provider_route(p) for p in providers] + [_unknown_path_route()]
    return config


def write_bootstrap(policies: PolicySet, ports: EnvoyPorts, path: Path) -> Path:
    path.write_text(yaml.safe_dump(render_bootstrap(policies, ports), sort_keys=False))
    return path
