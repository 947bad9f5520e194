"""Request bodies recorded from the real clients (Claude Code 2.1.332, Codex CLI 0.171.0), as unit
inputs: parsed, routed on the person's words, and translated with every drop named. The proof
that the clients work is tests/e2e/test_agent_clients.py, which runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from control_plane.apis import anthropic_translate
from control_plane.apis.anthropic_messages import parse_messages_request
from control_plane.apis.responses import parse_responses_request
from control_plane.apis.responses_translate import request_to_openai, response_from_openai
from control_plane.routing.conversations import identify
from router_model.conversation import select_conversation

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def body(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def test_claude_code_first_request_routes_on_the_persons_words() -> None:
    sent = body("claude_code_2.1.332_first.json")
    request = parse_messages_request(json.dumps(sent).encode())
    assert [m.content for m in select_conversation(request.messages)] == ["say hello"]
    turn = identify(request.messages)
    assert turn is not None and not turn.continues
    dropped: set[str] = set()
    chat = anthropic_translate.request_to_openai(sent, dropped)
    assert chat["messages"][-1]["role"] == "system"  # its mid-conversation system message, in place
    assert {"cache_control", "thinking", "context_management", "output_config.effort"} <= dropped


def test_codex_first_request_routes_on_the_persons_words_and_translates() -> None:
    sent = body("codex_0.171.0_first.json")
    request = parse_responses_request(json.dumps(sent).encode())
    assert [m.content for m in select_conversation(request.messages)] == ["say hello"]
    dropped: set[str] = set()
    chat = request_to_openai(sent, dropped)
    assert chat["messages"][0]["role"] == "system" and chat["messages"][-1] == {"role": "user", "content": "say hello"}
    assert {"tool:web_search", "client_metadata", "reasoning", "include"} <= dropped
    names = [t["function"]["name"] for t in chat["tools"]]
    assert "exec_command" in names and "spawn_agent" in names  # a namespace's tools, flattened


def test_codex_code_mode_is_carried_to_a_chat_provider_and_back() -> None:
    """Codex's default model: no `tools`, an `additional_tools` input item with namespaces and a
    free-form JavaScript tool `exec`; its calls and outputs come back as custom tool items."""
    sent = body("codex_0.171.0_code_mode_loop.json")
    request = parse_responses_request(json.dumps(sent).encode())
    turn = identify(request.messages)
    assert turn is not None and turn.continues  # the custom tool's output continues the turn
    dropped: set[str] = set()
    chat = request_to_openai(sent, dropped)
    exec_tool = next(t["function"] for t in chat["tools"] if t["function"]["name"] == "exec")
    assert exec_tool["parameters"]["required"] == ["input"] and "tools.exec_command" in exec_tool["description"]
    call, result = chat["messages"][-2:]
    assert call["tool_calls"][0]["function"]["name"] == "exec"
    assert "tools.exec_command" in json.loads(call["tool_calls"][0]["function"]["arguments"])["input"]
    assert result["role"] == "tool" and "codex-marker.txt" in result["content"]
    completion = {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "tool_calls": [
        {"id": "call_2", "type": "function", "function": {"name": "exec", "arguments": '{"input": "text(1)"}'}}]}}]}
    answer = json.loads(response_from_openai(json.dumps(completion).encode(), sent))
    assert answer["output"] == [{"type": "custom_tool_call", "id": answer["output"][0]["id"], "status": "completed",
                                 "call_id": "call_2", "name": "exec", "input": "text(1)", "namespace": "functions"}]
