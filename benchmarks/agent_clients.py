"""The time Switchyard adds to a real agent's run: Claude Code (`claude -p`, a plain prompt and a
Bash round trip) and Codex (`codex exec`, a shell round trip), each run directly against a local
Anthropic-API / Responses provider and through Switchyard to the same provider, interleaved in one
run, every run a new conversation (so each one is a fresh router decision: the embedding tier).
Prints the median and p90 wall time of each and the difference, and the requests per task.

    python benchmarks/agent_clients.py [--runs 10]

Needs the clients: bash scripts/install_clients.sh.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.stack import start_provider, start_sidecar  # noqa: E402
from harness import agent_clients  # noqa: E402
from harness.agent_clients import ClientRun  # noqa: E402

POLICY = """\
version: 1
router: {{kind: embedding}}
providers:
  claude: {{base_url: "{url}/v1", api: anthropic}}
  native: {{base_url: "{url}/v1", responses: native}}
models:
  claude: {{provider: claude, upstream_model: claude-opus-5-5}}
  codex: {{provider: native, upstream_model: gpt-6.2-sol}}
routes:
  - {{name: coding, description: "writing, running and explaining code", model: claude}}
default_model: claude
aliases: {{"claude-*": auto, "gpt-*": codex}}
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    if missing := agent_clients.missing():
        sys.exit(f"install the clients first (bash scripts/install_clients.sh): {missing}")
    work = Path(tempfile.mkdtemp(prefix="sy-agents-"))
    for folder in ("logs", "policies", "scratch"):
        (work / folder).mkdir()
    agent_clients.work_folder(work)
    provider = start_provider("bench", work / "logs")
    sidecar = None
    try:
        (work / "policies" / "default.yaml").write_text(POLICY.format(url=provider.url))
        sidecar = start_sidecar("switchyard", work / "policies", work / "logs")
        through = sidecar.base_url.removesuffix("/v1")
        tasks: dict[str, Callable[[str, str], ClientRun]] = {
            "claude -p (plain)": lambda server, nonce: agent_clients.claude_code(
                server, work / "work", f"say hello ({nonce})", scratch=work / "scratch"),
            "claude -p (Bash ls)": lambda server, nonce: agent_clients.claude_code(
                server, work / "work", f"Please run `ls` and tell me what it printed ({nonce})",
                scratch=work / "scratch", allowed_tools=("Bash(ls)",)),
            "codex exec (shell ls)": lambda server, nonce: agent_clients.codex(
                server, work / "work", f"Please run `ls` and report ({nonce})", scratch=work / "scratch"),
        }
        print(f"{'task':24} {'requests':>8} {'direct p50/p90 s':>18} {'Switchyard p50/p90 s':>22} {'added p50 ms':>13}")
        for name, task in tasks.items():
            times: dict[str, list[float]] = {"direct": [], "switchyard": []}
            requests = set()
            for run in range(args.runs):  # interleaved: the machine's noise hits both alike
                for arm, server in (("direct", provider.url), ("switchyard", through)):
                    provider.reset()
                    result = task(server, f"{arm} {run}")
                    assert result.exit_code == 0, result
                    times[arm].append(result.seconds)
                    requests.add(len(provider.requests()))
            direct, switchyard = times["direct"], times["switchyard"]
            added = (statistics.median(switchyard) - statistics.median(direct)) * 1000
            print(f"{name:24} {'/'.join(map(str, sorted(requests))):>8} "
                  f"{statistics.median(direct):>9.2f}/{percentile(direct, 0.9):<8.2f} "
                  f"{statistics.median(switchyard):>11.2f}/{percentile(switchyard, 0.9):<10.2f} {added:>13.0f}")
    finally:
        if sidecar is not None:
            sidecar.process.stop()
        provider.process.stop()


if __name__ == "__main__":
    main()
