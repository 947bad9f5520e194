"""The embedding tier and the hybrid, with the real MiniLM encoder (ONNX) and a scripted
Arch-Router."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from router_model.embedding import EmbeddingRouter, anchors_of, instruction_head
from router_model.encoder import Encoder
from router_model.hybrid import HybridRouter
from router_model.prompt import Message
from router_model.router import EMBEDDING, RouterOutcome, RouterQuery, RouteSpec
from tests.support.scripted_router import ScriptedRouter

ROUTES = (
    RouteSpec("code", "writing code: functions, classes, scripts", ("write a Python function that sorts a list",)),
    RouteSpec("travel", "travel planning: flights, hotels, rental cars", ("book me a flight to Paris",)),
)


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return Encoder()


@pytest.fixture(scope="module")
def router(encoder: Encoder) -> EmbeddingRouter:
    return EmbeddingRouter(encoder, ROUTES, threshold=0.35, executor=ThreadPoolExecutor(1))


def ask(text: str) -> RouterQuery:
    return RouterQuery(ROUTES, [Message("user", text)])


def test_anchors_are_description_parts_and_examples() -> None:
    assert anchors_of(ROUTES[0]) == ["writing code: functions, classes, scripts", "writing code", "functions",
                                     "classes", "scripts", "write a Python function that sorts a list"]
    assert instruction_head("Summarize this article: The council met on Tuesday.") == "Summarize this article"


def test_encoder_vectors_are_unit_length_and_batch_independent(encoder: Encoder) -> None:
    alone = encoder.encode(["a b"], cache=False)[0]
    batched = encoder.encode(["a b", "a much longer sentence that needs padding in the batch"], cache=False)[0]
    assert abs(float(alone @ alone) - 1) < 1e-5
    assert float(alone @ batched) > 0.9999  # padding is masked out


async def test_routes_by_similarity_and_says_other_below_threshold(router: EmbeddingRouter) -> None:
    code = await router.decide(ask("implement a function that reverses a string in Python"))
    travel = await router.decide(ask("I need a hotel in Rome for two nights"))
    unrelated = await router.decide(ask("what is the boiling point of water"))
    assert (code.route, code.tier, code.reason) == ("code", EMBEDDING, "matched")
    assert travel.route == "travel"
    assert (unrelated.route, unrelated.reason, unrelated.failed) == (None, "other", False)


async def test_hybrid_answers_alone_when_confident_and_asks_arch_router_otherwise(router: EmbeddingRouter) -> None:
    arch = ScriptedRouter(route="travel")
    hybrid = HybridRouter(router, arch, margin=0.05)  # type: ignore[arg-type]
    confident = await hybrid.decide(ask("book a flight to Paris for tomorrow"))
    assert confident.tier == EMBEDDING and confident.route == "travel" and arch.queries == []
    unsure = await hybrid.decide(ask("what is the boiling point of water"))
    assert unsure.tier == "arch-router" and unsure.route == "travel" and len(arch.queries) == 1


async def test_hybrid_degrades_to_the_embedding_decision_when_arch_router_fails(router: EmbeddingRouter) -> None:
    arch = ScriptedRouter(route=None, reason="router_timeout")
    hybrid = HybridRouter(router, arch, margin=2.0)  # never confident: always asks Arch-Router
    outcome = await hybrid.decide(ask("write a Python class for a bank account"))
    assert outcome == RouterOutcome("code", "matched", outcome.elapsed_ms, EMBEDDING, degraded="router_timeout")
    assert len(arch.queries) == 1
