"""The benchmarks' upstream: an Envoy answering every chat completion itself (C++, nothing
recorded), so that it is not what saturates at concurrency 32 as a Python fake provider would;
and how the benchmarks start an Envoy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from control_plane.xds.envoy_config import ENVOY_LOG_FORMAT, envoy_binary
from harness.processes import Process, free_port

MODEL = "alpha-chat"
COMPLETION = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": MODEL,
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "hello from upstream"}}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
})


def upstream_config(port: int, admin_port: int) -> dict[str, Any]:
    """Envoy answering every request itself with the fixed completion."""
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "upstream",
        "route_config": {"virtual_hosts": [{
            "name": "upstream", "domains": ["*"],
            "routes": [{"match": {"prefix": "/"},
                        "direct_response": {"status": 200, "body": {"inline_string": COMPLETION}},
                        "response_headers_to_add": [{
                            "header": {"key": "content-type", "value": "application/json"},
                            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]}],
        }]},
        "http_filters": [
            # Read the whole request before answering: a direct response sent while the body is
            # still unread makes Envoy close the connection, and every request would reconnect.
            {"name": "envoy.filters.http.buffer", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
                "max_request_bytes": 1 << 20}},
            {"name": "envoy.filters.http.router", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
        ],
    }
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {"listeners": [{
            "name": "upstream",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                            "typed_config": hcm}]}],
        }]},
    }


def start_envoy(name: str, config: dict[str, Any], admin_port: int, work: Path, *flags: str) -> Process:
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    # The flags `switchyard up` gives its own Envoy (control_plane/sidecar.py), so bare Envoy
    # differs from Switchyard's only in the filters.
    process = Process(name, [envoy_binary(), "-c", str(path), "--log-level", "warn", "--log-format", ENVOY_LOG_FORMAT,
                             "--disable-hot-restart", "--use-dynamic-base-id", *flags], work / "logs")
    process.wait_http(f"http://127.0.0.1:{admin_port}/ready", 60)
    return process


def start_upstream(work: Path) -> tuple[Process, str]:
    """The upstream on one worker thread, and its URL (scheme://host:port)."""
    port, admin = free_port(), free_port()
    process = start_envoy("upstream", upstream_config(port, admin), admin, work, "--concurrency", "1")
    return process, f"http://127.0.0.1:{port}"
