"""Write the CLINC150 evaluation policies (eval/clinc150/) from the shared benchmark data, and
sweep the embedding tier's threshold on the dev split.

    python benchmarks/clinc150_policies.py [--data ../shared/data/clinc150] [--examples 30]

Writes `descriptions.yaml` (the fixed route descriptions only) and `examples-N.yaml` (the same,
plus N training examples per route), each with the threshold that gives >= 80 % `other` recall on
dev, and prints in-scope accuracy against `other` recall for a range of thresholds. Examples are
picked from the train split only, spread over each route's intents: per intent, the most typical
utterance (nearest the intent's mean embedding) first, then the typical ones least like those
already picked, so a few examples cover the route's variety. Tune on dev; never on test.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from control_plane.policy.loader import parse_policy  # noqa: E402
from router_model.embedding import EmbeddingRouter  # noqa: E402
from router_model.encoder import Encoder  # noqa: E402
from router_model.prompt import Message  # noqa: E402
from router_model.router import NO_ROUTE  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_OTHER_RECALL = 0.80


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def text_of(item: dict) -> str:
    return str(item["messages"][-1]["content"])


def pick_examples(train: list[dict], encoder: Encoder, per_route: int) -> dict[str, list[str]]:
    by_intent: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    for item in train:
        if item["route"] != NO_ROUTE:
            by_intent[(item["route"], item["intent"])].append(text_of(item))
    picked: dict[str, list[str]] = collections.defaultdict(list)
    for route in sorted({r for r, _ in by_intent}):
        intents = sorted(i for r, i in by_intent if r == route)
        for number, intent in enumerate(intents):
            share = per_route // len(intents) + (1 if number < per_route % len(intents) else 0)
            texts = by_intent[(route, intent)]
            vectors = encoder.encode(texts, cache=False)
            typical = np.argsort(-(vectors @ vectors.mean(axis=0)))[: max(1, len(texts) // 2)]
            chosen = [int(typical[0])]
            while len(chosen) < share:
                closeness = (vectors[typical] @ vectors[chosen].T).max(axis=1)
                chosen.append(int(typical[int(np.argmin(closeness))]))
            picked[route] += [texts[i] for i in chosen]
    return picked


def sweep(policy_text: str, dev: list[dict], encoder: Encoder) -> tuple[float, list[str]]:
    """Threshold reaching TARGET_OTHER_RECALL on dev, and a table of the trade-off."""
    policy = parse_policy(policy_text, "sweep.yaml", "sweep")
    router = EmbeddingRouter(encoder, policy.route_specs, 0.0, executor=None)  # type: ignore[arg-type]
    scored = [router.scores([Message("user", text_of(item))]) for item in dev]
    expected = [item["route"] for item in dev]
    others = sorted(s.top for s, e in zip(scored, expected) if s is not None and e == NO_ROUTE)
    # Just above the score of the last `other` item needed for the target recall, in 3 decimals.
    chosen = math.floor(others[math.ceil(TARGET_OTHER_RECALL * len(others)) - 1] * 1000 + 1) / 1000
    rows = []
    for threshold in sorted({round(t, 2) for t in np.arange(0.25, 0.6, 0.05)} | {chosen}):
        decided = [s.route(threshold) if s else None for s in scored]
        decided = [d or NO_ROUTE for d in decided]
        pairs = list(zip(expected, decided))
        in_scope = [d == e for e, d in pairs if e != NO_ROUTE]
        recall = [d == e for e, d in pairs if e == NO_ROUTE]
        rows.append(f"  threshold {threshold:.3f}: in-scope {np.mean(in_scope) * 100:5.1f} %, "
                    f"other recall {np.mean(recall) * 100:5.1f} %")
    return chosen, rows


def with_examples(policy: dict, examples: dict[str, list[str]] | None, threshold: float) -> dict:
    policy = json.loads(json.dumps(policy))
    policy["router"] = {"kind": "embedding", "embedding": {"threshold": threshold}}
    for route in policy["routes"]:
        if examples:
            route["examples"] = examples[route["name"]]
    return policy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "clinc150"))
    parser.add_argument("--examples", type=int, default=30)
    parser.add_argument("--out", default=str(ROOT / "eval" / "clinc150"))
    args = parser.parse_args()
    data, out = Path(args.data), Path(args.out)
    base = yaml.safe_load((data / "policy.yaml").read_text())
    dev, train = read_jsonl(data / "dev.jsonl"), read_jsonl(data / "train.jsonl")
    encoder = Encoder()
    variants = {"descriptions": None, f"examples-{args.examples}": pick_examples(train, encoder, args.examples)}
    out.mkdir(parents=True, exist_ok=True)
    for name, examples in variants.items():
        draft = yaml.safe_dump(with_examples(base, examples, 0.0), sort_keys=False, width=100)
        threshold, rows = sweep(draft, dev, encoder)
        header = (f"# CLINC150 as 10 routes + other, embedding tier ({name}); generated by "
                  f"benchmarks/clinc150_policies.py.\n# threshold: >= {TARGET_OTHER_RECALL:.0%} "
                  f"`other` recall on the dev split. Source data: CC BY 3.0, Larson et al. 2019.\n")
        text = yaml.safe_dump(with_examples(base, examples, threshold), sort_keys=False, width=100)
        (out / f"{name}.yaml").write_text(header + text)
        print(f"{out / f'{name}.yaml'} (threshold {threshold}) on dev:", *rows, sep="\n")


if __name__ == "__main__":
    main()
