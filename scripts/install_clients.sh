#!/usr/bin/env bash
# Install the real agent clients that tests/e2e/test_clients_*.py drive, pinned, into the
# git-ignored folder .clients/ (needs only Python 3.11+, pip, node and npm):
#   .clients/node  Claude Code and Codex CLI from npm (.clients/node/node_modules/.bin/{claude,codex})
#   .clients/py    a venv of its own for the Python clients, so their pins never fight the project's
# Safe to re-run: each part is skipped while its stamp matches the pins below.
set -euo pipefail
cd "$(dirname "$0")/.."

# Claude Code wants Node 22 and npm says so on Node 20; the package's native binary runs anyway.
# Pinned explicitly: on Node 20 a plain install would pick an older 2.1 release.
NODE_PINS=("@anthropic-ai/claude-code@2.1.332" "@openai/codex@0.171.0")
PY_PINS=(
  "openai-agents==0.24.0"
  "pydantic-ai-slim[openai,anthropic]==2.68.0"
  "langchain-openai==1.7.4"
  "langchain-anthropic==1.7.10"
  "litellm==1.110.2"
  "openai==3.57.0"
  "anthropic==2.14.0"
)
PYTHON=${PYTHON:-python3}
mkdir -p .clients

stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

node_want="${NODE_PINS[*]}"
if ! stamp_ok .clients/node.stamp "$node_want"; then
  mkdir -p .clients/node
  [ -f .clients/node/package.json ] || echo '{"name": "switchyard-test-clients", "private": true}' > .clients/node/package.json
  # --foreground-scripts: Claude Code's postinstall links its platform's native binary.
  npm install --prefix .clients/node --no-audit --no-fund --loglevel=error --save-exact \
    --foreground-scripts "${NODE_PINS[@]}"
  echo "$node_want" > .clients/node.stamp
fi

py_want="${PY_PINS[*]}"
if ! stamp_ok .clients/py.stamp "$py_want"; then
  [ -x .clients/py/bin/python ] || "$PYTHON" -m venv .clients/py
  .clients/py/bin/python -m pip --disable-pip-version-check -q install "${PY_PINS[@]}"
  echo "$py_want" > .clients/py.stamp
fi

# Prove each one starts (a broken native binary fails here, not in a test).
bin=.clients/node/node_modules/.bin
export LITELLM_LOCAL_MODEL_COST_MAP=True  # no fetch of litellm's price list from the internet
python_clients=$(.clients/py/bin/python - <<'PY'
import importlib.metadata as metadata
import agents, langchain_anthropic, langchain_openai, litellm, pydantic_ai  # noqa: F401 (they import)
names = ("openai-agents", "pydantic-ai-slim", "langchain-openai", "langchain-anthropic", "litellm", "openai", "anthropic")
print(", ".join(f"{name} {metadata.version(name)}" for name in names))
PY
)
echo "clients: claude $("$bin/claude" --version | head -1), codex $("$bin/codex" --version | head -1), $python_clients"
