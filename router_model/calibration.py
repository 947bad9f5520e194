"""How high a route's score must be, when the policy does not say: calibrated per policy against
a background set of off-topic requests that ships with Switchyard (`data/background.txt`).

Cosine similarities differ from route to route and from policy to policy (a policy with many
short anchors scores everything higher), so no single number suits them all. Instead, each
request's `other` line is `cut + OTHER_WEIGHT x background`, where `background` is how close the
request is to the nearest off-topic requests, and `cut` is chosen per policy so that a share
`strictness` of the background itself stays under the line. See embedding.py for the evidence.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

BACKGROUND_FILE = Path(__file__).parent / "data" / "background.txt"

# Share of the background requests that a policy's routes must leave to `other`, when the policy
# does not say (default_strictness).
DEFAULT_STRICTNESS = 0.88
DESCRIPTIONS_ONLY_STRICTNESS = 0.85
# How much a request's likeness to off-topic requests raises the score a route needs.
OTHER_WEIGHT = 0.5
# The background score of a request: the mean similarity of its nearest off-topic requests
# (several, so that one odd background request on a route's topic cannot veto that route).
BACKGROUND_NEIGHBOURS = 3


@functools.cache
def background_requests() -> tuple[str, ...]:
    """The shipped off-topic requests (comment lines and blank lines left out)."""
    lines = BACKGROUND_FILE.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


class _Route(Protocol):
    @property
    def examples(self) -> Sequence[str]: ...


def default_strictness(routes: Iterable[_Route]) -> float:
    """The strictness of a policy with these routes that sets neither `threshold` nor
    `strictness`. Routes known by their description alone match their own requests less closely,
    so the same share of the background costs them more of those: when no route has examples,
    they get a little more of the benefit of the doubt (figures in embedding.py's docstring)."""
    return DEFAULT_STRICTNESS if any(route.examples for route in routes) else DESCRIPTIONS_ONLY_STRICTNESS


def nearest_mean(similarities: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.float32]:
    """Per row, the mean of its k largest values (all of them when a row has fewer; -inf values
    count as absent, and a row with none is -inf)."""
    k = min(k, similarities.shape[1])
    if k == 0:
        return np.zeros(similarities.shape[0], dtype=np.float32)
    top = np.partition(similarities, similarities.shape[1] - k, axis=1)[:, -k:]
    present = np.isfinite(top)
    if present.all():
        mean: npt.NDArray[np.float32] = top.mean(axis=1).astype(np.float32)
        return mean
    counts = present.sum(axis=1)
    sums = np.where(present, top, 0).sum(axis=1)
    result: npt.NDArray[np.float32] = np.where(counts > 0, sums / np.maximum(counts, 1), -np.inf).astype(np.float32)
    return result


def evidence(score: Any, background: Any) -> Any:
    """How far a route's score clears the request's likeness to off-topic requests: the route
    wins (against the calibrated line) exactly when this is at least the cut."""
    return score - OTHER_WEIGHT * background


def gated_evidence(best: Any, background: Any, examples: Any) -> Any:
    """`evidence`, or -inf where the policy's `other` examples score above the best route (then
    no cut lets the route win). Works on numbers and on arrays alike."""
    return np.where(examples > best, -np.inf, evidence(best, background))


def line(cut: float, background: float) -> float:
    """The score a route needs, under the calibrated line: the inverse of `evidence`."""
    return cut + OTHER_WEIGHT * background


def cut_for(background_evidence: Sequence[float] | npt.NDArray[np.float32], strictness: float) -> float:
    """The cut that leaves `strictness` of the background requests' own evidence under it (their
    `strictness` quantile, interpolated)."""
    return float(np.quantile(np.asarray(background_evidence, dtype=np.float64), strictness))
