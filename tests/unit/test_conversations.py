"""Conversation and turn ids, from the request alone."""

from __future__ import annotations

from control_plane.routing.conversations import identify

SYSTEM = {"role": "system", "content": "you are a coding agent"}
ASK = {"role": "user", "content": "fix the failing test"}
CALL = {"role": "assistant", "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "run", "arguments": "{}"}}]}
RESULT = {"role": "tool", "tool_call_id": "c1", "content": "1 failed"}
ANSWER = {"role": "assistant", "content": "fixed"}
NEXT = {"role": "user", "content": "now add a test"}


def test_every_request_of_a_tool_loop_is_the_same_turn() -> None:
    first = identify([SYSTEM, ASK])
    looped = [identify([SYSTEM, ASK, CALL, RESULT]), identify([SYSTEM, ASK, CALL, RESULT, CALL, RESULT])]
    assert first is not None and not first.continues
    assert all(t is not None and t.turn == first.turn and t.continues for t in looped)


def test_a_new_user_message_is_a_new_turn_of_the_same_conversation() -> None:
    first, second = identify([SYSTEM, ASK]), identify([SYSTEM, ASK, CALL, RESULT, ANSWER, NEXT])
    assert first is not None and second is not None
    assert second.turn != first.turn and second.conversation == first.conversation and not second.continues


def test_different_conversations_differ_and_retries_match() -> None:
    a, b = identify([ASK]), identify([{"role": "user", "content": "fix the failing build"}])
    assert a is not None and b is not None and a.turn != b.turn and a.conversation != b.conversation
    assert identify([ASK]) == a
    assert identify([SYSTEM]) is None


def test_a_session_header_names_the_conversation() -> None:
    one, two = identify([ASK], session="s-1"), identify([ASK, ANSWER, NEXT], session="s-1")
    assert one is not None and two is not None
    assert one.conversation == two.conversation and one.turn != two.turn
    other = identify([ASK], session="s-2")
    assert other is not None and other.conversation != one.conversation
