"""`switchyard eval` metrics on a tiny hand-checked dataset, decided by a scripted router."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from control_plane.policy.loader import parse_policy
from control_plane.routing.evaluation import DatasetError, evaluate, format_misses, format_report, load_dataset
from router_model.router import RouterOutcome, RouterQuery
from tests.unit.test_policy_loader import GOOD

POLICY = GOOD.replace("""routes:
  - name: code_generation
    description: generating new code
    model: gpt-4o
""", """routes:
  - name: code
    description: writing code
    model: gpt-4o
  - name: travel
    description: booking trips
    model: small
""")


@dataclass
class ByKeyword:
    """Decides by a keyword in the latest user turn; `None` means the router failed."""

    answers: dict[str, str | None]
    asked: list[str] = field(default_factory=list)

    async def decide(self, query: RouterQuery) -> RouterOutcome:
        text = query.conversation[-1].content
        self.asked.append(text)
        route = self.answers[text]
        if route is None:
            return RouterOutcome(None, "router_timeout", 5.0)
        return RouterOutcome(None if route == "other" else route, "matched" if route != "other" else "other", 1.0)


def write(path: Path, items: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(i) for i in items) + "\n")
    return path


def user(text: str) -> dict:
    return {"role": "user", "content": text}


async def test_single_turn_metrics_are_exact(tmp_path: Path) -> None:
    policy = parse_policy(POLICY, "p.yaml", "p")
    # expected -> decided: code->code, code->travel, travel->travel, other->other, other->code,
    # travel->(router timeout: default model, route `other`)
    items = [("c1", "code", "code"), ("c2", "code", "travel"), ("t1", "travel", "travel"),
             ("o1", "other", "other"), ("o2", "other", "code"), ("t2", "travel", None)]
    dataset = write(tmp_path / "d.jsonl", [{"messages": [user(t)], "route": e} for t, e, _ in items])
    router = ByKeyword({t: d for t, _, d in items})
    report = await evaluate(policy, router, load_dataset(dataset))
    m = report.metrics()
    assert m["decisions"] == 6 and m["conversations"] == 6
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["in_scope_accuracy"] == pytest.approx(2 / 4)
    assert m["other_recall"] == pytest.approx(1 / 2)
    assert m["other_precision"] == pytest.approx(1 / 2)  # decided other: o1 (right), t2 (wrong)
    assert m["confusion"] == {"code": {"code": 1, "travel": 1}, "travel": {"travel": 1, "other": 1},
                              "other": {"other": 1, "code": 1}}
    assert m["kinds"] == {"routed:arch-router": 5, "fallback:router_timeout": 1}
    assert m["span_accuracy"] == pytest.approx(3 / 6) and m["conversation_accuracy"] == pytest.approx(3 / 6)
    text = format_report(m, "title")
    assert "in-scope accuracy    50.0 %" in text and "span accuracy" not in text


async def test_multi_turn_turn_span_and_conversation_accuracy(tmp_path: Path) -> None:
    policy = parse_policy(POLICY, "p.yaml", "p")
    reply = {"role": "assistant", "content": "ok"}
    conversations = [
        # expected spans: [code, code] [travel]; decided: code, code, other -> 2/3 turns, 1/2 spans
        {"messages": [user("a1"), reply, user("a2"), reply, user("a3")], "routes": ["code", "code", "travel"]},
        # one span [travel, travel], all right
        {"messages": [user("b1"), reply, user("b2")], "routes": ["travel", "travel"]},
        # spans [code] [other] [code]: decided code, code, code -> 2/3 turns, 2/3 spans
        {"messages": [user("c1"), user("c2"), user("c3")], "routes": ["code", "other", "code"]},
    ]
    decided = {"a1": "code", "a2": "code", "a3": "other", "b1": "travel", "b2": "travel",
               "c1": "code", "c2": "code", "c3": "code"}
    router = ByKeyword(decided)
    report = await evaluate(policy, router, load_dataset(write(tmp_path / "m.jsonl", conversations)))
    m = report.metrics()
    assert router.asked == ["a1", "a2", "a3", "b1", "b2", "c1", "c2", "c3"]  # each turn, in order
    assert m["decisions"] == 8 and m["conversations"] == 3
    assert m["accuracy"] == pytest.approx(6 / 8)  # turn accuracy
    assert m["span_accuracy"] == pytest.approx(4 / 6)  # a:1/2, b:1/1, c:2/3
    assert m["conversation_accuracy"] == pytest.approx(1 / 3)
    assert "span accuracy        66.7 %" in format_report(m, "title")


def test_bad_dataset_lines_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"messages": [user("x"), user("y")], "routes": ["code"]}) + "\n")
    with pytest.raises(DatasetError, match=r"bad.jsonl:1: `routes` needs one route name per user message \(2\)"):
        load_dataset(path)
    path.write_text("\n{not json\n")
    with pytest.raises(DatasetError, match=r"bad.jsonl:2: not JSON"):
        load_dataset(path)


@dataclass
class Scoring:
    """Decides like the embedding tier would report it: a winner's score and a runner-up."""

    async def decide(self, query: RouterQuery) -> RouterOutcome:
        text = query.conversation[-1].content
        if "trip" in text:
            return RouterOutcome("travel", "matched", 1.0, "embedding", None, 0.61, "code", 0.42)
        return RouterOutcome(None, "other", 1.0, "embedding", None, 0.35, "code", 0.3)


async def test_misses_name_the_request_what_was_decided_and_the_scores(tmp_path: Path) -> None:
    policy = parse_policy(POLICY, "p.yaml", "p")
    items = [{"messages": [user("book a trip to Rome")], "route": "travel"},
             {"messages": [user("write a sort\nfunction   in Go")], "route": "code"},
             {"messages": [user("plan my trip"), {"role": "assistant", "content": "ok"}, user("tell me a joke")],
              "routes": ["travel", "other"]}]
    report = await evaluate(policy, Scoring(), load_dataset(write(tmp_path / "d.jsonl", items)))
    misses = report.metrics()["misses"]
    assert misses == [{"item": 1, "expected": "code", "decided": "other", "kind": "routed:embedding", "score": 0.35,
                       "runner_up": "code", "runner_up_score": 0.3, "text": "write a sort\nfunction   in Go"}]
    assert format_misses(misses, 20) == (
        "wrong: 1\n  #2 code -> other [other 0.350, runner-up code 0.300]: write a sort function in Go")
    assert format_misses(misses, 0) == ""
    many = misses * 3
    assert format_misses(many, 2).splitlines()[0] == "wrong: 3 (the first 2; --misses N for more)"
