"""Run the real agent clients against a server, as a user would, each as a subprocess with a deadline.

The clients are the pinned packages that scripts/install_clients.sh puts in .clients/: Claude Code and
Codex CLI (npm), and the Python frameworks in their own venv (.clients/py), driven by the small
scripts in harness/client_scripts/. Every function takes `server`, the server's root URL
(scheme://host:port, no path: each client is given the base URL it expects, with or without /v1),
runs in a clean environment (no inherited API keys or config; HOME and the clients' config folders
under `scratch`), and returns a ClientRun.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = ROOT / ".clients"
NODE_BIN = CLIENTS / "node" / "node_modules" / ".bin"
CLAUDE = NODE_BIN / "claude"
CODEX = NODE_BIN / "codex"
CLIENT_PYTHON = CLIENTS / "py" / "bin" / "python"
SCRIPTS = Path(__file__).resolve().parent / "client_scripts"
DEADLINE_S = 60.0
TIMED_OUT = 124
MARKER = "switchyard-marker.txt"  # a file in an agent's work folder that only `ls` there reports  # the exit code of a run stopped at its deadline (as timeout(1) reports it)


@dataclass
class ClientRun:
    """One run of a client: how it ended, its final answer, and what it printed."""

    argv: list[str]
    exit_code: int
    answer: str
    stdout: str
    stderr: str
    seconds: float
    events: list[dict[str, Any]] = field(default_factory=list)  # JSON lines it printed (stream-json, reports)

    def __str__(self) -> str:
        """For assertion messages: enough to see why a run failed."""
        return (f"{self.argv[:3]}... exit {self.exit_code} after {self.seconds:.1f}s, answer {self.answer!r}\n"
                f"stdout: {self.stdout[-2000:]}\nstderr: {self.stderr[-3000:]}")


def missing() -> list[str]:
    """The clients that are not installed (scripts/install_clients.sh installs them)."""
    return [str(path) for path in (CLAUDE, CODEX, CLIENT_PYTHON) if not path.exists()]


def json_lines(text: str) -> list[dict[str, Any]]:
    events = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            events.append(value)
    return events


def clean_env(scratch: Path, **extra: str) -> dict[str, str]:
    """Only what a client needs: PATH, a HOME of its own under `scratch`, and `extra`."""
    home = scratch / "home"
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
            "NO_COLOR": "1", "TERM": "dumb", **extra}


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> ClientRun:
    """Run to the end or to the deadline (then the whole process group is killed)."""
    started = time.monotonic()
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
        code = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        code = TIMED_OUT
    return ClientRun(argv, code, stdout.strip(), stdout, stderr, time.monotonic() - started, json_lines(stdout))


def claude_code(server: str, workdir: Path, prompt: str, *, scratch: Path, model: str | None = None,
                key: str = "sk-test", allowed_tools: tuple[str, ...] = (), stream_json: bool = False,
                timeout: float = DEADLINE_S) -> ClientRun:
    """`claude -p PROMPT` in `workdir` against the Anthropic API at `server` (ANTHROPIC_BASE_URL,
    no /v1). `model` None keeps Claude Code's own default model. No onboarding or trust prompt
    appears in print mode; non-essential traffic (/api/hello, telemetry) is off. With
    `stream_json`, the answer is the `result` event's text."""
    env = clean_env(scratch, ANTHROPIC_BASE_URL=server, ANTHROPIC_API_KEY=key,
                    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", DISABLE_AUTOUPDATER="1",
                    **({"ANTHROPIC_MODEL": model} if model else {}))
    argv = [str(CLAUDE), "-p", prompt]
    if allowed_tools:
        argv += ["--allowedTools", ",".join(allowed_tools)]
    if stream_json:
        argv += ["--output-format", "stream-json", "--verbose"]  # print mode needs --verbose for it
    result = run(argv, workdir, env, timeout)
    if stream_json:
        results = [event for event in result.events if event.get("type") == "result"]
        result.answer = str(results[-1].get("result", "")) if results else ""
    return result


def codex_config(server: str, model: str | None) -> str:
    """A Codex config.toml with one custom provider (Responses API: Codex no longer speaks chat)."""
    return ((f'model = "{model}"\n' if model else "") + 'model_provider = "switchyard"\n\n'
            f'[model_providers.switchyard]\nname = "Switchyard"\nbase_url = "{server}/v1"\n'
            f'env_key = "SWITCHYARD_API_KEY"\nwire_api = "responses"\n')


def codex(server: str, workdir: Path, prompt: str, *, scratch: Path, model: str | None = None,
          key: str = "sk-test", timeout: float = DEADLINE_S) -> ClientRun:
    """`codex exec PROMPT` in `workdir`, its default configuration but for a custom provider at
    `server` (CODEX_HOME under `scratch`) and no sandbox (CI cannot start one). `model` None keeps
    Codex's own default model. Its stdout is the final answer; its progress goes to stderr."""
    codex_home = scratch / "codex-home"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(codex_config(server, model))
    env = clean_env(scratch, CODEX_HOME=str(codex_home), SWITCHYARD_API_KEY=key)
    argv = [str(CODEX), "exec", "--skip-git-repo-check", "--sandbox", "danger-full-access",
            "--cd", str(workdir), prompt]
    return run(argv, workdir, env, timeout)


def python_client(script: str, base_url: str, model: str, mode: str, *, scratch: Path, key: str,
                  timeout: float, nonce: str = "") -> ClientRun:
    """A script of harness/client_scripts under .clients/py; its answer is its JSON report's.
    A `nonce` makes its conversation a new one."""
    argv = [str(CLIENT_PYTHON), str(SCRIPTS / script), "--base-url", base_url, "--model", model,
            "--key", key, "--mode", mode, "--nonce", nonce]
    result = run(argv, scratch, clean_env(scratch), timeout)
    reports = [event for event in result.events if "answer" in event]
    result.answer = str(reports[-1]["answer"]) if reports else ""
    return result


def agents_sdk(server: str, model: str, mode: str, *, scratch: Path, key: str = "sk-test",
               timeout: float = DEADLINE_S, nonce: str = "") -> ClientRun:
    """The OpenAI Agents SDK, a function tool round trip. Modes: responses (the SDK's default
    model), chat (OpenAIChatCompletionsModel), each also `-streamed` (Runner.run_streamed)."""
    return python_client("run_agents_sdk.py", f"{server}/v1", model, mode, scratch=scratch, key=key, timeout=timeout,
                         nonce=nonce)


def pydantic_ai(server: str, model: str, mode: str, *, scratch: Path, key: str = "sk-test",
                timeout: float = DEADLINE_S, nonce: str = "") -> ClientRun:
    """pydantic-ai, a tool round trip. Modes: responses (OpenAIResponsesModel), chat (OpenAIChatModel),
    chat-streamed (run_stream), anthropic (AnthropicModel)."""
    base_url = server if mode == "anthropic" else f"{server}/v1"
    return python_client("run_pydantic_ai.py", base_url, model, mode, scratch=scratch, key=key, timeout=timeout,
                         nonce=nonce)


def langchain(server: str, model: str, mode: str, *, scratch: Path, key: str = "sk-test",
              timeout: float = DEADLINE_S, nonce: str = "") -> ClientRun:
    """langchain-openai / langchain-anthropic. Modes: {openai,anthropic}-{invoke,stream,tools}
    (tools: a bind_tools round trip)."""
    base_url = server if mode.startswith("anthropic") else f"{server}/v1"
    return python_client("run_langchain.py", base_url, model, mode, scratch=scratch, key=key, timeout=timeout,
                         nonce=nonce)


def litellm(server: str, model: str, mode: str, *, scratch: Path, key: str = "sk-test",
            timeout: float = DEADLINE_S, nonce: str = "") -> ClientRun:
    """litellm.completion with a tool round trip. Modes: openai (openai/ prefix, chat API),
    anthropic (anthropic/ prefix, Messages API)."""
    base_url = server if mode == "anthropic" else f"{server}/v1"
    return python_client("run_litellm.py", base_url, model, mode, scratch=scratch, key=key, timeout=timeout,
                         nonce=nonce)


def work_folder(parent: Path) -> Path:
    """A folder for a coding agent to work in; `ls` there prints MARKER."""
    folder = parent / "work"
    folder.mkdir()
    (folder / MARKER).write_text("")
    return folder
