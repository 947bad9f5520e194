"""Why the embedding tier decided what it did, in words (`switchyard route --explain`)."""

from __future__ import annotations

from router_model.calibration import OTHER_WEIGHT
from router_model.embedding import EmbeddingRouter, Scores
from router_model.router import NO_ROUTE

QUOTE_CHARS = 70


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    return f'"{flat[:QUOTE_CHARS - 1]}…"' if len(flat) > QUOTE_CHARS else f'"{flat}"'


def gate_in_force(router: EmbeddingRouter) -> str:
    if router.cut is None:
        return f"fixed threshold {router.gate.threshold:.3f} (router.embedding.threshold)"
    return (f"calibrated: strictness {router.gate.strictness:g} of {len(router.background_texts)} "
            f"off-topic requests -> cut {router.cut:.3f}")


def explain(router: EmbeddingRouter, scores: Scores, margin: float | None = None) -> list[str]:
    """Every route's score and best-matching anchor, `other`'s score and what makes it, the
    winner and by how much; with `margin` (hybrid), whether the tier answers alone."""
    width = max(len(name) for name in [*router.names, NO_ROUTE])
    lines = [f"scores ({gate_in_force(router)}):"]
    for route in scores.routes:
        lines.append(f"  {route.name:<{width}}  {route.score:6.3f}  best anchor {_quote(route.anchor)}")
    other = scores.other
    if other.cut is None:
        made_of = "the fixed threshold"
    else:
        assert other.background is not None and other.nearest_background is not None
        made_of = (f"cut {other.cut:.3f} + {OTHER_WEIGHT:g} x off-topic likeness {other.background:.3f} "
                   f"(nearest {_quote(other.nearest_background)})")
    lines.append(f"  {NO_ROUTE:<{width}}  {other.line:6.3f}  = {made_of}")
    if other.examples is not None and other.nearest_example is not None:
        beats = "  <- beats the line" if other.examples > other.line else ""
        lines.append(f"  {'':<{width}}  {other.examples:6.3f}  other_examples, best {_quote(other.nearest_example)}{beats}")
    (winner, score), (runner_up, runner_up_score) = scores.ranking()[:2]
    lines.append(f"decision: {winner} ({score:.3f}), {score - runner_up_score:.3f} ahead of {runner_up} "
                 f"({runner_up_score:.3f})")
    if margin is not None:
        alone = "answers alone" if scores.confident(margin) else "asks Arch-Router"
        lines.append(f"hybrid margin {margin:g}: the embedding tier {alone}")
    return lines
