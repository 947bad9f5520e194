"""Envoy config: the static bootstrap and the per-provider xDS resources, checked by real Envoy."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from control_plane.apis.doors import DOORS
from control_plane.headers import CLUSTER_HEADER
from control_plane.policy.loader import load_policy_set
from control_plane.xds.cache import CLUSTER_TYPE, ROUTE_TYPE
from control_plane.xds.envoy_config import (
    ENVOY_LOG_FORMAT,
    EXT_PROC_FILTER,
    EnvoyPorts,
    envoy_binary,
    ext_proc_filter,
    http_manager,
    provider_cluster,
    render_bootstrap,
    route_configuration,
    write_bootstrap,
    xds_resources,
)

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def envoy_validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(path)], capture_output=True, text=True, timeout=60)


def ext_proc() -> dict[str, Any]:
    """The ext_proc filter's config in the rendered bootstrap."""
    config: dict[str, Any] = ext_proc_filter(render_bootstrap(EnvoyPorts()))["typed_config"]
    return config


def test_real_envoy_accepts_the_bootstrap(tmp_path: Path) -> None:
    result = envoy_validate(write_bootstrap(EnvoyPorts(), tmp_path / "envoy.yaml"))
    assert result.returncode == 0, result.stderr[-2000:]


def test_envoys_own_log_lines_are_json(tmp_path: Path) -> None:
    """`up` runs Envoy with ENVOY_LOG_FORMAT; every line it writes (info level here, for lines to
    read; messages with quotes included) must parse."""
    path = write_bootstrap(EnvoyPorts(), tmp_path / "envoy.yaml")
    result = subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(path), "--log-level", "info",
                             "--log-format", ENVOY_LOG_FORMAT], capture_output=True, text=True, timeout=60)
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) > 3 and all(line["logger"].startswith("envoy.") and line["event"] for line in lines)


def test_real_envoy_accepts_the_xds_resources(tmp_path: Path) -> None:
    """The dynamic resources, inlined into a static copy of the bootstrap, validate too."""
    providers = load_policy_set(POLICIES).providers()
    config = copy.deepcopy(render_bootstrap(EnvoyPorts()))
    config.pop("dynamic_resources")
    config["static_resources"]["clusters"] = [
        c for c in config["static_resources"]["clusters"] if c["name"] != "switchyard_control"
    ] + [provider_cluster(p) for p in providers]
    manager = http_manager(config)
    manager.pop("rds")
    manager["route_config"] = route_configuration(providers)
    path = tmp_path / "static.yaml"
    path.write_text(yaml.safe_dump(config))
    result = envoy_validate(path)
    assert result.returncode == 0, result.stderr[-2000:]


def test_https_provider_gets_tls_sni_host_and_prefix_rewrite() -> None:
    providers = load_policy_set(POLICIES).providers()
    groq = next(p for p in providers if p.name == "groq")
    cluster = provider_cluster(groq)
    assert cluster["transport_socket"]["typed_config"]["sni"] == "api.groq.com"
    assert cluster["type"] == "LOGICAL_DNS"
    routes = {r["name"]: r for r in route_configuration(providers)["virtual_hosts"][0]["routes"]}
    route = routes[groq.cluster]
    assert route["match"]["headers"] == [{"name": CLUSTER_HEADER, "string_match": {"exact": groq.cluster}}]
    assert route["route"]["prefix_rewrite"] == "/openai/v1/"
    assert route["route"]["host_rewrite_literal"] == "api.groq.com"
    assert route["route"]["timeout"] == "600s"  # LLM calls are long
    local = provider_cluster(next(p for p in providers if p.name == "local"))
    assert "transport_socket" not in local and local["type"] == "STATIC"


def test_xds_resources_are_envoy_messages_for_every_provider() -> None:
    providers = load_policy_set(POLICIES).providers()
    resources = xds_resources(providers)
    assert [c.name for c in resources[CLUSTER_TYPE]] == [p.cluster for p in providers]
    [routes] = resources[ROUTE_TYPE]
    # + the guarded path, one route per door (its body read from the start), the unknown path
    assert routes.name == "providers" and len(routes.virtual_hosts[0].routes) == len(providers) + 2 + len(DOORS)


def test_door_paths_have_their_body_buffered_from_the_start() -> None:
    """The doors' routes differ from bootstrap.yaml's processing mode in the request body alone
    (BUFFERED, not NONE); each door has one, matched before the unknown path."""
    static = ext_proc()["processing_mode"]
    routes = route_configuration([])["virtual_hosts"][0]["routes"]
    doors = [r for r in routes if r["name"].startswith("door:")]
    assert static["request_body_mode"] == "NONE"
    assert [r["match"] for r in doors] == [{"path": path} for path in DOORS]
    for route in doors:
        mode = route["typed_per_filter_config"][EXT_PROC_FILTER]["overrides"]["processing_mode"]
        assert mode == {**static, "request_body_mode": "BUFFERED"}
    assert routes[-1]["name"] == "unknown_path" and routes.index(doors[-1]) < len(routes) - 1


def test_ext_proc_is_fail_closed_and_never_buffers_responses() -> None:
    config = ext_proc()
    assert config["failure_mode_allow"] is False
    assert config["message_timeout"] == "11s"  # above the 10 s cap on router.timeout_ms
    assert config["processing_mode"]["response_body_mode"] == "NONE"
    assert config["processing_mode"]["response_header_mode"] == "SKIP"


def test_edge_settings() -> None:
    config = render_bootstrap(EnvoyPorts(stream_idle_timeout_s=42))
    manager = http_manager(config)
    assert manager["use_remote_address"] is True
    assert manager["always_set_request_id_in_response"] is True
    assert manager["stream_idle_timeout"] == "42s"  # `up --stream-idle-timeout`
    assert manager["common_http_protocol_options"]["headers_with_underscores_action"] == "REJECT_REQUEST"
    assert manager["http2_protocol_options"]["max_concurrent_streams"] == 100
    router = next(f for f in manager["http_filters"] if f["name"] == "envoy.filters.http.router")
    assert router["typed_config"]["suppress_envoy_headers"] is True
    # One entry per request to the control plane, which writes the request's log line itself.
    assert [log["name"] for log in manager["access_log"]] == ["envoy.access_loggers.http_grpc"]
    # Usage is read in Envoy (no other process on the answer's way); the guarded path reads its own.
    assert "switchyard.usage" in [f["name"] for f in manager["http_filters"]]
    assert [f["name"] for f in manager["http_filters"] if "ext_proc" in json.dumps(f)] == ["envoy.filters.http.ext_proc"]
    assert "tracing" not in manager  # off unless OTEL_EXPORTER_OTLP_ENDPOINT is set


def test_tracing_adds_envoys_tracer_and_collector(monkeypatch: Any, tmp_path: Path) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.local:4318/")
    config = render_bootstrap(EnvoyPorts())
    tracer = http_manager(config)["tracing"]["provider"]["typed_config"]
    assert tracer["http_service"]["http_uri"]["uri"] == "http://collector.local:4318/v1/traces"
    [cluster] = [c for c in config["static_resources"]["clusters"] if c["name"] == tracer["http_service"]["http_uri"]["cluster"]]
    assert cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"] == \
        {"address": "collector.local", "port_value": 4318}
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(config))
    assert envoy_validate(path).returncode == 0
