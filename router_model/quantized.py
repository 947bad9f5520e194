"""MiniLM in int8 (`router.embedding.encoder: minilm-int8`): 2-3x less CPU a text, 1-2 points of
routing accuracy given up. Built once from the exported float model, like the export itself.

What was tried (quickstart held-out sets, eval/quickstart-holdout*.jsonl; float: 87.5 and 89.8 %):
- dynamic int8, weights per tensor: 81.2 and 86.4 %. Dropped;
- dynamic int8, weights per output channel: 87.5 and 89.8 %, but dynamic quantization scales each
  call's activations by what is in the call, so a request's vector (and route) would depend on
  the requests batched with it (cosine 0.988 alone vs batched). Dropped;
- static int8, weights per output channel, activation ranges fixed once from the shipped
  background set of off-topic requests (calibration.py; no evaluation set): 87.5 and 91.5 %, and
  a text encodes the same alone or in any batch. Kept.
Against the float model (`benchmarks/encoder_variants.py --candidate`, `benchmarks/embedding_scoring.py`
and `switchyard eval` with the int8 folder in its place; README, "Routing quality"): 1.4 against
4.1 ms a text alone, 21 against 42 ms for 16; CLINC dev at the default line, 30 examples 84.8 /
93.0 against 86.4 / 90.0, descriptions 71.9 / 87.0 against 71.6 / 90.0.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import numpy.typing as npt

from router_model.calibration import background_requests
from router_model.encoder import ONNX_FILE, Encoder, ensure_onnx_model
from router_model.model_cache import build_dir, cache_root, publish

FOLDER = "all-minilm-l6-v2-int8-onnx"


def ensure_int8_model(target: Path | None = None) -> Path:
    """Return a folder with the int8 model.onnx + tokenizer.json, quantizing on first use (needs
    the `onnx` package, as the export does)."""
    target = target or cache_root() / FOLDER
    if (target / ONNX_FILE).exists():
        return target
    from onnxruntime.quantization import (  # heavy imports only when a build is really needed
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    source = ensure_onnx_model()
    encoder = Encoder(source)  # fed to the calibration exactly as it is fed in use

    class Background(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.texts = iter(background_requests())

        def get_next(self) -> dict[str, npt.NDArray[np.int64]] | None:
            text = next(self.texts, None)
            return None if text is None else encoder.model_inputs([text])

    partial = build_dir(target)
    quantize_static(
        str(source / ONNX_FILE), str(partial / ONNX_FILE), Background(), quant_format=QuantFormat.QOperator,
        per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
        op_types_to_quantize=["MatMul"],
    )
    shutil.copy(source / "tokenizer.json", partial / "tokenizer.json")
    return publish(partial, target, ONNX_FILE)
