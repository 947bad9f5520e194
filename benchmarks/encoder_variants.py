"""Another ONNX encoder beside the shipped one (MiniLM-L6): how far its embeddings move, and how
long it takes, alone and in batches, measured in turns in one run.

A candidate is a folder with `model.onnx` (inputs `input_ids`, `attention_mask` and, if the model
has them, `token_type_ids`; output `last_hidden_state`) and its `tokenizer.json`, exported as
router_model/encoder.py exports MiniLM. Used for issue 19's mpnet-base trial (a stronger encoder:
its accuracy is then `switchyard eval` with `SWITCHYARD_CACHE` pointing at it) and issue 23's
trial of onnxruntime's transformer optimizer (same embeddings, slower here).

    python benchmarks/encoder_variants.py --candidate DIR [--texts JSONL ...] [--count 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.workloads import DEFAULT_TEXTS, latest_user_texts  # noqa: E402
from router_model.encoder import Encoder  # noqa: E402


def timed(encoder: Encoder, texts: list[str], batch: int) -> float:
    """Milliseconds per call, encoding `texts` `batch` at a time (nothing cached)."""
    started, calls = time.perf_counter(), 0
    for i in range(0, len(texts), batch):
        encoder.encode(texts[i:i + batch], cache=False)
        calls += 1
    return (time.perf_counter() - started) / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidate", type=Path, required=True, help="folder: model.onnx + tokenizer.json")
    parser.add_argument("--texts", type=Path, nargs="+", default=list(DEFAULT_TEXTS), help="JSONL chat requests")
    parser.add_argument("--count", type=int, default=300, help="texts timed per arm and round")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    texts = latest_user_texts(args.texts)
    arms = {"shipped": Encoder(threads=1), "candidate": Encoder(folder=args.candidate, threads=1)}
    shipped, candidate = (arm.encode(texts, cache=False) for arm in arms.values())
    if shipped.shape == candidate.shape:
        cosine = (shipped * candidate).sum(axis=1)
        print(f"{len(texts)} texts: cosine to the shipped embedding min {cosine.min():.7f}, "
              f"largest difference {np.abs(shipped - candidate).max():.2e}")
    else:
        print(f"{len(texts)} texts: another width ({candidate.shape[1]} against {shipped.shape[1]}): "
              "compare decisions with `switchyard eval` instead")
    sample = texts[:args.count]
    for round_ in range(args.rounds):
        for name, encoder in arms.items():
            print(f"round {round_ + 1} {name:>9}: alone {timed(encoder, sample, 1):6.2f} ms a text, "
                  f"16 at a time {timed(encoder, sample, 16):6.2f} ms a call")


if __name__ == "__main__":
    main()
