"""`switchyard eval`: routing accuracy and decision latency of a policy on a labelled dataset.

Every decision goes through `choose_model`, the processor's own decision path. A dataset is JSON
lines: `{"messages": [...], "route": "<name>|other"}` judges the latest user turn;
`{"messages": [...], "routes": [...]}` judges every user turn, one expected route each (multi-turn).

Multi-turn scores follow the Arch-Router paper: turn accuracy counts every judged turn; a span is a
run of consecutive turns with the same expected route, right when all its turns are; a
conversation is right when all its turns are.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from control_plane.policy.model import Policy
from control_plane.routing.choice import choose_model
from router_model.router import NO_ROUTE, Router


class DatasetError(ValueError):
    """A dataset line that cannot be evaluated; the message says `file:line: what`."""


@dataclass(frozen=True)
class Item:
    """One conversation and the route expected at each judged user turn."""

    messages: list[Any]
    turns: tuple[int, ...]  # indexes into `messages` of the judged user messages
    expected: tuple[str, ...]


def _user_indexes(messages: list[Any]) -> list[int]:
    return [i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"]


def parse_item(data: Any, where: str) -> Item:
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        raise DatasetError(f"{where}: expected an object with a `messages` list")
    messages = data["messages"]
    users = _user_indexes(messages)
    if not users:
        raise DatasetError(f"{where}: no user message to route")
    if isinstance(data.get("routes"), list):
        expected = data["routes"]
        if len(expected) != len(users) or not all(isinstance(r, str) for r in expected):
            raise DatasetError(
                f"{where}: `routes` needs one route name per user message ({len(users)})"
            )
        return Item(messages, tuple(users), tuple(expected))
    if isinstance(data.get("route"), str):
        return Item(messages, (users[-1],), (data["route"],))
    raise DatasetError(f"{where}: expected `route` (a name) or `routes` (one per user message)")


def load_dataset(path: Path, limit: int | None = None) -> list[Item]:
    items = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError as exc:
                raise DatasetError(f"{path}:{number}: not JSON: {exc}") from None
            items.append(parse_item(data, f"{path}:{number}"))
            if limit is not None and len(items) >= limit:
                break
    return items


@dataclass(frozen=True)
class Judged:
    """One decision: what was expected, what was decided, how, and how long it took; the judged
    user turn, and the router's winning score and runner-up when it scores (embedding tier)."""

    item: int
    expected: str
    predicted: str
    kind: str
    ms: float
    text: str = ""
    score: float | None = None
    runner_up: str | None = None
    runner_up_score: float | None = None

    @property
    def right(self) -> bool:
        return self.expected == self.predicted


def _ratio(hits: int, total: int) -> float | None:
    return hits / total if total else None


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]  # nearest-rank: an observed value, no interpolation


@dataclass
class Report:
    judged: list[Judged] = field(default_factory=list)

    def metrics(self) -> dict[str, Any]:
        judged = self.judged
        in_scope = [j for j in judged if j.expected != NO_ROUTE]
        said_other = [j for j in judged if j.predicted == NO_ROUTE]
        expected_other = [j for j in judged if j.expected == NO_ROUTE]
        latencies = [j.ms for j in judged]
        return {
            "decisions": len(judged),
            "conversations": len({j.item for j in judged}),
            "accuracy": _ratio(sum(j.right for j in judged), len(judged)),
            "in_scope_accuracy": _ratio(sum(j.right for j in in_scope), len(in_scope)),
            "other_recall": _ratio(sum(j.right for j in expected_other), len(expected_other)),
            "other_precision": _ratio(sum(j.right for j in said_other), len(said_other)),
            "span_accuracy": self._span_accuracy(),
            "conversation_accuracy": self._conversation_accuracy(),
            "p50_ms": _percentile(latencies, 50),
            "p99_ms": _percentile(latencies, 99),
            "kinds": dict(Counter(j.kind for j in judged).most_common()),
            "confusion": self.confusion(),
            "misses": [self._miss(j) for j in judged if not j.right],
        }

    @staticmethod
    def _miss(j: Judged) -> dict[str, Any]:
        return {"item": j.item, "expected": j.expected, "decided": j.predicted, "kind": j.kind,
                "score": j.score, "runner_up": j.runner_up, "runner_up_score": j.runner_up_score,
                "text": j.text}

    def _by_item(self) -> dict[int, list[Judged]]:
        grouped: dict[int, list[Judged]] = defaultdict(list)
        for j in self.judged:
            grouped[j.item].append(j)
        return grouped

    def _span_accuracy(self) -> float | None:
        spans: list[bool] = []
        for turns in self._by_item().values():
            for index, turn in enumerate(turns):
                if index == 0 or turn.expected != turns[index - 1].expected:
                    spans.append(turn.right)
                else:
                    spans[-1] = spans[-1] and turn.right
        return _ratio(sum(spans), len(spans))

    def _conversation_accuracy(self) -> float | None:
        conversations = [all(t.right for t in turns) for turns in self._by_item().values()]
        return _ratio(sum(conversations), len(conversations))

    def confusion(self) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = defaultdict(dict)
        for j in self.judged:
            row = table[j.expected]
            row[j.predicted] = row.get(j.predicted, 0) + 1
        return dict(table)


Progress = Callable[[int, int], None]


async def evaluate(
    policy: Policy, router: Router, items: Sequence[Item], progress: Progress | None = None
) -> Report:
    """Decide every judged turn, one at a time (so latencies are those of an idle router)."""
    report = Report()
    total = sum(len(item.turns) for item in items)
    for number, item in enumerate(items):
        for turn, expected in zip(item.turns, item.expected):
            started = time.perf_counter()
            _, decision = await choose_model(
                policy, policy.router_alias, item.messages[: turn + 1], router
            )
            ms = (time.perf_counter() - started) * 1000
            text = _text(item.messages[turn])
            report.judged.append(Judged(number, expected, decision.route, decision.kind, ms, text,
                                        decision.score, decision.runner_up, decision.runner_up_score))
            if progress is not None:
                progress(len(report.judged), total)
    return report


def _text(message: dict[str, Any]) -> str:
    """A message's text: its string content, or its text parts joined."""
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


def stderr_progress(every_s: float = 2.0) -> Progress:
    """A progress line on stderr at most every `every_s` seconds (and at the end)."""
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] >= every_s:
            last[0] = now
            end = "\n" if done == total else ""
            print(f"\r  {done}/{total} decisions", end=end, file=sys.stderr, flush=True)

    return show


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def format_report(metrics: dict[str, Any], title: str) -> str:
    lines = [
        title,
        f"decisions            {metrics['decisions']} ({metrics['conversations']} conversations)",
        f"accuracy             {_pct(metrics['accuracy'])}",
        f"in-scope accuracy    {_pct(metrics['in_scope_accuracy'])}",
        f"other recall         {_pct(metrics['other_recall'])}",
        f"other precision      {_pct(metrics['other_precision'])}",
    ]
    if metrics["decisions"] > metrics["conversations"]:  # multi-turn items present
        lines += [
            f"turn accuracy        {_pct(metrics['accuracy'])}",
            f"span accuracy        {_pct(metrics['span_accuracy'])}",
            f"conversation accuracy {_pct(metrics['conversation_accuracy'])}",
        ]
    lines.append(f"decision p50 / p99   {metrics['p50_ms']:.1f} / {metrics['p99_ms']:.1f} ms")
    kinds = ", ".join(f"{kind} {count}" for kind, count in metrics["kinds"].items())
    lines += [f"decision kinds       {kinds}", "", _confusion_table(metrics["confusion"])]
    return "\n".join(lines)


MISS_CHARS = 100


def format_misses(misses: Sequence[dict[str, Any]], limit: int) -> str:
    """The requests decided wrong, one per line: expected -> decided, the scores, the text."""
    if not misses or limit == 0:
        return ""
    shown = misses if limit < 0 else misses[:limit]
    lines = [f"wrong: {len(misses)}" + (f" (the first {len(shown)}; --misses N for more)" if len(shown) < len(misses) else "")]
    for miss in shown:
        scores = ""
        if miss["score"] is not None:
            scores = (f" [{miss['decided']} {miss['score']:.3f}, runner-up {miss['runner_up']} "
                      f"{miss['runner_up_score']:.3f}]")
        text = " ".join(miss["text"].split())
        text = text if len(text) <= MISS_CHARS else text[:MISS_CHARS - 1] + "…"
        lines.append(f"  #{miss['item'] + 1} {miss['expected']} -> {miss['decided']}{scores}: {text}")
    return "\n".join(lines)


def _confusion_table(confusion: dict[str, dict[str, int]]) -> str:
    """Rows: expected route; columns: decided route; plus each row's recall."""
    names = sorted({*confusion, *(p for row in confusion.values() for p in row)},
                   key=lambda n: (n == NO_ROUTE, n))
    width = max(len(n) for n in [*names, "expected \\ decided"])
    header = "expected \\ decided".ljust(width) + "".join(f" {n[:8]:>8}" for n in names) + "   recall"
    rows = [header]
    for expected in names:
        if expected not in confusion:
            continue
        row = confusion[expected]
        cells = "".join(f" {row.get(n, 0) or '.':>8}" for n in names)
        recall = row.get(expected, 0) / sum(row.values())
        rows.append(f"{expected.ljust(width)}{cells}   {recall * 100:5.1f} %")
    return "\n".join(rows)
