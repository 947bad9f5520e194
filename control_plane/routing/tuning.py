"""`switchyard tune`: the embedding tier's `strictness` (and a hybrid's `margin`) for a requested
`other` recall, picked on a labelled dataset and cross-validated, so that the figures printed are
those to expect on new requests like the dataset's, not those of the data the setting was fit on.

k-fold: the dataset is split into k folds, round robin within each expected route in dataset
order; for each fold the setting is picked on the other k-1 and measured on it. The figures are
those of all folds' held-out decisions together. With `--add-other-examples`, the dataset's
`other` requests become `other` examples too, and in each fold only the training folds' are
used (a request is never its own example), so that their gain is measured the same way. That
measures requests like the dataset's own: on CLINC150, `other` queries written apart (the train
split) were caught less often than cross-validation on dev promised (83 % instead of 92 %).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from control_plane.routing.evaluation import Item
from router_model.calibration import cut_for, gated_evidence
from router_model.conversation import select_conversation
from router_model.embedding import EmbeddingRouter
from router_model.router import NO_ROUTE

STRICTNESS_GRID = np.round(np.arange(0.5, 1.0005, 0.001), 3)
MARGIN_GRID = np.round(np.arange(0.0, 0.3001, 0.005), 3)
Floats = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Scored:
    """One judged request as the embedding tier saw it."""

    expected: str
    best: str  # the best route
    score: float  # its score
    background: float  # the request's likeness to off-topic requests
    lead: float  # the best route's score minus the runner-up route's
    decided: str  # what the router decided, as built (a route or `other`)
    text: str = ""
    examples: float | None = None  # the policy's own `other` examples' score
    candidates: tuple[float, ...] = ()  # similarity to each candidate `other` example


def other_requests(items: Sequence[Item]) -> list[tuple[int, str]]:
    """The judged turns expected to be `other`, as (item index, text the router matches)."""
    found = []
    for index, item in enumerate(items):
        for turn, expected in zip(item.turns, item.expected):
            conversation = select_conversation(item.messages[: turn + 1])
            if expected == NO_ROUTE and conversation:
                found.append((index, conversation[-1].content))
    return found


def score_dataset(router: EmbeddingRouter, items: Sequence[Item], candidates: Sequence[str] = ()) -> list[list[Scored]]:
    """Every judged turn of every item, scored by the router (blocking), with its similarity to
    each of `candidates`."""
    candidate_vectors = router.encoder.encode(list(candidates))
    scored = []
    for item in items:
        turns = []
        for turn, expected in zip(item.turns, item.expected):
            conversation = select_conversation(item.messages[: turn + 1])
            vectors = router.request_vectors(conversation)
            if vectors is None:
                continue
            scores = router.scores_of(vectors)
            second = scores.routes[1].score if len(scores.routes) > 1 else -1.0
            best = scores.routes[0]
            turns.append(Scored(
                expected, best.name, best.score, scores.other.background or 0.0, best.score - second,
                scores.route or NO_ROUTE, conversation[-1].content, scores.other.examples,
                tuple((vectors @ candidate_vectors.T).max(axis=0).tolist()) if candidates else ()))
        scored.append(turns)
    return scored


@dataclass(frozen=True)
class Figures:
    decisions: int
    in_scope: float | None  # in-scope requests sent to their route
    other_recall: float | None  # `other` requests sent to `other`
    accuracy: float


def _ratio(hits: Mask) -> float | None:
    return float(hits.mean()) if len(hits) else None


def figures_of(right: Mask, is_other: Mask) -> Figures:
    return Figures(len(right), _ratio(right[~is_other]), _ratio(right[is_other]),
                   float(right.mean()) if len(right) else 0.0)


@dataclass(frozen=True)
class Arrays:
    """Scored requests as arrays, to decide them all at many cuts at once."""

    is_other: Mask
    best_right: Mask  # the best route is the expected one
    decided_right: Mask  # the router, as built, decided right
    lead: Floats
    evidence: Floats  # routed to the best route exactly when the cut is at most this

    @classmethod
    def of(cls, scored: Sequence[Scored], router: EmbeddingRouter | None = None,
           allowed: Mask | None = None) -> Arrays:
        """`allowed` (requests x candidates): which candidate `other` examples count for which
        request; they are then scored as the policy's `other` examples, in their place."""
        examples = np.array([-np.inf if s.examples is None else s.examples for s in scored], dtype=np.float64)
        if allowed is not None and router is not None:
            similarities = np.array([s.candidates for s in scored], dtype=np.float32).reshape(allowed.shape)
            examples = router.examples_score(np.where(allowed, similarities, -np.inf).astype(np.float32)).astype(np.float64)
        return cls(
            np.array([s.expected == NO_ROUTE for s in scored], dtype=bool),
            np.array([s.best == s.expected for s in scored], dtype=bool),
            np.array([s.decided == s.expected for s in scored], dtype=bool),
            np.array([s.lead for s in scored], dtype=np.float64),
            np.asarray(gated_evidence(np.array([s.score for s in scored], dtype=np.float64),
                                      np.array([s.background for s in scored], dtype=np.float64), examples),
                       dtype=np.float64))

    def subset(self, rows: Mask) -> Arrays:
        return Arrays(self.is_other[rows], self.best_right[rows], self.decided_right[rows], self.lead[rows],
                      self.evidence[rows])

    def right(self, cut: float) -> Mask:
        routed = self.evidence >= cut
        right: Mask = np.where(self.is_other, ~routed, routed & self.best_right)
        return right

    def figures(self, cut: float) -> Figures:
        return figures_of(self.right(cut), self.is_other)

    def other_recalls(self, cuts: Floats) -> Floats:
        others = self.evidence[self.is_other]
        if not len(others):
            return np.ones(len(cuts))
        recalls: Floats = (others[None, :] < cuts[:, None]).mean(axis=1)
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


def allowed_examples(items: Sequence[Sequence[Scored]], owners: Sequence[int | None],
                     usable: Sequence[bool]) -> Mask:
    """Requests x candidates: a candidate counts for a request when it is `usable` (the policy's
    own, or from a training fold) and is not that request's own text (`owners`: the item each
    candidate came from, None for the policy's)."""
    rows = []
    for index, turns in enumerate(items):
        row = [use and owner != index for owner, use in zip(owners, usable)]
        rows += [row] * len(turns)
    return np.array(rows, dtype=bool).reshape(len(rows), len(owners))


@dataclass(frozen=True)
class CrossValidation:
    held_out: Figures  # every fold's held-out decisions together
    strictness_per_fold: tuple[float, ...]
    alone_share: float | None = None  # hybrid: share of held-out requests decided without Arch-Router
    alone_precision: float | None = None  # ... and how often those were right


def cross_validate(items: Sequence[Sequence[Scored]], background_evidence: npt.NDArray[np.float32],
                   target: float, k: int, precision: float | None = None, router: EmbeddingRouter | None = None,
                   owners: Sequence[int | None] = ()) -> CrossValidation:
    """`owners`: for each candidate `other` example (Scored.candidates), the item it came from,
    or None for one the policy has; a candidate is used in the folds its item trains."""
    folds = folds_of(items, k)
    picked: list[float] = []
    right: list[Mask] = []
    is_other: list[Mask] = []
    alone: list[Mask] = []
    alone_right: list[Mask] = []
    for fold in range(k):
        usable = [owner is None or folds[owner] != fold for owner in owners]
        allowed = allowed_examples(items, owners, usable) if owners else None
        train_rows = np.array([f != fold for f, turns in zip(folds, items) for _ in turns], dtype=bool)
        everything = Arrays.of([s for turns in items for s in turns], router, allowed)
        train, test = everything.subset(train_rows), everything.subset(~train_rows)
        strictness = pick_strictness(train, background_evidence, target)
        cut = cut_for(background_evidence, strictness)
        picked.append(strictness)
        right.append(test.right(cut))
        is_other.append(test.is_other)
        if precision is not None:
            margin = pick_margin(train, cut, precision)
            decided = (test.evidence >= cut) & (test.lead >= margin)
            alone.append(decided)
            alone_right.append(test.best_right[decided])
    figures = figures_of(np.concatenate(right), np.concatenate(is_other))
    if precision is None:
        return CrossValidation(figures, tuple(picked))
    return CrossValidation(figures, tuple(picked), _ratio(np.concatenate(alone)), _ratio(np.concatenate(alone_right)))


@dataclass(frozen=True)
class Tuned:
    strictness: float
    cut: float
    picked: Figures  # on all of the dataset, at that strictness (optimistic: picked there)
    cross_validation: CrossValidation  # what to expect on new requests like these
    missed: tuple[Scored, ...]  # `other` requests a route still takes at that strictness
    margin: float | None = None  # hybrid


def tune(router: EmbeddingRouter, items: Sequence[Sequence[Scored]], target: float, k: int,
         precision: float | None = None, owners: Sequence[int | None] = ()) -> Tuned:
    """The strictness (and, given `precision`, the hybrid margin) for `target` `other` recall,
    picked on all of `items` after cross-validating the picking."""
    evidence = router.background_evidence
    result = cross_validate(items, evidence, target, k, precision, router, owners)
    allowed = allowed_examples(items, owners, [True] * len(owners)) if owners else None
    flat = [s for turns in items for s in turns]
    everything = Arrays.of(flat, router, allowed)
    strictness = pick_strictness(everything, evidence, target)
    cut = cut_for(evidence, strictness)
    missed = tuple(s for s, e in zip(flat, everything.evidence) if s.expected == NO_ROUTE and e >= cut)
    margin = None if precision is None else pick_margin(everything, cut, precision)
    return Tuned(strictness, cut, everything.figures(cut), result, missed, margin)
