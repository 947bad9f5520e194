"""Tolerant parsing of the router model's answer."""

from __future__ import annotations

import pytest

from router_model.answer import parse_answer

ROUTES = {"code_generation", "bug_fixing"}


@pytest.mark.parametrize(
    "text",
    [
        '{"route": "bug_fixing"}',
        "{'route': 'bug_fixing'}",
        '```json\n{"route": "bug_fixing"}\n```',
        'Sure! The answer is {"route": "bug_fixing"} because it is a bug.',
        '  {"route" : "bug_fixing" }  ',
        '{"route": "bug_fixing"',  # truncated by max_tokens
    ],
)
def test_accepts_the_forms_reference_clients_accept(text: str) -> None:
    parsed = parse_answer(text, ROUTES)
    assert (parsed.route, parsed.reason) == ("bug_fixing", "matched")


@pytest.mark.parametrize(
    "text,reason",
    [
        ('{"route": "other"}', "other"),
        ('{"route": ""}', "other"),
        ('{"route": "weather"}', "unknown_route"),
        ("I don't know", "unparseable"),
        ("", "unparseable"),
        ('{"route": 3}', "unparseable"),
        ('["route", "bug_fixing"]', "unparseable"),
    ],
)
def test_no_route_with_reason(text: str, reason: str) -> None:
    parsed = parse_answer(text, ROUTES)
    assert parsed.route is None
    assert parsed.reason == reason
