"""Which turns of a chat request the router sees."""

from __future__ import annotations

from router_model.conversation import latest_user_turn, message_text, select_conversation
from router_model.prompt import Message


def test_drops_system_developer_tool_and_empty_messages() -> None:
    messages = [
        {"role": "system", "content": "be nice"},
        {"role": "developer", "content": "rules"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]},
        {"role": "tool", "tool_call_id": "1", "content": "42"},
        {"role": "assistant", "content": "   "},
        {"role": "user", "content": "and now?"},
    ]
    assert select_conversation(messages) == [Message("user", "hi"), Message("user", "and now?")]


def test_keeps_only_text_parts_of_multipart_content() -> None:
    content = [
        {"type": "text", "text": "what is in"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "this picture?"},
    ]
    assert message_text(content) == "what is in\nthis picture?"
    assert select_conversation([{"role": "user", "content": content}]) == [
        Message("user", "what is in\nthis picture?")
    ]


def test_newest_turns_within_budget_oldest_first() -> None:
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"{i}" * 100} for i in range(10)]
    selected = select_conversation(messages, token_budget=100)  # 400 chars: the newest 4 turns
    assert [m.content[0] for m in selected] == ["6", "7", "8", "9"]


def test_oversized_latest_user_message_is_kept_whole() -> None:
    huge = "x" * 50_000
    selected = select_conversation([{"role": "user", "content": "old"}, {"role": "user", "content": huge}])
    assert selected == [Message("user", huge)]


def test_oversized_latest_assistant_message_is_not_forced_in() -> None:
    selected = select_conversation([{"role": "assistant", "content": "y" * 50_000}])
    assert selected == []


def test_malformed_messages_are_ignored_not_fatal() -> None:
    messages = ["nope", 3, {"content": "no role"}, {"role": "user", "content": 12}, {"role": "user", "content": "ok"}]
    assert select_conversation(messages) == [Message("user", "ok")]


def test_latest_user_turn_identifies_the_routed_turn() -> None:
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "tool", "content": "c"}]
    assert latest_user_turn(messages) == 0
    assert latest_user_turn([{"role": "system", "content": "s"}]) is None
