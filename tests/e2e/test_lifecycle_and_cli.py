"""`switchyard up` stops every child; the check/prompt/route commands behave as documented."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Provider, start_sidecar, write_policies
from harness.processes import ROOT, wait_until


def child_pids(log: str, child: str) -> list[int]:
    pids = []
    for line in log.splitlines():
        if line.startswith("{") and '"child_started"' in line:
            record = json.loads(line)
            if record["child"] == child:
                pids.append(record["pid"])
    return pids


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture()
def policies(tmp_path: Path, alpha: Provider, beta: Provider, scripted_router: Provider) -> Path:
    write_policies(tmp_path, scripted_router.url, scripted_router.url, alpha, beta)
    return tmp_path


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_up_stops_every_child_on_signal(policies: Path, logs: Path, sig: int) -> None:
    sidecar = start_sidecar(f"lifecycle-{sig}", policies, logs)
    [envoy] = child_pids(sidecar.process.log_tail(10**6), "envoy")
    assert pid_alive(envoy)
    os.kill(sidecar.process.pid, sig)  # the parent only, as Ctrl-C or `docker stop` would
    sidecar.process.popen.wait(30)
    assert sidecar.process.popen.returncode == 0
    wait_until(lambda: not pid_alive(envoy), 10, "envoy gone after switchyard up stopped")


def test_no_orphan_even_when_up_is_killed_hard(policies: Path, logs: Path) -> None:
    sidecar = start_sidecar("lifecycle-kill", policies, logs)
    [envoy] = child_pids(sidecar.process.log_tail(10**6), "envoy")
    os.kill(sidecar.process.pid, signal.SIGKILL)
    sidecar.process.popen.wait(10)
    wait_until(lambda: not pid_alive(envoy), 10, "envoy gone after switchyard up was SIGKILLed")


def switchyard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "control_plane.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_check_reports_file_and_line(tmp_path: Path) -> None:
    ok = switchyard("check", str(ROOT / "policies"))
    assert ok.returncode == 0 and "default.yaml: ok" in ok.stdout
    # travel.yaml's chains, resolved
    assert "failover: gpt-4o -> llama-fast -> small (continues broken streams: small)" in ok.stdout
    assert "failover: llama-fast -> small (context window: gpt-4o)" in ok.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text((ROOT / "policies" / "default.yaml").read_text().replace("default_model: assistant", "default_model: huge"))
    result = switchyard("check", str(broken))
    assert result.returncode == 1
    assert f"{broken}:" in result.stderr and "default_model: unknown model 'huge'" in result.stderr


def test_prompt_prints_the_router_request(tmp_path: Path) -> None:
    conversation = tmp_path / "c.json"
    conversation.write_text(json.dumps({"messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "fix my bug"}]}))
    result = switchyard("prompt", "--policy", str(ROOT / "policies" / "default.yaml"), "--conversation", str(conversation))
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["model"] == "Arch-Router" and len(body["messages"]) == 1
    assert '[{"role": "user", "content": "fix my bug"}]' in body["messages"][0]["content"]


def test_route_asks_the_router(policies: Path, scripted_router: Provider) -> None:
    scripted_router.reset()
    scripted_router.control(route="code_generation")
    result = switchyard("route", "--policy", str(policies / "scripted.yaml"), "write a sort function")
    assert result.returncode == 0, result.stderr
    assert "route:    code_generation" in result.stdout and "model:    beta-chat" in result.stdout
    assert "decision: routed:arch-router" in result.stdout


def test_app_key_makes_an_entry_that_check_accepts(tmp_path: Path) -> None:
    for policy in (ROOT / "policies").glob("*.yaml"):
        (tmp_path / policy.name).write_text(policy.read_text())
    made = switchyard("app-key", "checkout")
    assert made.returncode == 0
    key = made.stderr.strip().rsplit(" ", 1)[-1]
    assert key.startswith("sk-sy-") and key not in made.stdout  # only the digest goes in the file
    (tmp_path / "apps.yaml").write_text("version: 1\napps:\n" + made.stdout)
    ok = switchyard("check", str(tmp_path))
    assert ok.returncode == 0 and f"{tmp_path / 'apps.yaml'}: ok (1 apps: checkout)" in ok.stdout
    (tmp_path / "apps.yaml").write_text("version: 1\napps:\n" + made.stdout + "    policies: [nope]\n")
    broken = switchyard("check", str(tmp_path / "apps.yaml"))
    assert broken.returncode == 1 and "apps.checkout.policies[0]: unknown policy 'nope'" in broken.stderr
