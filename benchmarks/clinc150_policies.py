"""Write the CLINC150 evaluation policies (eval/clinc150/) from the shared benchmark data, and
sweep the embedding tier's strictness on the dev split.

    python benchmarks/clinc150_policies.py [--data ../shared/data/clinc150] [--examples 30]

Writes `descriptions.yaml` (the fixed route descriptions only) and `examples-N.yaml` (the same,
plus N training examples per route), with no `threshold`: the `other` line is calibrated against
Switchyard's background set (at the default strictness: 0.85 with descriptions only, 0.88 with
examples; calibration.default_strictness, chosen on this sweep). Prints in-scope accuracy against
`other` recall on dev for a range of strictness values. Examples are picked from
the train split only, spread over each route's intents: per intent, the most typical utterance
(nearest the intent's mean embedding) first, then the typical ones least like those already
picked, so a few examples cover the route's variety. Tuned policies come from `switchyard tune`
on dev (README, "Routing quality"); never from test.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from control_plane.policy.loader import parse_policy  # noqa: E402
from router_model.calibration import cut_for  # noqa: E402
from router_model.embedding import EmbeddingRouter  # noqa: E402
from router_model.encoder import Encoder  # noqa: E402
from router_model.prompt import Message  # noqa: E402
from router_model.router import NO_ROUTE  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STRICTNESS = (0.8, 0.82, 0.84, 0.85, 0.86, 0.88, 0.9, 0.92, 0.95)


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


def sweep(policy_text: str, dev: list[dict], encoder: Encoder) -> list[str]:
    """In-scope accuracy and `other` recall on dev at each strictness."""
    policy = parse_policy(policy_text, "sweep.yaml", "sweep")
    router = EmbeddingRouter(encoder, policy.route_specs, None)
    scored = [router.scores([Message("user", text_of(item))]) for item in dev]
    expected = [item["route"] for item in dev]
    rows = []
    for strictness in STRICTNESS:
        cut = cut_for(router.background_evidence, strictness)
        decided = [s.routes[0].name if s is not None and s.evidence >= cut else NO_ROUTE for s in scored]
        pairs = list(zip(expected, decided))
        in_scope = [d == e for e, d in pairs if e != NO_ROUTE]
        recall = [d == e for e, d in pairs if e == NO_ROUTE]
        rows.append(f"  strictness {strictness:.2f}: in-scope {np.mean(in_scope) * 100:5.1f} %, "
                    f"other recall {np.mean(recall) * 100:5.1f} %")
    return rows


def with_examples(policy: dict, examples: dict[str, list[str]] | None) -> dict:
    policy = json.loads(json.dumps(policy))
    policy["router"] = {"kind": "embedding"}
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
        header = (f"# CLINC150 as 10 routes + other, embedding tier ({name}); generated by "
                  f"benchmarks/clinc150_policies.py.\n# No threshold: the `other` line is calibrated "
                  f"(nothing fit on CLINC). Source data: CC BY 3.0, Larson et al. 2019.\n")
        text = yaml.safe_dump(with_examples(base, examples), sort_keys=False, width=100)
        (out / f"{name}.yaml").write_text(header + text)
        print(f"{out / f'{name}.yaml'} on dev:", *sweep(text, dev, encoder), sep="\n")


if __name__ == "__main__":
    main()
