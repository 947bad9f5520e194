"""Real agent clients, unmodified, through Switchyard (Envoy + processor + guarded path) to local
providers of every kind: an Anthropic-API provider (Claude Code passes through, the others are
translated), a chat-completions provider (everything but the chat door is translated) and one
that also serves the Responses API natively (`responses: native`).

For every run: the client completes its task (exit 0, the answer it must give, the tool round trip
done), Switchyard refused nothing, the provider refused nothing (its checks mirror the real
services': key, model list, roles, tool pairing), the router was asked exactly once per user turn,
and every tool-loop request after the first was `sticky` on the same model.

The clients are pinned and installed by scripts/install_clients.sh (harness/agent_clients.py);
tests/e2e/test_clients_direct.py proves the fake speaks each client's protocol without Switchyard.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Provider, Sidecar, provider_fixture, start_provider, start_sidecar
from harness import agent_clients
from harness.agent_clients import MARKER, ClientRun

KEY = "sk-provider-KEY-4242424242"  # the providers' key: set by Switchyard, never by a client
CLIENT_KEY = "sk-client-unused"  # what the clients send: dropped by Switchyard
STRONG, SMALL = "strong-upstream", "small-upstream"  # what the providers serve
TOOL_PROMPT_ANSWER = "read the tool result: sunny in Paris"  # harness/client_scripts/common.py
KINDS = {  # provider kind -> its lines in the policy
    "anthropic": "api: anthropic",
    "chat": "api: openai",
    "native": "api: openai, responses: native",
}
clients_router = provider_fixture("clients-router", "clients_router", scope="module")
_conversations = itertools.count(1)


def fresh(prompt: str = "") -> str:
    """A prompt no earlier run sent (or a bare nonce): each run is a new conversation, which the
    router is asked about once (the same conversation again would be a cached decision)."""
    nonce = f"c{next(_conversations)}"
    return f"{prompt} (conversation {nonce})" if prompt else nonce


@pytest.fixture(scope="module", autouse=True)
def clients_installed() -> None:
    if missing := agent_clients.missing():
        pytest.fail(f"real clients not installed (run scripts/install_clients.sh): {missing}")


@dataclass
class Stack:
    """One provider kind: its provider, and a sidecar whose every route leads there."""

    kind: str
    provider: Provider
    sidecar: Sidecar

    @property
    def server(self) -> str:
        return self.sidecar.base_url.removesuffix("/v1")

    def log_offset(self) -> int:
        return self.sidecar.process.log_path.stat().st_size

    def events(self, since: int, name: str) -> list[dict[str, Any]]:
        """Switchyard's own log lines called `name` written since `since`."""
        with self.sidecar.process.log_path.open("rb") as log:
            log.seek(since)
            lines = log.read().decode("utf-8", "replace").splitlines()
        parsed = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("event") == name:
                parsed.append(event)
        return parsed


def policy(kind: str, provider: Provider, router: Provider) -> str:
    return f"""\
version: 1
router: {{endpoint: "{router.url}/v1", model: Arch-Router, timeout_ms: 5000}}
providers:
  target: {{base_url: "{provider.url}/v1", {KINDS[kind]}, api_key_env: TARGET_KEY}}
models:
  strong: {{provider: target, upstream_model: {STRONG}}}
  small: {{provider: target, upstream_model: {SMALL}}}
routes:
  - {{name: coding, description: "writing, running and explaining code", model: strong}}
default_model: small
aliases:                 # what the clients ask for by name
  claude-haiku-*: small
  claude-*: auto
  gpt-*: auto
"""


@pytest.fixture(scope="module")
def stacks(logs: Path, tmp_path_factory: pytest.TempPathFactory, clients_router: Provider) -> Iterator[dict[str, Stack]]:
    started: dict[str, Stack] = {}
    try:
        for kind in KINDS:
            provider = start_provider(f"{kind}-provider", logs, "--models", f"{STRONG},{SMALL}", "--key", KEY)
            folder = tmp_path_factory.mktemp(f"clients-{kind}")
            (folder / "default.yaml").write_text(policy(kind, provider, clients_router))
            sidecar = start_sidecar(f"switchyard-clients-{kind}", folder, logs, "--workers", "1",
                                    env={"TARGET_KEY": KEY})
            started[kind] = Stack(kind, provider, sidecar)
        yield started
    finally:
        for stack in started.values():
            stack.sidecar.process.stop()
            stack.provider.process.stop()


@dataclass
class Checked:
    """What one client run did, through Switchyard."""

    run: ClientRun
    bodies: list[dict[str, Any]]  # what the provider received, in order
    paths: list[str]
    decisions: list[dict[str, Any]]  # Switchyard's decision records, in order
    router_calls: int


def drive(stack: Stack, router: Provider, client: Callable[[], ClientRun]) -> Checked:
    """Run a client against `stack` and check what every run must hold."""
    stack.provider.reset()
    stack.provider.control(answer=f"hello from {stack.provider.name}")  # streamed or not, in any API
    router.reset()
    router.control(route="coding")
    offset = stack.log_offset()
    run = client()
    assert run.exit_code == 0, run
    requests = stack.provider.requests()
    refused = [(r["path"], r["rejected"]) for r in requests if "rejected" in r]
    assert not refused, f"the provider refused what Switchyard sent: {refused}"
    for request in requests:  # Switchyard's key for the provider, never the client's
        headers = {name.lower(): value for name, value in request["headers"].items()}
        assert (headers.get("authorization") or headers.get("x-api-key", "")).endswith(KEY)
        assert CLIENT_KEY not in json.dumps(headers)
    assert not stack.events(offset, "rejected"), "Switchyard refused a request"
    decisions = stack.events(offset, "decision")
    assert len(decisions) == len(requests)
    return Checked(run, [r["body"] for r in requests], [r["path"] for r in requests], decisions,
                   len(router.requests()))


def assert_one_turn(checked: Checked, model: str = "strong") -> None:
    """One user turn: one router call; the first request routed, the rest of its loop sticky."""
    kinds = [d["decision"] for d in checked.decisions]
    assert checked.router_calls == 1 and kinds == ["routed:arch-router"] + ["sticky"] * (len(kinds) - 1), kinds
    assert {d["model"] for d in checked.decisions} == {model}



# ---- Claude Code ---------------------------------------------------------------------------------

CLAUDE_KINDS = ["anthropic", "chat"]  # pass-through, and translated


@pytest.mark.parametrize("kind", CLAUDE_KINDS)
def test_claude_code_plain_prompt(stacks: dict[str, Stack], clients_router: Provider, workdir: Path,
                                  tmp_path: Path, kind: str) -> None:
    stack = stacks[kind]
    checked = drive(stack, clients_router, lambda: agent_clients.claude_code(
        stack.server, workdir, fresh("say hello"), scratch=tmp_path, key=CLIENT_KEY))
    assert checked.run.answer == f"hello from {kind}-provider", checked.run
    assert_one_turn(checked)
    assert checked.decisions[0]["requested_model"].startswith("claude-")  # its own name, through `aliases`
    assert checked.paths == ["/v1/messages" if kind == "anthropic" else "/v1/chat/completions"]


@pytest.mark.parametrize("kind", CLAUDE_KINDS)
def test_claude_code_runs_bash_and_answers_from_it(stacks: dict[str, Stack], clients_router: Provider,
                                                   workdir: Path, tmp_path: Path, kind: str) -> None:
    stack = stacks[kind]
    checked = drive(stack, clients_router, lambda: agent_clients.claude_code(
        stack.server, workdir, fresh("Please run `ls` and tell me what it printed"), scratch=tmp_path,
        key=CLIENT_KEY, allowed_tools=("Bash(ls)",)))
    assert checked.run.answer.startswith(f"{kind}-provider read the tool result") and MARKER in checked.run.answer
    assert len(checked.bodies) == 2
    assert_one_turn(checked)


@pytest.mark.parametrize("kind", CLAUDE_KINDS)
def test_claude_code_stream_json(stacks: dict[str, Stack], clients_router: Provider, workdir: Path,
                                 tmp_path: Path, kind: str) -> None:
    stack = stacks[kind]
    checked = drive(stack, clients_router, lambda: agent_clients.claude_code(
        stack.server, workdir, fresh("say hello"), scratch=tmp_path, key=CLIENT_KEY, stream_json=True))
    assert checked.run.answer == f"hello from {kind}-provider"
    assert checked.run.events[-1]["subtype"] == "success" and checked.run.events[-1]["is_error"] is False
    assert_one_turn(checked)


def test_claude_code_haiku_names_resolve_through_aliases(stacks: dict[str, Stack], clients_router: Provider,
                                                         workdir: Path, tmp_path: Path) -> None:
    stack = stacks["anthropic"]
    checked = drive(stack, clients_router, lambda: agent_clients.claude_code(
        stack.server, workdir, fresh("say hello"), scratch=tmp_path, key=CLIENT_KEY, model="claude-haiku-4-5-20251001"))
    assert checked.run.answer == "hello from anthropic-provider"
    assert checked.router_calls == 0
    [decision] = checked.decisions
    assert (decision["decision"], decision["model"], decision["requested_model"]) == \
        ("explicit", "small", "claude-haiku-4-5-20251001")
    assert checked.bodies[0]["model"] == SMALL


# ---- Codex CLI -----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [None, "gpt-5.5"], ids=["default-code-mode", "gpt-5.5"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_codex_exec_runs_a_shell_command(stacks: dict[str, Stack], clients_router: Provider, workdir: Path,
                                         tmp_path: Path, kind: str, model: str | None) -> None:
    stack = stacks[kind]
    checked = drive(stack, clients_router, lambda: agent_clients.codex(
        stack.server, workdir, fresh("Please run `ls` and report what it printed"), scratch=tmp_path, model=model,
        key=CLIENT_KEY))
    assert checked.run.answer.startswith(f"{kind}-provider read the tool result") and MARKER in checked.run.answer
    expected = {"native": "/v1/responses", "chat": "/v1/chat/completions", "anthropic": "/v1/messages"}[kind]
    assert checked.paths == [expected, expected]
    assert_one_turn(checked)


# ---- Python frameworks ---------------------------------------------------------------------------

PYTHON_CLIENTS: list[tuple[Callable[..., ClientRun], str]] = [
    (agent_clients.agents_sdk, "responses"), (agent_clients.agents_sdk, "responses-streamed"),
    (agent_clients.agents_sdk, "chat"), (agent_clients.agents_sdk, "chat-streamed"),
    (agent_clients.pydantic_ai, "responses"), (agent_clients.pydantic_ai, "chat"),
    (agent_clients.pydantic_ai, "chat-streamed"), (agent_clients.pydantic_ai, "anthropic"),
    (agent_clients.langchain, "openai-tools"), (agent_clients.langchain, "anthropic-tools"),
    (agent_clients.litellm, "openai"), (agent_clients.litellm, "anthropic"),
]


# Each on both provider kinds, but for one: Claude-like answers put text before a tool call, and
# pydantic-ai's run_stream takes that text as its final output (its own rule, with or without
# Switchyard), so its streamed chat mode runs against the chat provider only.
PYTHON_RUNS = [(client, mode, kind) for client, mode in PYTHON_CLIENTS for kind in ("anthropic", "chat")
               if (client, mode, kind) != (agent_clients.pydantic_ai, "chat-streamed", "anthropic")]


@pytest.mark.parametrize(("client", "mode", "kind"), PYTHON_RUNS,
                         ids=[f"{c.__name__}-{m}-{k}" for c, m, k in PYTHON_RUNS])
def test_python_client_tool_round_trip(stacks: dict[str, Stack], clients_router: Provider, tmp_path: Path,
                                       kind: str, client: Callable[..., ClientRun], mode: str) -> None:
    stack = stacks[kind]
    checked = drive(stack, clients_router, lambda: client(stack.server, "auto", mode, scratch=tmp_path, key=CLIENT_KEY,
                                                          nonce=fresh()))
    assert checked.run.answer == f"{kind}-provider {TOOL_PROMPT_ANSWER}", checked.run
    assert len(checked.bodies) == 2
    assert_one_turn(checked)


@pytest.mark.parametrize("mode", ["responses", "responses-streamed"])
def test_agents_sdk_on_a_native_responses_provider(stacks: dict[str, Stack], clients_router: Provider,
                                                   tmp_path: Path, mode: str) -> None:
    stack = stacks["native"]
    checked = drive(stack, clients_router, lambda: agent_clients.agents_sdk(
        stack.server, "auto", mode, scratch=tmp_path, key=CLIENT_KEY, nonce=fresh()))
    assert checked.run.answer == f"native-provider {TOOL_PROMPT_ANSWER}"
    assert checked.paths == ["/v1/responses", "/v1/responses"]
    assert all(body["model"] == STRONG for body in checked.bodies)
    assert_one_turn(checked)


@pytest.mark.parametrize("mode", ["openai-invoke", "openai-stream", "anthropic-invoke", "anthropic-stream"])
def test_langchain_invoke_and_stream(stacks: dict[str, Stack], clients_router: Provider, tmp_path: Path,
                                     mode: str) -> None:
    stack = stacks["chat" if mode.startswith("anthropic") else "anthropic"]  # translated both ways
    checked = drive(stack, clients_router, lambda: agent_clients.langchain(
        stack.server, "auto", mode, scratch=tmp_path, key=CLIENT_KEY, nonce=fresh()))
    assert checked.run.answer == f"hello from {stack.kind}-provider", checked.run
    assert_one_turn(checked)
