"""Every real agent client, unmodified, against the fake provider directly (no Switchyard): each
completes its task, and its tool round trip shows in what the fake received. This proves that the
fake speaks each client's protocol, with its real-service checks on (a key, a model list, roles),
so that the same clients can then be run through Switchyard.

The clients are pinned and installed by scripts/install_clients.sh (harness/agent_clients.py
runs them). Claude Code and Codex run with their own default models, which the fake must list."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Provider, start_provider
from harness import agent_clients
from harness.agent_clients import MARKER, ClientRun
from harness.fake_provider.answers import text_of

KEY = "sk-direct-KEY-0123456789"
CLAUDE_CODE_MODEL = "claude-opus-5-5"  # Claude Code 2.1.332's default model
CODEX_MODEL = "gpt-6.2-sol"  # Codex 0.171.0's default model
CODEX_CLASSIC_MODEL = "gpt-5.5"  # a model for which Codex offers plain function tools
OPENAI_MODEL = "gpt-direct"
ANTHROPIC_MODEL = "claude-direct"
TOOL_ANSWER = "direct read the tool result: sunny in Paris"  # see client_scripts/common.py


@pytest.fixture(scope="module", autouse=True)
def clients_installed() -> None:
    if missing := agent_clients.missing():
        pytest.fail(f"real clients not installed (run scripts/install_clients.sh): {missing}")


@pytest.fixture(scope="module")
def provider(logs: Path) -> Iterator[Provider]:
    models = ",".join((CLAUDE_CODE_MODEL, CODEX_MODEL, CODEX_CLASSIC_MODEL, OPENAI_MODEL, ANTHROPIC_MODEL))
    fake = start_provider("direct", logs, "--models", models, "--key", KEY)
    yield fake
    fake.process.stop()


@pytest.fixture(autouse=True)
def clean(provider: Provider) -> None:
    provider.reset()



def accepted(provider: Provider, path: str, count: int) -> list[dict[str, Any]]:
    """The requests the fake received: `count` of them, all to `path`, none refused."""
    requests = provider.requests()
    assert [r["path"] for r in requests] == [path] * count, [(r["path"], r.get("rejected")) for r in requests]
    assert not [r["rejected"] for r in requests if "rejected" in r]
    return [r["body"] for r in requests]


def test_claude_code_plain_prompt(provider: Provider, workdir: Path, tmp_path: Path) -> None:
    run = agent_clients.claude_code(provider.url, workdir, "say hello", scratch=tmp_path, key=KEY)
    assert run.exit_code == 0 and run.answer == "hello from direct", run
    [body] = accepted(provider, "/v1/messages", 1)
    assert body["model"] == CLAUDE_CODE_MODEL and body["stream"] is True
    assert [m["role"] for m in body["messages"]] == ["user", "system"]  # a mid-conversation system message


def test_claude_code_runs_bash_ls_and_answers_from_it(provider: Provider, workdir: Path, tmp_path: Path) -> None:
    run = agent_clients.claude_code(provider.url, workdir, "Please run `ls` and tell me what it printed",
                                    scratch=tmp_path, key=KEY, allowed_tools=("Bash(ls)",))
    assert run.exit_code == 0 and run.answer.startswith("direct read the tool result: ") and MARKER in run.answer, run
    first, second = accepted(provider, "/v1/messages", 2)
    assert "Bash" in [tool["name"] for tool in first["tools"]]
    call = second["messages"][-2]["content"][-1]
    assert (call["type"], call["name"], call["input"]) == ("tool_use", "Bash", {"command": "ls"})
    result = second["messages"][-1]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == call["id"] and MARKER in result["content"]


def test_claude_code_stream_json(provider: Provider, workdir: Path, tmp_path: Path) -> None:
    run = agent_clients.claude_code(provider.url, workdir, "say hello", scratch=tmp_path, key=KEY, stream_json=True)
    assert run.exit_code == 0 and run.answer == "hello from direct", run
    kinds = [event["type"] for event in run.events]
    assert kinds[0] == "system" and "assistant" in kinds and kinds[-1] == "result", kinds
    assert run.events[-1]["subtype"] == "success" and run.events[-1]["is_error"] is False
    accepted(provider, "/v1/messages", 1)


@pytest.mark.parametrize(("model", "call", "result"), [
    (None, "custom_tool_call", "custom_tool_call_output"),  # its default model: code mode
    (CODEX_CLASSIC_MODEL, "function_call", "function_call_output"),
])
def test_codex_exec_runs_a_shell_command_and_answers_from_it(provider: Provider, workdir: Path, tmp_path: Path,
                                                             model: str | None, call: str, result: str) -> None:
    run = agent_clients.codex(provider.url, workdir, "Please run `ls` and report what it printed",
                              scratch=tmp_path, model=model, key=KEY)
    assert run.exit_code == 0 and run.answer.startswith("direct read the tool result: ") and MARKER in run.answer, run
    first, second = accepted(provider, "/v1/responses", 2)
    assert first["model"] == (model or CODEX_MODEL) and first["stream"] is True and first["store"] is False
    kinds = [item.get("type") for item in second["input"]]
    assert kinds[-3:] == ["reasoning", call, result]  # its reasoning item went back too
    asked, answered = second["input"][-2:]
    assert asked["call_id"] == answered["call_id"] and MARKER in text_of(answered["output"])
    if model is None:  # code mode: no `tools`; an input item adds them, the shell behind a JavaScript tool
        assert "tools" not in first and "additional_tools" in kinds
        assert (asked["namespace"], asked["name"]) == ("functions", "exec")
    else:
        assert asked["name"] == "exec_command" and json.loads(asked["arguments"]) == {"cmd": "ls"}


PYTHON_CLIENTS: list[tuple[Callable[..., ClientRun], str, str, str, int]] = [
    # client, mode, model, the path of its requests, requests per task (a tool round trip: 2)
    (agent_clients.agents_sdk, "responses", OPENAI_MODEL, "/v1/responses", 2),
    (agent_clients.agents_sdk, "responses-streamed", OPENAI_MODEL, "/v1/responses", 2),
    (agent_clients.agents_sdk, "chat", OPENAI_MODEL, "/v1/chat/completions", 2),
    (agent_clients.agents_sdk, "chat-streamed", OPENAI_MODEL, "/v1/chat/completions", 2),
    (agent_clients.pydantic_ai, "responses", OPENAI_MODEL, "/v1/responses", 2),
    (agent_clients.pydantic_ai, "chat", OPENAI_MODEL, "/v1/chat/completions", 2),
    (agent_clients.pydantic_ai, "chat-streamed", OPENAI_MODEL, "/v1/chat/completions", 2),
    (agent_clients.pydantic_ai, "anthropic", ANTHROPIC_MODEL, "/v1/messages", 2),
    (agent_clients.langchain, "openai-tools", OPENAI_MODEL, "/v1/chat/completions", 2),
    (agent_clients.langchain, "anthropic-tools", ANTHROPIC_MODEL, "/v1/messages", 2),
    (agent_clients.litellm, "openai", OPENAI_MODEL, "/v1/chat/completions", 2),
    (agent_clients.litellm, "anthropic", ANTHROPIC_MODEL, "/v1/messages", 2),
]


def tool_result_of(body: dict[str, Any]) -> str:
    """The tool result that a request's conversation ends with, in any of the three APIs."""
    if "input" in body:
        return text_of(body["input"][-1]["output"])
    last = body["messages"][-1]
    if last["role"] == "tool":
        return text_of(last["content"])
    return text_of(next(block for block in last["content"] if block["type"] == "tool_result")["content"])


@pytest.mark.parametrize(("client", "mode", "model", "path", "count"), PYTHON_CLIENTS,
                         ids=[f"{c.__name__}-{mode}" for c, mode, *_ in PYTHON_CLIENTS])
def test_python_client_tool_round_trip(provider: Provider, tmp_path: Path, client: Callable[..., ClientRun],
                                       mode: str, model: str, path: str, count: int) -> None:
    run = client(provider.url, model, mode, scratch=tmp_path, key=KEY)
    assert run.exit_code == 0 and run.answer == TOOL_ANSWER, run
    bodies = accepted(provider, path, count)
    assert {body["model"] for body in bodies} == {model}
    assert tool_result_of(bodies[-1]) == "sunny in Paris"


@pytest.mark.parametrize("mode", ["openai-invoke", "openai-stream", "anthropic-invoke", "anthropic-stream"])
def test_langchain_invoke_and_stream(provider: Provider, tmp_path: Path, mode: str) -> None:
    provider.control(answer="plain words from the fake")
    model = OPENAI_MODEL if mode.startswith("openai") else ANTHROPIC_MODEL
    run = agent_clients.langchain(provider.url, model, mode, scratch=tmp_path, key=KEY)
    assert run.exit_code == 0 and run.answer == "plain words from the fake", run
    [body] = accepted(provider, "/v1/chat/completions" if mode.startswith("openai") else "/v1/messages", 1)
    assert bool(body.get("stream")) == mode.endswith("stream")
    if mode.endswith("stream"):
        assert run.events[-1]["chunks"] > 2  # it came in pieces
