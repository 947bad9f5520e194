"""What the benchmarks' requests send. EXPLICIT: one fixed body naming a configured model (no
router call). `routed`: `model: "auto"` requests under an embedding policy, each a new
conversation with a new text, so that every one is a fresh decision (never `cached` or `sticky`)
and every text the router encodes is one it has not seen.

Texts are real requests (by default the quickstart's own sets, eval/quickstart*.jsonl, with the
quickstart policy, policies/default.yaml), cycled, each with a small number (a "nonce") written
into the first sentence of each of its paragraphs: there every piece the embedding tier encodes
(router_model/phrasing.py: the text's start, its instruction head, the head without its request
form, a paste's first line) carries it. Texts where some piece would not carry it (a first
sentence past the head's 24 words) are left out, and the count is printed. The nonce stays small
(one or two word pieces): the pair (text, nonce) is what is new.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import yaml

from benchmarks.load_generator import Workload
from benchmarks.upstream_envoy import MODEL
from router_model.phrasing import request_pieces

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POLICY = ROOT / "policies" / "default.yaml"
DEFAULT_TEXTS = (ROOT / "eval" / "quickstart.jsonl", ROOT / "eval" / "quickstart-holdout.jsonl")
# Client slots (load_generator.measure) whose nonces never meet: windows x clients in one run.
SLOTS = 64
EXPLICIT_BODY = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hello " * 40}]}).encode()
EXPLICIT = Workload(MODEL, lambda slot, n: EXPLICIT_BODY)
_PARAGRAPH_BREAK = re.compile(r"(\n\s*\n)")
_SENTENCE_END = re.compile(r"[\n:]|[.?!](\s|$)")  # where phrasing's instruction head ends


def routed_policy(policy: Path, upstream: str, explicit_model: str) -> str:
    """`policy`'s router and routes, with every model it names (and `explicit_model`, for the
    explicit arm on the same stack) served by the upstream."""
    data = yaml.safe_load(policy.read_text())
    names = {route["model"] for route in data.get("routes", [])} | {data["default_model"], explicit_model}
    kept = {key: data[key] for key in ("version", "router", "routes", "default_model") if key in data}
    return yaml.safe_dump({**kept, "providers": {"up": {"base_url": f"{upstream}/v1"}},
                           "models": {name: {"provider": "up"} for name in sorted(names)}}, sort_keys=False)


def latest_user_texts(paths: Iterable[Path]) -> list[str]:
    """The latest user message of every item of these JSONL datasets (`switchyard eval`'s format)."""
    texts = []
    for path in paths:
        for line in path.read_text().splitlines():
            users = [m["content"] for m in json.loads(line)["messages"] if m["role"] == "user"]
            if users and isinstance(users[-1], str):
                texts.append(users[-1])
    return texts


def with_nonce(text: str, nonce: int) -> str:
    """`text` with ` nonce` at the end of each paragraph's first sentence."""
    parts = _PARAGRAPH_BREAK.split(text)
    for index in range(0, len(parts), 2):  # the odd ones are the breaks
        paragraph = parts[index]
        end = _SENTENCE_END.search(paragraph)
        at = end.start() if end else len(paragraph.rstrip())
        parts[index] = f"{paragraph[:at]} {nonce}{paragraph[at:]}"
    return "".join(parts)


def carries_nonce(text: str, nonce: int = 4093) -> bool:
    return all(str(nonce) in piece for piece in request_pieces(with_nonce(text, nonce)))


def routed(texts: list[str]) -> tuple[Workload, int]:
    """The workload over the texts whose pieces all carry the nonce, and how many were left out."""
    usable = [text for text in dict.fromkeys(texts) if carries_nonce(text)]
    if not usable:
        raise ValueError("no text keeps a nonce in every piece")

    def body(slot: int, n: int) -> bytes:
        text = usable[n % len(usable)]
        nonce = (n // len(usable)) * SLOTS + slot % SLOTS
        message = {"role": "user", "content": with_nonce(text, nonce)}
        return json.dumps({"model": "auto", "messages": [message]}).encode()

    return Workload("auto", body), len(set(texts)) - len(usable)
