"""The vLLM command line for Arch-Router."""

from __future__ import annotations

from router_model.serving import RouterServing, vllm_args, vllm_command, vllm_env


def test_gpu_serving_arguments() -> None:
    args = vllm_args(RouterServing())
    assert args[args.index("--model") + 1] == "katanemo/Arch-Router-1.5B"
    assert args[args.index("--served-model-name") + 1] == "Arch-Router"
    assert "--enable-prefix-caching" in args
    assert int(args[args.index("--max-model-len") + 1]) >= 4096
    assert 0 < float(args[args.index("--gpu-memory-utilization") + 1]) < 1


def test_cpu_serving_uses_module_entry_point_and_kv_cache_env() -> None:
    serving = RouterServing(model="/models/standin", extra_names=("SmolLM2-135M-Instruct",), device="cpu", port=8123)
    command = vllm_command(serving, python="python")
    assert command[:3] == ["python", "-m", "vllm.entrypoints.openai.api_server"]
    names = command.index("--served-model-name")
    assert command[names + 1:names + 3] == ["Arch-Router", "SmolLM2-135M-Instruct"]
    assert "--gpu-memory-utilization" not in command
    assert command[command.index("--port") + 1] == "8123"
    assert "VLLM_CPU_KVCACHE_SPACE" in vllm_env(serving)
