"""The one-step decision plan and request (router_model/one_step.py), with a fake tokenizer."""

from __future__ import annotations

import json

import pytest

from router_model.client import PreparedRoutes, build_request
from router_model.one_step import ANSWER_PREFIX, OneStepPlan, one_step_request, plan_one_step
from router_model.prompt import Message
from router_model.router import RouteSpec

VOCAB: dict[str, int] = {}


def tokenize(text: str) -> list[int]:
    """Words and punctuation, split at `_`: "code_generation" -> code, _, generation."""
    pieces, word = [], ""
    for char in text:
        if char.isalnum():
            word += char
            continue
        if word:
            pieces.append(word)
            word = ""
        pieces.append(char)
    if word:
        pieces.append(word)
    return [VOCAB.setdefault(p, len(VOCAB)) for p in pieces]


def detokenize(token: int) -> str:
    return {v: k for k, v in VOCAB.items()}[token]


def test_distinct_first_tokens_make_a_plan() -> None:
    plan = plan_one_step(["code_generation", "bug_fixing", "summarization"], tokenize, detokenize)
    assert plan is not None
    assert plan.routes_by_text == {"code": "code_generation", "bug": "bug_fixing",
                                   "summarization": "summarization", "other": "other"}
    assert len(plan.token_ids) == 4


@pytest.mark.parametrize("names", [["code_generation", "code_review"], ["other_things"]])
def test_a_shared_first_token_means_the_full_answer(names: list[str]) -> None:
    assert plan_one_step(names, tokenize, detokenize) is None


def test_a_name_merged_into_the_prefix_means_the_full_answer() -> None:
    def merging(text: str) -> list[int]:
        tokens = tokenize(text)
        return [999] + tokens[4:] if text.startswith(ANSWER_PREFIX) and text != ANSWER_PREFIX else tokens
    assert plan_one_step(["code"], merging, detokenize) is None


def test_the_request_is_the_cards_plus_a_forced_answer_prefix() -> None:
    prepared = PreparedRoutes.of([RouteSpec("code_generation", "writing code")])
    full = build_request(prepared, [Message("user", "write a sort")], "Arch-Router")
    body = one_step_request(full, OneStepPlan((7, 9), {"code": "code_generation", "other": "other"}))
    assert body["messages"][0] == full["messages"][0]  # the card's prompt, byte for byte
    assert body["messages"][1] == {"role": "assistant", "content": '{"route": "'}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert body["allowed_token_ids"] == [7, 9] and body["max_tokens"] == 1
    assert "structured_outputs" not in body and body["temperature"] == 0
    assert json.loads(json.dumps(full)) == full  # the full request is left as it was
