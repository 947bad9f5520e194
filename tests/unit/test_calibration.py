"""The embedding tier's `other` line, `other` examples, `--explain` and tune's cross-validation,
on a scripted encoder whose vectors make every number computable by hand.

Axes: 0 = route alpha's anchor, 1 = route beta's, 2-4 = the three background requests' own,
5 = the requests' own, 6 = x1's own (orthogonal to everything else). Background requests:
  b1 = e2                      -> best route 0.0, nothing near it            -> evidence 0.0
  b2 = 0.2 e0 + sqrt(.96) e3   -> alpha 0.2, other background 0 (orthogonal) -> evidence 0.2
  b3 = 0.4 e1 + sqrt(.84) e4   -> beta 0.4                                   -> evidence 0.4
So cut(strictness) is their quantile: 0.2 at 0.5, 0.3 at 0.75, 0.4 at 1.0 (0.4 x strictness).
A request a e0 + sqrt(1 - a^2) e5 scores alpha a and is 0.2a like b2: its background score is
the mean of its 3 nearest, 0.2a / 3, and its evidence a - 0.5 x 0.2a / 3 = 29a / 30. Likewise
b e1 + ... scores beta b, evidence b - 0.5 x 0.4b / 3 = 14b / 15.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pytest

from control_plane.policy.edits import set_router_embedding
from control_plane.routing.evaluation import Item
from control_plane.routing.tuning import Arrays, cross_validate, pick_margin, pick_strictness, score_dataset
from router_model.batching import EncodeBatcher
from router_model.embedding import EmbeddingRouter, Gate
from router_model.encoder import Vectors
from router_model.explanation import explain
from router_model.prompt import Message
from router_model.router import RouterQuery, RouteSpec

DIM = 7


def unit(**parts: float) -> list[float]:
    """A vector from {axis_N: value}; the rest of its length goes on its `own` axis."""
    vector = [0.0] * DIM
    own = int(parts.pop("own", 5))
    for name, value in parts.items():
        vector[int(name[1:])] = value
    vector[own] = math.sqrt(max(0.0, 1 - sum(v * v for v in vector)))
    return vector


def alpha(a: float) -> list[float]:
    return unit(e0=a)


def beta(b: float) -> list[float]:
    return unit(e1=b)


VECTORS = {
    "alpha": unit(e0=1.0), "beta": unit(e1=1.0),
    "b1": unit(own=2), "b2": unit(e0=0.2, own=3), "b3": unit(e1=0.4, own=4),
    # (label, vector) -> evidence, by the formulas above
    "x1": unit(e0=0.5, own=6),  # alpha, 0.48333
    "x2": alpha(0.3),   # alpha, 0.29
    "x3": beta(0.4),    # beta, 0.37333
    "x4": alpha(0.26),  # other, 0.25133 (best alpha)
    "x5": beta(0.31),   # other, 0.28933 (best beta)
    "x6": alpha(0.1),   # other, 0.09667
    "x7": beta(0.5),    # alpha, but beta is its best route: wrong whatever the cut
    "near-x1": unit(e0=0.6, own=6),  # an `other` example: 0.3 + 0.8 x sqrt(.75) = 0.993 from x1, 0 from x3
}
LABELS = {"x1": "alpha", "x2": "alpha", "x3": "beta", "x4": "other", "x5": "other", "x6": "other", "x7": "alpha"}
ROUTES = (RouteSpec("alpha", "alpha"), RouteSpec("beta", "beta"))
BACKGROUND = ("b1", "b2", "b3")


class ScriptedEncoder:
    def encode(self, texts: Sequence[str], cache: bool = True) -> Vectors:
        rows = [VECTORS[t] for t in texts]
        return np.array(rows, dtype=np.float32).reshape(len(rows), DIM)


def router(gate: Gate = Gate(strictness=0.5), other_examples: Sequence[str] = ()) -> EmbeddingRouter:
    encoder = ScriptedEncoder()
    return EmbeddingRouter(encoder, ROUTES, EncodeBatcher(encoder, ThreadPoolExecutor(1)), gate, other_examples,
                           BACKGROUND)


def ask(text: str) -> list[Message]:
    return [Message("user", text)]


@pytest.mark.parametrize("strictness,cut", [(0.5, 0.2), (0.75, 0.3), (1.0, 0.4)])
def test_cut_leaves_the_strictness_share_of_the_background_under_it(strictness: float, cut: float) -> None:
    calibrated = router(Gate(strictness=strictness))
    assert calibrated.background_evidence.tolist() == pytest.approx([0.0, 0.2, 0.4])
    assert calibrated.cut == pytest.approx(cut)


def test_a_route_wins_over_the_line_cut_plus_its_likeness_to_off_topic_requests() -> None:
    lenient, strict = router(Gate(strictness=0.5)), router(Gate(strictness=1.0))
    scores = lenient.scores(ask("x1"))
    assert scores is not None
    assert [(r.name, round(r.score, 3)) for r in scores.routes] == [("alpha", 0.5), ("beta", 0.0)]
    assert scores.other.background == pytest.approx(0.1 / 3)
    assert scores.other.line == pytest.approx(0.2 + 0.5 * 0.1 / 3)
    assert scores.evidence == pytest.approx(0.5 * 29 / 30)
    assert scores.route == "alpha"
    # x4's evidence 0.2513 clears cut 0.2, not cut 0.4.
    assert lenient.scores(ask("x4")).route == "alpha"  # type: ignore[union-attr]
    assert strict.scores(ask("x4")).route is None  # type: ignore[union-attr]


def test_a_fixed_threshold_is_the_best_anchors_cosine_as_before() -> None:
    fixed = router(Gate(threshold=0.45))
    assert fixed.cut is None and fixed.background_texts == []
    assert fixed.scores(ask("x1")).route == "alpha"  # type: ignore[union-attr]  # 0.5 >= 0.45
    assert fixed.scores(ask("x2")).route is None  # type: ignore[union-attr]  # 0.3 < 0.45


async def test_a_request_nearer_an_other_example_than_any_route_is_other() -> None:
    with_examples = router(other_examples=["near-x1"])
    scores = with_examples.scores(ask("x1"))
    assert scores is not None and scores.other.examples == pytest.approx(0.3 + 0.8 * math.sqrt(0.75), abs=1e-5)
    assert scores.route is None and scores.other.nearest_example == "near-x1"
    outcome = await with_examples.decide(RouterQuery(ROUTES, ask("x1")))
    assert (outcome.route, outcome.reason, outcome.runner_up) == (None, "other", "alpha")
    assert (outcome.score, outcome.runner_up_score) == (pytest.approx(0.9928, abs=1e-4), pytest.approx(0.5))
    # x3 is far from it (0): the example changes nothing there.
    assert with_examples.scores(ask("x3")).route == "beta"  # type: ignore[union-attr]


def test_explain_prints_every_score_the_line_and_the_winner() -> None:
    """x3: beta 0.4, alpha 0; near b3 only (0.16), so its background score is 0.16 / 3 and the
    line 0.2 + 0.5 x 0.0533 = 0.2267; the `other` example is orthogonal to it."""
    explained = router(other_examples=["near-x1"])
    scores = explained.scores(ask("x3"))
    assert scores is not None
    assert explain(explained, scores, margin=0.05) == [
        "scores (calibrated: strictness 0.5 of 3 off-topic requests -> cut 0.200):",
        '  beta    0.400  best anchor "beta"',
        '  alpha   0.000  best anchor "alpha"',
        '  other   0.227  = cut 0.200 + 0.5 x off-topic likeness 0.053 (nearest "b3")',
        '          0.000  other_examples, best "near-x1"',
        "decision: beta (0.400), 0.173 ahead of other (0.227)",
        "hybrid margin 0.05: the embedding tier answers alone",
    ]
    fixed = router(Gate(threshold=0.45))
    assert explain(fixed, fixed.scores(ask("x2")))[0] == "scores (fixed threshold 0.450 (router.embedding.threshold)):"  # type: ignore[arg-type]
    assert explain(fixed, fixed.scores(ask("x2")))[-1] == "decision: other (0.450), 0.150 ahead of alpha (0.300)"  # type: ignore[arg-type]


def dataset() -> list[Item]:
    return [Item([{"role": "user", "content": text}], (0,), (label,)) for text, label in LABELS.items()]


def test_tune_cross_validation_is_what_hand_computation_gives() -> None:
    """2 folds, round robin within each expected route in dataset order:
      alpha: x1 -> 0, x2 -> 1, x7 -> 0;  beta: x3 -> 0;  other: x4 -> 0, x5 -> 1, x6 -> 0.
    Fold 0 (test x1 x7 x3 x4 x6) is tuned on x2 x5: all `other` out needs cut > 0.28933, the
    least strictness on the grid is 0.724 (cut 0.2896). Then x1, x3, x4, x6 are right, x7 wrong.
    Fold 1 (test x2 x5) is tuned on the rest: cut > 0.25133 (x4) -> 0.629 (cut 0.2516): x2 (0.29)
    is routed right, x5 (0.28933) is routed: wrong.
    Together: in-scope x1 x3 x2 right, x7 wrong: 3/4; other x4 x6 right, x5 wrong: 2/3; 5/7."""
    calibrated = router()
    scored = score_dataset(calibrated, dataset())
    evidence = Arrays.of([turns[0] for turns in scored]).evidence
    assert evidence.tolist() == pytest.approx([x * 29 / 30 for x in (0.5, 0.3)] + [0.4 * 14 / 15] + [0.26 * 29 / 30]
                                              + [0.31 * 14 / 15, 0.1 * 29 / 30, 0.5 * 14 / 15], abs=1e-6)
    result = cross_validate(scored, calibrated.background_evidence, target=1.0, k=2)
    assert result.strictness_per_fold == (0.724, 0.629)
    assert result.held_out.in_scope == pytest.approx(3 / 4)
    assert result.held_out.other_recall == pytest.approx(2 / 3)
    assert result.held_out.accuracy == pytest.approx(5 / 7)
    # On all of it: cut > 0.28933 again; then every `other` is out and x7 alone is wrong.
    everything = Arrays.of([s for turns in scored for s in turns])
    assert pick_strictness(everything, calibrated.background_evidence, 1.0) == 0.724
    figures = everything.figures(0.4 * 0.724)
    assert (figures.in_scope, figures.other_recall) == (pytest.approx(3 / 4), 1.0)


def test_tune_says_1_when_no_strictness_reaches_the_target() -> None:
    calibrated = router()
    scored = [s for turns in score_dataset(calibrated, dataset()) for s in turns]
    # All labelled `other`: x1's 0.483 is above even the strictest cut (0.4).
    everything_other = Arrays.of([replace(s, expected="other") for s in scored])
    assert pick_strictness(everything_other, calibrated.background_evidence, 1.0) == 1.0
    # x6 (0.097) is under even the least strict cut (0.2); x4 (0.2513) needs 0.629.
    assert pick_strictness(everything_other, calibrated.background_evidence, 1 / 7) == 0.5
    assert pick_strictness(everything_other, calibrated.background_evidence, 2 / 7) == 0.629


def test_tune_adds_the_datasets_other_requests_as_examples_only_from_training_folds() -> None:
    """The `other` requests x4 x5 x6 become candidate examples. All requests but x1 share axis 5,
    so an example from one of them is 0.9+ like each of them: it beats any route there.
    Fold 0 (test x1 x7 x3 x4 x6) may use x5 only (the only training `other`); x5 itself may not,
    so it is picked as before: 0.724. On the test fold x1 (orthogonal to x5) is routed right; x7,
    x3, x4, x6 are all nearer x5 than their route: `other` (right for x4 x6 only).
    Fold 1 (test x2 x5) may use x4 and x6: each catches the other, so every strictness reaches the
    target: 0.5. x2 and x5 are both nearer them than their routes: `other` (right for x5).
    Together: in-scope 1/4 (x1), other 3/3."""
    calibrated = router()
    owners = [3, 4, 5]  # the items (0-based) the candidates come from
    scored = score_dataset(calibrated, dataset(), candidates=["x4", "x5", "x6"])
    assert scored[1][0].candidates == pytest.approx([0.3 * 0.26 + math.sqrt(0.91 * (1 - 0.26 ** 2)), math.sqrt(0.91 * (1 - 0.31 ** 2)),
                                                     0.3 * 0.1 + math.sqrt(0.91 * 0.99)], abs=1e-5)
    result = cross_validate(scored, calibrated.background_evidence, target=1.0, k=2, router=calibrated, owners=owners)
    assert result.strictness_per_fold == (0.724, 0.5)
    assert result.held_out.in_scope == pytest.approx(1 / 4) and result.held_out.other_recall == 1.0


def test_hybrid_margin_is_the_least_lead_at_which_the_tier_alone_is_precise_enough() -> None:
    """At cut 0.2 all but x6 are routed; right: x1 x2 x3 (leads 0.5 0.3 0.4), wrong: x4 x5 x7
    (0.26 0.31 0.5). Precision 0.6 first holds on the first grid step past x4's lead (0.26, or
    0.265: the scores are float32; 3 of 5 right); 0.9 is never reached on the grid (0 to 0.3): its
    largest, 0.3, so that the hybrid asks Arch-Router about nearly everything."""
    everything = Arrays.of([s for turns in score_dataset(router(), dataset()) for s in turns])
    assert pick_margin(everything, 0.2, 0.6) in (0.26, 0.265)
    assert pick_margin(everything, 0.2, 0.5) == 0.0
    assert pick_margin(everything, 0.2, 0.9) == 0.3


POLICY = """\
version: 1
router:
  kind: embedding                  # in-process
  embedding:
    threshold: 0.3                 # the old way
    other_examples: [a, b]
providers: {local: {base_url: 'http://127.0.0.1:1/v1'}}
"""


def test_tune_writes_the_setting_in_place_keeping_comments() -> None:
    edited = set_router_embedding(POLICY, {"strictness": "0.912"}, remove=["threshold"])
    assert edited == POLICY.replace("    threshold: 0.3                 # the old way\n", "").replace(
        "  embedding:\n", "  embedding:\n    strictness: 0.912\n")
    flow = POLICY.replace("  embedding:\n    threshold: 0.3                 # the old way\n    other_examples: [a, b]\n",
                          "  embedding: {threshold: 0.3, margin: 0.1}  # kept\n")
    assert "  embedding: {margin: 0.1, strictness: 0.9}  # kept\n" in set_router_embedding(
        flow, {"strictness": "0.9"}, remove=["threshold"])
    bare = POLICY.replace("  embedding:\n    threshold: 0.3                 # the old way\n    other_examples: [a, b]\n", "")
    assert "router:\n  embedding:\n    strictness: 0.9\n  kind: embedding" in set_router_embedding(bare, {"strictness": "0.9"})
