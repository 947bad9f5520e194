"""The embedding tier and the hybrid, with the real MiniLM encoder (ONNX) and a scripted
Arch-Router."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from router_model.calibration import background_requests
from control_plane.policy.loader import load_policy_file
from router_model.batching import EncodeBatcher
from router_model.embedding import EmbeddingRouter, Gate
from router_model.encoder import Encoder
from router_model.encoders import ENCODERS, load_encoder
from router_model.hybrid import HybridRouter
from router_model.phrasing import TEXT_CHARS, anchors_of, instruction_head, request_pieces, without_request_form
from router_model.prompt import Message
from router_model.router import EMBEDDING, RouterOutcome, RouterQuery, RouteSpec
from tests.support.scripted_router import ScriptedRouter

ROOT = Path(__file__).resolve().parents[2]
ROUTES = (
    RouteSpec("code", "writing code: functions, classes, scripts", ("write a Python function that sorts a list",)),
    RouteSpec("travel", "travel planning: flights, hotels, rental cars", ("book me a flight to Paris",)),
)


@pytest.fixture(scope="module", params=list(ENCODERS))
def encoder(request: pytest.FixtureRequest) -> Encoder:
    """Every encoder a policy may name (router_model/encoders.py), each through the tests below."""
    return load_encoder(request.param)


@pytest.fixture(scope="module")
def router(encoder: Encoder) -> EmbeddingRouter:
    """Calibrated against the shipped background set: no threshold."""
    return EmbeddingRouter(encoder, ROUTES, EncodeBatcher(encoder, ThreadPoolExecutor(1)))


def ask(text: str) -> RouterQuery:
    return RouterQuery(ROUTES, [Message("user", text)])


def test_anchors_are_description_parts_and_examples() -> None:
    assert anchors_of(ROUTES[0]) == (
        ["writing code: functions, classes, scripts", "writing code", "functions", "classes", "scripts",
         "functions (writing code)", "classes (writing code)", "scripts (writing code)"],
        ["write a Python function that sorts a list"])
    parts = anchors_of(RouteSpec("t", "travel: flights and hotels, car rental or taxis; TL;DRs"))[0]
    assert "flights and hotels" in parts and "flights" not in parts  # parts of one word: no
    assert "car rental" in parts and "TL;DRs" in parts  # `;` splits only before a space


@pytest.mark.parametrize("text,stripped", [
    ("Can you write a function that checks if a number is prime?", "write a function that checks if a number is prime?"),
    ("Hi! Could you please help me find a hotel", "find a hotel"),
    ("I need a bash script that renames files", "a bash script that renames files"),
    ("How would I read a CSV file in pandas?", "read a CSV file in pandas?"),
    ("my async function returns a Promise, what am I doing wrong?", "my async function returns a Promise"),
    ("please", "please"),  # nothing would be left: kept
])
def test_request_forms_are_taken_off(text: str, stripped: str) -> None:
    assert without_request_form(text) == stripped


def test_request_pieces_are_text_instruction_head_and_head_without_form() -> None:
    assert instruction_head("Summarize this article: The council met on Tuesday.") == "Summarize this article"
    assert request_pieces("Hi! Can you summarize this article: The council met.") == [
        "Hi! Can you summarize this article: The council met.", "summarize this article"]
    # A paste, then the question: the question asks; the paste's first line says what about.
    assert request_pieces("Traceback (most recent call last):\n  File x\nKeyError: 'a'\n\nwhat does this mean?") == [
        "what does this mean?", "what does this mean", "Traceback (most recent call last)"]
    # The question, then the paste: the text's start, the head without its form.
    assert request_pieces("Can you fix the function that crashes?\n\n" + "def f(x):\n    return x[0] + 1\n" * 30) == [
        ("Can you fix the function that crashes?\n\n" + "def f(x):\n    return x[0] + 1\n" * 30)[:TEXT_CHARS],
        "fix the function that crashes"]


def test_encoder_vectors_are_unit_length_and_batch_independent(encoder: Encoder) -> None:
    alone = encoder.encode(["a b"], cache=False)[0]
    batched = encoder.encode(["a b", "a much longer sentence that needs padding in the batch"], cache=False)[0]
    assert abs(float(alone @ alone) - 1) < 1e-5
    assert float(alone @ batched) > 0.9999  # padding is masked out


async def test_routes_by_similarity_and_says_other_below_the_calibrated_line(router: EmbeddingRouter) -> None:
    code = await router.decide(ask("can you implement a function that reverses a string in Python?"))
    travel = await router.decide(ask("I need a hotel in Rome for two nights"))
    unrelated = await router.decide(ask("what is the boiling point of water"))
    assert (code.route, code.tier, code.reason) == ("code", EMBEDDING, "matched")
    assert code.runner_up in ("travel", "other") and code.score is not None and code.runner_up_score is not None
    assert code.score > code.runner_up_score
    assert travel.route == "travel"
    assert (unrelated.route, unrelated.reason, unrelated.failed) == (None, "other", False)
    assert unrelated.runner_up in ("code", "travel")


def test_calibration_carries_over_to_off_topic_requests_it_did_not_see(encoder: Encoder) -> None:
    """Calibrated on half the background set (strictness 0.9), the other half mostly goes to
    `other`; stricter, even more of it."""
    shipped = background_requests()
    seen, unseen = shipped[::2], shipped[1::2]

    def routed(strictness: float) -> int:
        router = EmbeddingRouter(encoder, ROUTES, None, Gate(strictness=strictness), background=seen)
        assert float(np.mean(router.background_evidence <= router.cut)) == pytest.approx(strictness, abs=0.01)
        return sum(router.scores([Message("user", t)]).route is not None for t in unseen)  # type: ignore[union-attr]

    lenient, strict = routed(0.9), routed(0.99)
    assert lenient <= 0.2 * len(unseen) and strict < lenient


async def test_a_fixed_threshold_keeps_its_meaning(encoder: Encoder) -> None:
    """`threshold` set: the best anchor's cosine, no calibration (policies written before it)."""
    fixed = EmbeddingRouter(encoder, ROUTES, None, Gate(threshold=0.35))
    scores = fixed.scores(ask("what is the boiling point of water").conversation)
    assert scores is not None and fixed.cut is None and scores.other.score == 0.35
    best = max(float(v) for v in encoder.encode(["what is the boiling point of water"], cache=False)[0] @ fixed.anchors.T)
    assert scores.routes[0].score == pytest.approx(best, abs=1e-5)


async def test_hybrid_answers_alone_when_confident_and_asks_arch_router_otherwise(router: EmbeddingRouter) -> None:
    arch = ScriptedRouter(route="travel")
    hybrid = HybridRouter(router, arch, margin=0.05)  # type: ignore[arg-type]
    confident = await hybrid.decide(ask("book me a flight to Paris for tomorrow"))
    assert confident.tier == EMBEDDING and confident.route == "travel" and arch.queries == []
    unsure = await hybrid.decide(ask("what is the boiling point of water"))
    assert unsure.tier == "arch-router" and unsure.route == "travel" and len(arch.queries) == 1


async def test_hybrid_degrades_to_the_embedding_decision_when_arch_router_fails(router: EmbeddingRouter) -> None:
    arch = ScriptedRouter(route=None, reason="router_timeout")
    hybrid = HybridRouter(router, arch, margin=2.0)  # never confident: always asks Arch-Router
    outcome = await hybrid.decide(ask("write a Python class for a bank account"))
    assert outcome == RouterOutcome("code", "matched", outcome.elapsed_ms, EMBEDDING, "router_timeout",
                                    outcome.score, outcome.runner_up, outcome.runner_up_score)
    assert outcome.score is not None and outcome.runner_up is not None
    assert len(arch.queries) == 1


async def test_batched_decisions_are_one_by_one_decisions(encoder: Encoder) -> None:
    """The quickstart policy on its own requests, all at once through one batcher (and a few
    follow-up turns, and a text two requests share), against each request encoded alone: the
    same vectors within float tolerance, the same scores, the same decisions."""
    policy = load_policy_file(ROOT / "policies" / "default.yaml")
    gate = Gate(policy.router.threshold, policy.router.strictness)
    batcher = EncodeBatcher(encoder, ThreadPoolExecutor(1))
    router = EmbeddingRouter(encoder, policy.route_specs, batcher, gate, policy.router.other_examples)
    texts = [json.loads(line)["messages"][-1]["content"] for line in (ROOT / "eval" / "quickstart.jsonl").open()]
    conversations = [[Message("user", t)] for t in texts] + [[Message("user", texts[0])]] + [
        [Message("user", before), Message("assistant", "ok"), Message("user", after)]
        for before, after in zip(texts[:20], texts[20:40])]
    batched = await asyncio.gather(*(router.score(c) for c in conversations))
    assert batcher.stats.batches < len(conversations) / 4 and batcher.stats.encoded < batcher.stats.texts
    for conversation, scores in zip(conversations, batched):
        request = router.request_texts(conversation)
        assert request is not None and scores is not None
        rows = await batcher.run(request.texts, request.queries)
        alone = router.request_vectors(conversation)
        assert alone is not None and np.abs(rows - alone).max() < 1e-5
        expected = router.scores(conversation)
        assert expected is not None and scores.route == expected.route
        assert dict(scores.ranking()) == pytest.approx(dict(expected.ranking()), abs=1e-5)


def test_the_encoder_runs_on_the_threads_it_is_given() -> None:
    assert Encoder(threads=2)._session.get_session_options().intra_op_num_threads == 2
