"""Switchyard and its stand-in providers as real processes, started and waited for with a
deadline: `switchyard up` (Envoy, processor workers, control plane), or Envoy and `switchyard up
--no-envoy` apart (as in docker-compose), and fake providers (harness/fake_provider/)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from control_plane.xds.envoy_config import ENVOY_LOG_FORMAT, envoy_binary
from harness.processes import ROOT, Process, free_port, http_json, python_module, wait_until

# The stand-in providers' keys, as the sidecars started here get them (policies name these
# variables); tests check that they never leak.
ALPHA_KEY = "sk-alpha-SECRET-0123456789"
BETA_KEY = "sk-beta-SECRET-9876543210"
PROVIDER_KEYS = {"ALPHA_KEY": ALPHA_KEY, "BETA_KEY": BETA_KEY}


@dataclass
class Provider:
    """A running fake provider (harness/fake_provider/) and its test-only endpoints."""

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


def reachable(provider: Provider) -> bool:
    try:
        provider.requests()
    except OSError:
        return False
    return True


def start_provider(name: str, logs: Path, *options: str) -> Provider:
    """A plain-HTTP fake provider on a free port; `options` such as "--models", "a,b", "--key", "K"."""
    port = free_port()
    process = Process(name, python_module("harness.fake_provider", "--name", name, "--port", str(port),
                                          *options), logs)
    process.wait_http(f"http://127.0.0.1:{port}/_test/requests", 30)
    return Provider(name, process, f"http://127.0.0.1:{port}")


@dataclass
class Sidecar:
    process: Process
    base_url: str
    admin_url: str
    envoy_admin_url: str


def state_flags(folder: Path, checkout: Path | None = None) -> tuple[str, ...]:
    """`--state-dir folder`, where the checkout's `switchyard up` has it (commits before the
    ledger do not): two sidecars on one machine must not share the default state dir."""
    cli = (checkout or ROOT) / "control_plane" / "cli.py"
    return ("--state-dir", str(folder)) if "--state-dir" in cli.read_text() else ()


def start_sidecar(name: str, policies: Path, logs: Path, *extra: str, env: dict[str, str] | None = None,
                  checkout: Path | None = None) -> Sidecar:
    """`switchyard up` on free ports, ready. `checkout`: another checkout of Switchyard (an earlier
    commit, for a benchmark's baseline) runs instead, with the flags it knows."""
    listen, admin, processor, envoy_admin, failover, control = (free_port() for _ in range(6))
    # Each sidecar keeps its ledger in a folder of its own (one sidecar per state dir), kept
    # across its restarts.
    state = () if "--state-dir" in extra else state_flags(logs / f"{name}-state", checkout)
    argv = python_module("control_plane.cli", "up", "--policies", str(policies),
                         "--listen", f"127.0.0.1:{listen}", "--admin", f"127.0.0.1:{admin}",
                         "--processor", f"127.0.0.1:{processor}", "--envoy-admin", f"127.0.0.1:{envoy_admin}",
                         "--failover", f"127.0.0.1:{failover}", "--control", f"127.0.0.1:{control}",
                         *state, *extra)
    paths = {"PYTHONPATH": str(checkout)} if checkout else {}
    process = Process(name, argv, logs, env={**PROVIDER_KEYS, **paths, **(env or {})}, cwd=checkout or ROOT)
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
                             "--control", f"127.0.0.1:{self.control}",
                             "--state-dir", str(self.logs / f"{self.name}-state"))
        self.restarts += 1
        self.switchyard = Process(f"{self.name}-switchyard-{self.restarts}", argv, self.logs,
                                  env=PROVIDER_KEYS)
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
