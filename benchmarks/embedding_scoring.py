"""The embedding tier's scoring, variant by variant: the figures behind router_model/embedding.py.

    python benchmarks/embedding_scoring.py [--data ../shared/data/clinc150] [--only NAME] [--train]
                                           [--encoder minilm|minilm-int8]

Policies: CLINC150's 10 routes with descriptions only, and with the 30 train examples per route of
eval/clinc150/examples-30.yaml; Switchyard's quickstart policy (policies/default.yaml) on
eval/quickstart.jsonl (the tuning part only), and eval/short (three short descriptions).
For each variant, on CLINC150:
- sep 80/85/90: in-scope accuracy on dev when the `other` line lets exactly 20/15/10 % of the 200
  `other` queries (dev's 100 and train's 100) through: how well the scores separate, whatever
  the line;
- default: in-scope on dev, `other` recall on dev's and on train's `other` queries, with the line
  calibrated against the background set at the strictness a policy gets when it sets none (0.88;
  0.85 for the descriptions-only policy: calibration.default_strictness);
- tuned CV: 5-fold cross-validation on dev, the line picked on 4 folds for 90 % `other` recall
  (as `switchyard tune --other-recall 0.9` does), measured on the 5th.
And the accuracy at default of requests reshaped (`forms`): CLINC dev queries (descriptions
policy) and the quickstart set wrapped in request forms ("could you please …, any ideas?"), the
quickstart set after a long unrelated paste and before one, and its bug reports pasted before a
short question ("<error>\n\nwhy?").
`--train` adds the kept scoring's default on the train split (15,000 in-scope queries never used
to choose anything; minus the examples' own queries for examples-30).
The variants re-score cached vectors with numpy; the kept one is checked against the real
router (router_model/embedding.py) on a sample, so the figures are the router's.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from router_model.calibration import (  # noqa: E402
    OTHER_WEIGHT,
    background_requests,
    cut_for,
    default_strictness,
    gated_evidence,
    nearest_mean,
)
from router_model.embedding import EmbeddingRouter, Gate  # noqa: E402
from router_model.encoder import Encoder  # noqa: E402
from router_model.encoders import DEFAULT_ENCODER, ENCODERS, load_encoder  # noqa: E402
from router_model.phrasing import (  # noqa: E402
    anchors_of,
    instruction_head,
    request_pieces,
    without_request_form,
)
from router_model.prompt import Message  # noqa: E402
from router_model.router import NO_ROUTE, RouteSpec  # noqa: E402


def plain_anchors(route: RouteSpec) -> tuple[list[str], list[str]]:
    """Before issue 19: the description, its head, its comma/semicolon phrases; the examples."""
    head, colon, rest = route.description.partition(":")
    phrases = [p.strip() for p in re.split(r"[,;]", rest if colon else route.description)]
    described = list(dict.fromkeys(t for t in [route.description, head.strip() if colon else "", *phrases] if t))
    return described, [e for e in route.examples if e not in described]


def plain_pieces(text: str) -> list[str]:
    """Before issue 19: the text and its instruction head."""
    return list(dict.fromkeys([text.strip(), instruction_head(text) or text.strip()]))


def form_pieces(text: str) -> list[str]:
    """+ the head taken after the request form, and without its own (no clause, no paste rule)."""
    head = instruction_head(without_request_form(text)) or text.strip()
    return list(dict.fromkeys(p for p in (text.strip(), head, without_request_form(head)) if p))


def clause_pieces(text: str) -> list[str]:
    """+ that head without its relative clause ("Write a Python function that returns the median
    of a list" -> "Write a Python function"), no paste rule."""
    pieces = form_pieces(text)
    core = re.split(r"\s(?:that|which|who|whose|where)\s", pieces[-1], maxsplit=1, flags=re.IGNORECASE)[0].strip()
    return list(dict.fromkeys(pieces + ([core] if len(core.split()) > 1 else [])))


@dataclass(frozen=True)
class Variant:
    name: str
    anchors: Callable[[RouteSpec], tuple[list[str], list[str]]] = anchors_of
    pieces: Callable[[str], list[str]] = request_pieces
    neighbours: int = 2  # a route's score: the mean of its best anchors
    examples_share: float | None = 0.7  # None: description and examples anchors pooled
    other_weight: float = 0.5  # how much likeness to off-topic requests raises the line
    head: float = 0.0  # weight of a linear head's log-probability in the choice among routes (0: none)


KEPT = Variant("kept: all of the below")
VARIANTS = [
    Variant("before: best anchor, plain anchors, text+head", plain_anchors, plain_pieces, 1, None, 0.0),
    Variant("+ mean of 2 best anchors", plain_anchors, plain_pieces, 2, None, 0.0),
    Variant("+ and/or parts, phrase (head) anchors", anchors_of, plain_pieces, 2, None, 0.0),
    Variant("+ off-topic likeness x 0.5", anchors_of, plain_pieces, 2, None, 0.5),
    Variant("+ 0.3 description / 0.7 examples", anchors_of, plain_pieces, 2, 0.7, 0.5),
    Variant("+ request form off the head", anchors_of, form_pieces, 2, 0.7, 0.5),
    KEPT,  # + a question after a paste asks; the text's first 320 characters only
    replace(KEPT, name="dropped: off-topic likeness x 1.0", other_weight=1.0),
    replace(KEPT, name="dropped: off-topic likeness x 0.75", other_weight=0.75),
    replace(KEPT, name="dropped: off-topic likeness x 0.25", other_weight=0.25),
    replace(KEPT, name="dropped: mean of 3 best anchors", neighbours=3),
    replace(KEPT, name="dropped: best anchor only", neighbours=1),
    replace(KEPT, name="dropped: anchors pooled (no mix)", examples_share=None),
    Variant("dropped: + the head without its relative clause", anchors_of, clause_pieces, 2, 0.7, 0.5),
    replace(KEPT, name="dropped: + a linear head choosing the route x 0.02", head=0.02),
    replace(KEPT, name="dropped: + a linear head choosing the route x 0.05", head=0.05),
]


def linear_head(anchors: np.ndarray, labels: np.ndarray, routes: int, l2: float = 1e-4, scale: float = 10.0,
                steps: int = 300, rate: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Softmax regression on the anchors (class-balanced, plain gradient descent): learns which
    directions tell routes apart, where nearest anchors also follow the topic. Weights, bias."""
    x = anchors * scale
    target = np.eye(routes)[labels]
    counts = np.bincount(labels, minlength=routes)
    weight = (len(labels) / (routes * np.maximum(counts, 1)))[labels][:, None] / len(labels)
    w, b = np.zeros((x.shape[1], routes)), np.zeros(routes)
    for _ in range(steps):
        z = x @ w + b
        p = np.exp(z - z.max(axis=1, keepdims=True))
        gradient = (p / p.sum(axis=1, keepdims=True) - target) * weight
        w -= rate * (x.T @ gradient + l2 * w)
        b -= rate * gradient.sum(axis=0)
    return w * scale, b


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


class Vectors:
    """Every text encoded once (the real encoder), looked up by text."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.known: dict[str, np.ndarray] = {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.known]
        for start in range(0, len(missing), 256):
            chunk = missing[start:start + 256]
            self.known.update(zip(chunk, self.encoder.encode(chunk, cache=False)))
        return np.stack([self.known[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)


class Scoring:
    """One variant's scores for one policy: routes' scores and off-topic likeness, vectorized."""

    def __init__(self, variant: Variant, routes: Sequence[RouteSpec], vectors: Vectors,
                 other_examples: Sequence[str] = ()) -> None:
        self.variant, self.vectors, self.names = variant, vectors, [r.name for r in routes]
        texts: list[str] = []
        self.spans = []
        for route in routes:
            described, examples = variant.anchors(route)
            self.spans.append((len(texts), len(texts) + len(described), len(texts) + len(described) + len(examples)))
            texts += described + examples
        self.anchors = vectors(texts)
        if variant.head:
            labels = np.concatenate([np.full(end - start, i) for i, (start, _, end) in enumerate(self.spans)])
            self.head = linear_head(self.anchors, labels, len(self.spans))
        self.other = vectors(list(other_examples))
        self.background = vectors(list(background_requests()))
        scores, likeness, _, _ = self.score(list(background_requests()), leave_out_background=True)
        self.background_evidence = evidence(scores.max(axis=1), likeness, variant.other_weight)
        # The line a policy with these routes gets when it sets neither threshold nor strictness.
        self.default_cut = cut_for(self.background_evidence, default_strictness(routes))

    def _route(self, sims: np.ndarray, start: int, split: int, end: int) -> np.ndarray:
        k = self.variant.neighbours
        if self.variant.examples_share is None or split == end:
            return nearest_mean(sims[:, start:end], k)
        share = self.variant.examples_share
        return (1 - share) * nearest_mean(sims[:, start:split], k) + share * nearest_mean(sims[:, split:end], k)

    def score(self, texts: Sequence[str],
              leave_out_background: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per text: route scores, off-topic likeness, `other` examples' score (-inf: none), and
        what chooses among the routes (the route scores, plus the linear head's if any)."""
        pieces = [self.variant.pieces(t) for t in texts]
        starts = np.cumsum([0] + [len(p) for p in pieces[:-1]])
        flat = self.vectors([p for each in pieces for p in each])
        to_anchors = np.maximum.reduceat(flat @ self.anchors.T, starts, axis=0)
        to_background = np.maximum.reduceat(flat @ self.background.T, starts, axis=0)
        if leave_out_background:
            count = len(texts)
            to_background = to_background[~np.eye(count, dtype=bool)].reshape(count, count - 1)
        routes = np.stack([self._route(to_anchors, *span) for span in self.spans], axis=1)
        examples = np.full(len(texts), -np.inf)
        if len(self.other):
            examples = nearest_mean(np.maximum.reduceat(flat @ self.other.T, starts, axis=0), self.variant.neighbours)
        choice = routes
        if self.variant.head:
            weights, bias = self.head
            choice = routes + self.variant.head * np.maximum.reduceat(log_softmax(flat @ weights + bias), starts, axis=0)
        return routes, nearest_mean(to_background, 3), examples, choice


def evidence(best: np.ndarray, likeness: np.ndarray, weight: float, examples: np.ndarray | None = None) -> np.ndarray:
    """The router's evidence (calibration.gated_evidence), with this variant's weight on likeness
    instead of OTHER_WEIGHT."""
    examples = np.full(len(best), -np.inf) if examples is None else examples
    return np.asarray(gated_evidence(best, likeness * weight / OTHER_WEIGHT, examples))


@dataclass
class Judged:
    best: np.ndarray  # best route's name
    evidence: np.ndarray  # routed to it exactly when the cut is at most this
    expected: np.ndarray

    @property
    def in_scope(self) -> np.ndarray:
        return self.expected != NO_ROUTE

    def decide(self, cut: float) -> np.ndarray:
        return np.where(self.evidence >= cut, self.best, NO_ROUTE)


def judge(scoring: Scoring, texts: Sequence[str], expected: Sequence[str]) -> Judged:
    routes, likeness, examples, choice = scoring.score(texts)
    best = routes.max(axis=1)
    return Judged(np.array(scoring.names)[choice.argmax(axis=1)],
                  evidence(best, likeness, scoring.variant.other_weight, examples), np.array(expected))


def pct(value: float) -> str:
    return f"{value * 100:5.1f}"


def separation(j: Judged, others: np.ndarray) -> list[float]:
    """In-scope accuracy when the line lets (1 - recall) of `others` (evidence) through."""
    right = (j.best == j.expected) & j.in_scope
    return [float(np.mean(right[j.in_scope] & (j.evidence[j.in_scope] >= np.quantile(others, r)))) for r in (0.8, 0.85, 0.9)]


def cross_validated(j: Judged, background_evidence: np.ndarray, target: float = 0.9, k: int = 5) -> tuple[float, float]:
    """The line picked on k-1 folds (round robin within each expected route) for `target` other
    recall, on the strictness grid as `switchyard tune` does; measured on the held-out fold."""
    seen: dict[str, int] = {}
    folds = []
    for label in j.expected:
        folds.append(seen.get(label, 0) % k)
        seen[label] = seen.get(label, 0) + 1
    fold_of = np.array(folds)
    cuts = np.array([cut_for(background_evidence, s) for s in np.round(np.arange(0.5, 1.0005, 0.001), 3)])
    right = np.zeros(len(j.expected), dtype=bool)
    for fold in range(k):
        train, test = fold_of != fold, fold_of == fold
        others = j.evidence[train & ~j.in_scope]
        recalls = (others[None, :] < cuts[:, None]).mean(axis=1)
        reached = np.nonzero(recalls >= target)[0]
        cut = cuts[reached[0]] if len(reached) else cuts[-1]
        right[test] = (j.decide(cut) == j.expected)[test]
    return float(right[j.in_scope].mean()), float(right[~j.in_scope].mean())


PREFIXES = ["can you ", "could you please ", "I need to know ", "I'd like to know ", "hey, ", "please ",
            "do you know ", "hi! can you tell me ", "I was wondering if you could tell me ", "help me "]
SUFFIXES = ["", "", " please", " thanks", ", any ideas?", " for me"]
ARTICLE = ("The city council met on Tuesday evening to discuss the new budget. After three hours of debate, "
           "members agreed to increase funding for parks and libraries and to cut road repairs by ten percent. "
           "Residents who spoke were mostly in favour of the parks. The final vote is expected next month. ") * 3
CODE = ("def load(path):\n    with open(path) as f:\n        data = json.load(f)\n    return [Item(**row) for row in "
        "data['rows'] if row.get('active')]\n\nclass Item:\n    def __init__(self, id, name, price):\n"
        "        self.id, self.name, self.price = id, name, price\n") * 2
QUESTIONS = ["why?", "what does this mean?", "any idea?", "help please", "what's going on here?"]


def reshaped(texts: Sequence[str], labels: Sequence[str]) -> dict[str, tuple[list[str], list[str]]]:
    """The quickstart set in other shapes (deterministic)."""
    wrapped = in_forms([t[0].lower() + t[1:] for t in texts])
    unrelated = [CODE if label == "summarization" else ARTICLE for label in labels]
    bugs = [(f"{t}\n\n{QUESTIONS[i % 5]}", label) for i, (t, label) in enumerate(zip(texts, labels)) if label == "bug_fixing"]
    return {"forms": (wrapped, list(labels)),
            "paste before": ([f"{u}\n\n{t}" for u, t in zip(unrelated, texts)], list(labels)),
            "paste after": ([f"{t}\n\n{CODE if label in ('code_generation', 'bug_fixing') else ARTICLE}"
                             for t, label in zip(texts, labels)], list(labels)),
            "error, then why?": ([t for t, _ in bugs], [label for _, label in bugs])}


def in_forms(texts: Sequence[str]) -> list[str]:
    return [PREFIXES[i % 10] + t + SUFFIXES[i % 6] for i, t in enumerate(texts)]


def read(path: Path) -> tuple[list[str], list[str]]:
    items = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [i["messages"][-1]["content"] for i in items], [i["route"] for i in items]


def policy_routes(path: Path) -> tuple[list[RouteSpec], list[str]]:
    data = yaml.safe_load(path.read_text())
    routes = [RouteSpec(r["name"], r["description"], tuple(r.get("examples", []))) for r in data["routes"]]
    return routes, list(((data.get("router") or {}).get("embedding") or {}).get("other_examples", []))


def check_against_router(scoring: Scoring, routes: Sequence[RouteSpec], texts: Sequence[str], encoder: Encoder) -> None:
    """The kept variant must be the router itself."""
    router = EmbeddingRouter(encoder, routes, None, Gate())
    mine = judge(scoring, texts, ["x"] * len(texts))
    for text, best, ev in zip(texts, mine.best, mine.evidence):
        scores = router.scores([Message("user", text)])
        assert scores is not None and scores.routes[0].name == best and abs(scores.evidence - ev) < 1e-4, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "clinc150"))
    parser.add_argument("--only", help="only variants whose name contains this")
    parser.add_argument("--train", action="store_true", help="also the kept scoring on the train split")
    parser.add_argument("--encoder", default=DEFAULT_ENCODER, choices=list(ENCODERS),
                        help="the sentence encoder (router.embedding.encoder)")
    args = parser.parse_args()
    data = Path(args.data)
    dev_texts, dev_labels = read(data / "dev.jsonl")
    train_texts, train_labels = read(data / "train.jsonl")
    train_other = [t for t, label in zip(train_texts, train_labels) if label == NO_ROUTE]
    described, _ = policy_routes(data / "policy.yaml")
    with_examples, _ = policy_routes(ROOT / "eval" / "clinc150" / "examples-30.yaml")
    quick_routes, quick_others = policy_routes(ROOT / "policies" / "default.yaml")
    quick = read(ROOT / "eval" / "quickstart.jsonl")
    short_routes, _ = policy_routes(ROOT / "eval" / "short" / "policy.yaml")
    short = read(ROOT / "eval" / "short" / "requests.jsonl")
    encoder = load_encoder(args.encoder)
    vectors = Vectors(encoder)
    print("variant | CLINC policy: sep 80/85/90 | default in-scope, other dev/train | tuned CV in-scope/other"
          " || quickstart, short: accuracy at default")
    for variant in VARIANTS:
        if args.only and args.only not in variant.name:
            continue
        cells = []
        for routes in (described, with_examples):
            scoring = Scoring(variant, routes, vectors)
            if variant is KEPT:
                check_against_router(scoring, routes, dev_texts[::97] + train_other[::9], encoder)
            dev = judge(scoring, dev_texts, dev_labels)
            extra = judge(scoring, train_other, [NO_ROUTE] * len(train_other))
            cut = scoring.default_cut
            sep = separation(dev, np.concatenate([dev.evidence[~dev.in_scope], extra.evidence]))
            decided = dev.decide(cut)
            cv = cross_validated(dev, scoring.background_evidence)
            cells.append(f"{'/'.join(pct(s).strip() for s in sep)} | {pct(np.mean(decided[dev.in_scope] == dev.expected[dev.in_scope]))}, "
                         f"{pct(np.mean(decided[~dev.in_scope] == NO_ROUTE)).strip()}/{pct(np.mean(extra.decide(cut) == NO_ROUTE)).strip()} | "
                         f"{pct(cv[0]).strip()}/{pct(cv[1]).strip()}")
        own = []
        quick_scoring = Scoring(variant, quick_routes, vectors, quick_others)
        sets = [(quick_scoring, quick), (Scoring(variant, short_routes, vectors), short),
                (Scoring(variant, described, vectors), (in_forms(dev_texts), dev_labels)),
                *[(quick_scoring, shaped) for shaped in reshaped(*quick).values()]]
        for scoring, (texts, labels) in sets:
            j = judge(scoring, texts, labels)
            own.append(pct(np.mean(j.decide(scoring.default_cut) == j.expected)).strip())
        print(f"{variant.name}\n  descriptions: {cells[0]}\n  examples-30:  {cells[1]}\n  quickstart {own[0]}, short {own[1]}"
              f"\n  reshaped: forms CLINC descriptions {own[2]}, quickstart {own[3]}; quickstart paste before "
              f"{own[4]}, after {own[5]}; error, then why? {own[6]}", flush=True)
    if args.train:
        in_scope = [(t, label) for t, label in zip(train_texts, train_labels) if label != NO_ROUTE]
        for name, routes in (("descriptions", described), ("examples-30", with_examples)):
            used = {e for r in routes for e in r.examples}
            texts = [t for t, _ in in_scope if t not in used]
            labels = [label for t, label in in_scope if t not in used]
            scoring = Scoring(KEPT, routes, vectors)
            j = judge(scoring, texts, labels)
            decided = j.decide(scoring.default_cut)
            print(f"train split, {name}, default: in-scope {pct(np.mean(decided == j.expected)).strip()} % of {len(texts)}")


if __name__ == "__main__":
    main()
