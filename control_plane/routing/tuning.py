"""`switchyard tune`: the embedding tier's `strictness` (and a hybrid's `margin`) for a requested
`other` recall, picked on a labelled dataset and cross-validated, so that the figures printed are
those to expect on new requests like the dataset's, not those of the data the setting was fit on.

k-fold: the dataset is split into k folds, round robin within each expected route in dataset
order; for each fold the setting is picked on the other k-1 and measured on it. The figures are
those of all folds' held-out decisions together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from control_plane.routing.evaluation import Item
from router_model.calibration import cut_for
from router_model.conversation import select_conversation
from router_model.embedding import EmbeddingRouter, Scores
from router_model.router import NO_ROUTE

STRICTNESS_GRID = np.round(np.arange(0.5, 1.0005, 0.001), 3)
MARGIN_GRID = np.round(np.arange(0.0, 0.3001, 0.005), 3)


@dataclass(frozen=True)
class Scored:
    """One judged request as the embedding tier saw it."""

    expected: str
    best: str
    evidence: float  # routed to `best` exactly when the cut is at most this (Scores.evidence)
    lead: float  # best route's score minus the runner-up route's
    text: str = ""


def score_dataset(router: EmbeddingRouter, items: Sequence[Item]) -> list[list[Scored]]:
    """Every judged turn of every item, scored by the router's embedding tier (blocking)."""
    scored = []
    for item in items:
        turns = []
        for turn, expected in zip(item.turns, item.expected):
            conversation = select_conversation(item.messages[: turn + 1])
            scores = router.scores(conversation)
            if scores is not None:
                turns.append(_scored(scores, expected, conversation[-1].content if conversation else ""))
        scored.append(turns)
    return scored


def _scored(scores: Scores, expected: str, text: str) -> Scored:
    second = scores.routes[1].score if len(scores.routes) > 1 else -1.0
    return Scored(expected, scores.routes[0].name, scores.evidence, scores.routes[0].score - second, text)


@dataclass(frozen=True)
class Figures:
    decisions: int
    in_scope: float | None  # in-scope requests sent to their route
    other_recall: float | None  # `other` requests sent to `other`
    accuracy: float


def _ratio(hits: npt.NDArray[np.bool_]) -> float | None:
    return float(hits.mean()) if len(hits) else None


class Arrays:
    """A list of Scored as arrays, for deciding them all at many cuts at once."""

    def __init__(self, scored: Sequence[Scored]) -> None:
        self.is_other = np.array([s.expected == NO_ROUTE for s in scored], dtype=bool)
        self.best_right = np.array([s.best == s.expected for s in scored], dtype=bool)
        self.evidence = np.array([s.evidence for s in scored], dtype=np.float64)
        self.lead = np.array([s.lead for s in scored], dtype=np.float64)

    def right(self, cut: float) -> npt.NDArray[np.bool_]:
        routed = self.evidence >= cut
        right: npt.NDArray[np.bool_] = np.where(self.is_other, ~routed, routed & self.best_right)
        return right

    def figures(self, cut: float) -> Figures:
        right = self.right(cut)
        return Figures(len(right), _ratio(right[~self.is_other]), _ratio(right[self.is_other]),
                       float(right.mean()) if len(right) else 0.0)

    def other_recalls(self, cuts: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        others = self.evidence[self.is_other]
        if not len(others):
            return np.ones(len(cuts))
        recalls: npt.NDArray[np.float64] = (others[None, :] < cuts[:, None]).mean(axis=1)
        return recalls


def pick_strictness(arrays: Arrays, background_evidence: npt.NDArray[np.float32], target: float) -> float:
    """The least strict setting whose `other` recall reaches `target` (1.0 when none does):
    least strict, so that as many in-scope requests as possible are still routed."""
    cuts = np.array([cut_for(background_evidence, s) for s in STRICTNESS_GRID])
    reached = np.nonzero(arrays.other_recalls(cuts) >= target)[0]
    return float(STRICTNESS_GRID[reached[0]]) if len(reached) else 1.0


def pick_margin(arrays: Arrays, cut: float, precision: float) -> float:
    """The least margin at which the embedding tier's own decisions (routed, and ahead of the
    next route by the margin) are right at least `precision` of the time (the hybrid asks
    Arch-Router about the rest); the largest on the grid when none is."""
    routed = arrays.evidence >= cut
    for margin in MARGIN_GRID:
        alone = routed & (arrays.lead >= margin)
        if not alone.any() or arrays.best_right[alone].mean() >= precision:
            return float(margin)
    return float(MARGIN_GRID[-1])


def folds_of(items: Sequence[Sequence[Scored]], k: int) -> list[int]:
    """Each item's fold: round robin within its expected route (its last judged turn's)."""
    seen: dict[str, int] = {}
    folds = []
    for turns in items:
        label = turns[-1].expected if turns else ""
        folds.append(seen.get(label, 0) % k)
        seen[label] = seen.get(label, 0) + 1
    return folds


@dataclass(frozen=True)
class CrossValidation:
    held_out: Figures  # every fold's held-out decisions together
    strictness_per_fold: tuple[float, ...]
    alone_share: float | None = None  # hybrid: share of held-out requests decided without Arch-Router
    alone_precision: float | None = None  # ... and how often those were right


def cross_validate(items: Sequence[Sequence[Scored]], background_evidence: npt.NDArray[np.float32],
                   target: float, k: int, precision: float | None = None) -> CrossValidation:
    folds = folds_of(items, k)
    picked: list[float] = []
    right: list[bool] = []
    is_other: list[bool] = []
    alone: list[bool] = []
    alone_right: list[bool] = []
    for fold in range(k):
        train = Arrays([s for turns, f in zip(items, folds) if f != fold for s in turns])
        test = Arrays([s for turns, f in zip(items, folds) if f == fold for s in turns])
        strictness = pick_strictness(train, background_evidence, target)
        cut = cut_for(background_evidence, strictness)
        picked.append(strictness)
        right += test.right(cut).tolist()
        is_other += test.is_other.tolist()
        if precision is not None:
            margin = pick_margin(train, cut, precision)
            decided = (test.evidence >= cut) & (test.lead >= margin)
            alone += decided.tolist()
            alone_right += test.best_right[decided].tolist()
    hits, others = np.array(right, dtype=bool), np.array(is_other, dtype=bool)
    figures = Figures(len(hits), _ratio(hits[~others]), _ratio(hits[others]),
                      float(hits.mean()) if len(hits) else 0.0)
    if precision is None:
        return CrossValidation(figures, tuple(picked))
    return CrossValidation(figures, tuple(picked), _ratio(np.array(alone, dtype=bool)),
                           _ratio(np.array(alone_right, dtype=bool)))
