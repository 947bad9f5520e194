"""What routing reads of a request (control_plane/apis/conversation.py), from every door: turns
that survive client envelopes and shapes."""

from __future__ import annotations

import json
from typing import Any

from control_plane.apis.anthropic_messages import parse_messages_request
from control_plane.apis.conversation import strip_envelopes
from control_plane.apis.openai_chat import parse_chat_request
from control_plane.routing.conversations import identify
from router_model.conversation import select_conversation

REMINDER = "<system-reminder>\nAs you answer the user's questions, you can use the following context: git status ...\n</system-reminder>"


def anthropic(*messages: dict[str, Any], **extra: Any) -> list[dict[str, Any]]:
    body = {"model": "auto", "max_tokens": 64, "messages": list(messages), **extra}
    return parse_messages_request(json.dumps(body).encode()).messages


def chat(*messages: dict[str, Any]) -> list[dict[str, Any]]:
    return parse_chat_request(json.dumps({"model": "auto", "messages": list(messages)}).encode()).messages


def test_a_string_equals_one_text_block_and_cache_hints_do_not_count() -> None:
    plain = anthropic({"role": "user", "content": "say hello"})
    blocks = anthropic({"role": "user", "content": [
        {"type": "text", "text": "say hello", "cache_control": {"type": "ephemeral"}}]})
    assert plain == blocks
    assert identify(plain) == identify(blocks)
    assert chat({"role": "user", "content": "say hello"}) == chat(
        {"role": "user", "content": [{"type": "text", "text": "say hello"}]}) == plain


def test_envelopes_never_decide_a_route() -> None:
    messages = anthropic({"role": "user", "content": [{"type": "text", "text": REMINDER},
                                                      {"type": "text", "text": "say hello"}]})
    assert [m.content for m in select_conversation(messages)] == ["say hello"]
    inline = chat({"role": "user", "content": f"{REMINDER}\nsay hello"})
    assert [m.content for m in select_conversation(inline)] == ["say hello"]
    assert strip_envelopes("a <other>b</other>", ["system-reminder"]) == "a <other>b</other>"
    assert strip_envelopes('x <system-reminder id="1">y</system-reminder>', ["system-reminder"]) == "x"


def test_a_user_message_of_envelopes_only_is_no_user_turn() -> None:
    first = [{"role": "user", "content": "list the files"},
             {"role": "assistant", "content": [{"type": "text", "text": "Sure."}]}]
    later = anthropic(*first, {"role": "user", "content": [{"type": "text", "text": REMINDER}]})
    turn, alone = identify(later), identify(anthropic(first[0]))
    assert turn is not None and alone is not None
    assert turn.continues and turn.turn == alone.turn


def test_tool_results_continue_the_turn_even_with_text_beside_them() -> None:
    ask = {"role": "user", "content": "list the files"}
    call = {"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}]}
    result = {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt"},
        {"type": "text", "text": REMINDER}, {"type": "text", "text": "also check b"}]}
    first, loop = identify(anthropic(ask)), identify(anthropic(ask, call, result))
    assert first is not None and loop is not None
    assert loop.continues and loop.turn == first.turn


def test_the_same_tool_call_hashes_alike_from_either_api() -> None:
    ask = {"role": "user", "content": "weather?"}
    from_anthropic = anthropic(ask, {"role": "assistant", "content": [
        {"type": "tool_use", "id": "c1", "name": "weather", "input": {"b": 2, "a": 1}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "sunny"}]})
    from_chat = chat(ask, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"a": 1, "b": 2}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"})
    assert from_anthropic == from_chat


def test_mid_conversation_system_messages_are_accepted_and_not_routed() -> None:
    messages = anthropic({"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                         {"role": "system", "content": "The user's timezone changed."},
                         {"role": "user", "content": "what time is it?"})
    assert [m.role for m in select_conversation(messages)] == ["user", "assistant", "user"]


def test_an_image_only_user_message_is_a_turn() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}
    turn = identify(anthropic({"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                              {"role": "user", "content": [image]}))
    assert turn is not None and not turn.continues


def test_a_system_message_after_the_user_turn_is_no_continuation() -> None:
    # Claude Code 2.1 sends its environment as a system message after the user's.
    turn = identify(anthropic({"role": "user", "content": "say hello"},
                              {"role": "system", "content": "# Environment ..."}))
    assert turn is not None and not turn.continues
