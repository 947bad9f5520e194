"""The LiteLLM proxy as a throughput arm: installed on first use into its own venv, started in
front of the same upstream as the other arms (see benchmarks/throughput.py for how and why)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import yaml

from benchmarks.upstream_envoy import MODEL
from harness.processes import Process, free_port

ROOT = Path(__file__).resolve().parent.parent
# Pinned, so a rerun measures the same LiteLLM and never picks up an unvetted release (releases of
# this package have been compromised and pulled from PyPI before). Newer releases' `proxy` extra
# pins litellm-proxy / litellm-proxy-extras / litellm-enterprise releases the package index here
# lacks; 1.106.12 is the newest whose pins all resolve.
LITELLM_REQUIREMENT = "litellm[proxy]==1.106.12"
LITELLM_VENV = ROOT / "benchmarks" / ".litellm-venv"


def ensure_litellm() -> tuple[Path | None, str]:
    """The venv's `litellm` executable, installed on first use; (None, why) when it can't be."""
    exe = LITELLM_VENV / "bin" / "litellm"
    marker = LITELLM_VENV / ".installed"  # written last: a half-done install is redone
    if exe.exists() and marker.exists() and marker.read_text() == LITELLM_REQUIREMENT:
        return exe, "already installed"
    started = time.monotonic()
    steps = [[sys.executable, "-m", "venv", str(LITELLM_VENV)],
             [str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", LITELLM_REQUIREMENT]]
    for step in steps:
        try:
            result = subprocess.run(step, check=False, capture_output=True, text=True, timeout=1800)
        except subprocess.TimeoutExpired:
            return None, f"`{' '.join(step)}` took over 30 minutes"
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
            return None, f"`{' '.join(step)}` failed: {lines[-1]}"
    marker.write_text(LITELLM_REQUIREMENT)
    return exe, f"installed {LITELLM_REQUIREMENT} in {time.monotonic() - started:.0f} s"


def litellm_version() -> str:
    python = LITELLM_VENV / "bin" / "python"
    result = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
                            check=False, capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def start_litellm(exe: Path, upstream: str, workers: int, work: Path) -> tuple[Process, str]:
    """The proxy and its chat completions URL."""
    config = {
        "model_list": [{"model_name": MODEL, "litellm_params": {
            "model": f"openai/{MODEL}", "api_base": f"{upstream}/v1", "api_key": "unused", "num_retries": 0}}],
        "litellm_settings": {"set_verbose": False, "callbacks": [], "success_callback": [],
                             "failure_callback": [], "turn_off_message_logging": True,
                             "num_retries": 0, "request_timeout": 30},
        # No master key, as Switchyard here has no app keys: neither arm authenticates. LiteLLM
        # refuses to start keyless unless told this is on purpose (it listens on 127.0.0.1 only).
        "general_settings": {"disable_spend_logs": True, "disable_error_logs": True,
                             "dangerously_permit_weak_or_unset_master_key": True},
    }
    (work / "litellm.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    env = {"LITELLM_MODE": "PRODUCTION", "LITELLM_LOG": "ERROR", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    process = Process("litellm", [str(exe), "--config", str(work / "litellm.yaml"), "--host", "127.0.0.1",
                                  "--port", str(port), "--num_workers", str(workers)],
                      work / "logs", env=env)
    process.wait_http(f"http://127.0.0.1:{port}/health/liveliness", 240)
    return process, f"http://127.0.0.1:{port}/v1/chat/completions"
