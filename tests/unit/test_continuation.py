"""How each `assistant_prefix` style asks a model to continue a partial answer."""

from __future__ import annotations

from control_plane.apis.continuation import STYLES, continuable, continuation_body

BODY = {"model": "m", "messages": [{"role": "user", "content": "tell me"}], "stream": True}


def test_every_style_ends_with_the_partial_answer_as_the_assistant_turn() -> None:
    for style in STYLES:
        body = continuation_body(BODY, style, "the quick ")
        assert body["messages"][:-1] == BODY["messages"] and body["stream"] is True
        assert body["messages"][-1]["role"] == "assistant" and body["messages"][-1]["content"] == "the quick "
    assert BODY["messages"] == [{"role": "user", "content": "tell me"}]  # the app's body is not changed


def test_style_specific_fields() -> None:
    vllm = continuation_body(BODY, "vllm", "x")
    assert vllm["continue_final_message"] is True and vllm["add_generation_prompt"] is False
    assert continuation_body(BODY, "prefix", "x")["messages"][-1]["prefix"] is True
    assert "continue_final_message" not in continuation_body(BODY, "trailing", "x")


def test_only_single_choice_answers_are_continued() -> None:
    assert continuable(BODY) and continuable({**BODY, "n": 1})
    assert not continuable({**BODY, "n": 2})
