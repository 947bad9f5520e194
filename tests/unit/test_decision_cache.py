"""One router decision per user turn: tool loops, retries, concurrent twins, stickiness, bounds."""

from __future__ import annotations

import asyncio
from typing import Any

from control_plane.policy.loader import parse_policy
from control_plane.policy.model import Policy
from control_plane.routing.cache import DecisionCaches, TurnCache
from control_plane.routing.choice import choose_model
from tests.support.scripted_router import ScriptedRouter
from tests.unit.test_policy_loader import GOOD

ASK = {"role": "user", "content": "write a function that sorts a list"}
CALL = {"role": "assistant", "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "run", "arguments": "{}"}}]}
RESULT = {"role": "tool", "tool_call_id": "c1", "content": "ok"}
NEXT = {"role": "user", "content": "thanks, now summarize what you did"}


def policy(extra: str = "") -> Policy:
    text = GOOD.replace("  timeout_ms: 400\n", "  timeout_ms: 400\n" + extra)
    return parse_policy(text, "default.yaml", "default")


async def decide(p: Policy, router: ScriptedRouter, cache: TurnCache, messages: list[Any]) -> tuple[str, str]:
    model, decision = await choose_model(p, "auto", messages, router, cache)
    return model.name, decision.kind


async def test_a_tool_loop_keeps_its_turns_model_and_a_new_turn_asks_again() -> None:
    p = policy()
    router, cache = ScriptedRouter(route="code_generation"), DecisionCaches().for_policy(p)
    assert await decide(p, router, cache, [ASK]) == ("gpt-4o", "routed:arch-router")
    router.route = None  # the router would now say `other`: the loop must not switch models
    history = [ASK]
    for _ in range(3):
        history += [CALL, RESULT]
        assert await decide(p, router, cache, history) == ("gpt-4o", "sticky")
    assert len(router.queries) == 1
    assert await decide(p, router, cache, [*history, NEXT]) == ("small", "routed:arch-router")
    assert len(router.queries) == 2


async def test_a_retry_is_cached_and_a_router_failure_is_not() -> None:
    p = policy()
    router, cache = ScriptedRouter(route="code_generation"), DecisionCaches().for_policy(p)
    await decide(p, router, cache, [ASK])
    assert await decide(p, router, cache, [ASK]) == ("gpt-4o", "cached")
    failing = ScriptedRouter(reason="router_timeout")
    other = [{"role": "user", "content": "something else"}]
    assert (await decide(p, failing, cache, other))[1] == "fallback:router_timeout"
    assert (await decide(p, failing, cache, other))[1] == "fallback:router_timeout"
    assert len(failing.queries) == 2  # asked again: a failure is not a decision


async def test_stickiness_conversation_keeps_the_first_decision() -> None:
    p = policy("  stickiness: conversation\n")
    router, cache = ScriptedRouter(route="code_generation"), DecisionCaches().for_policy(p)
    await decide(p, router, cache, [ASK])
    router.route = None
    assert await decide(p, router, cache, [ASK, CALL, RESULT, NEXT]) == ("gpt-4o", "sticky")
    assert len(router.queries) == 1


async def test_concurrent_identical_requests_ask_the_router_once() -> None:
    p = policy()
    router, cache = ScriptedRouter(route="code_generation", delay_s=0.05), DecisionCaches().for_policy(p)
    kinds = await asyncio.gather(*(decide(p, router, cache, [ASK]) for _ in range(5)))
    assert len(router.queries) == 1
    assert sorted(k for _, k in kinds) == ["cached"] * 4 + ["routed:arch-router"]


async def test_bounded_in_size_and_age() -> None:
    now = [0.0]
    p = policy("  cache: {max_entries: 10, ttl_s: 60}\n")
    router, cache = ScriptedRouter(route="code_generation"), DecisionCaches(lambda: now[0]).for_policy(p)
    for index in range(100):
        await decide(p, router, cache, [{"role": "user", "content": f"write function number {index}"}])
    assert len(cache) == 10
    await decide(p, router, cache, [ASK])
    now[0] += 61
    assert await decide(p, router, cache, [ASK, CALL, RESULT]) == ("gpt-4o", "routed:arch-router")  # expired


def test_a_policy_edit_starts_an_empty_cache() -> None:
    caches = DecisionCaches()
    first = caches.for_policy(policy())
    assert caches.for_policy(policy()) is first
    assert caches.for_policy(policy("  stickiness: turn\n")) is not first  # another version
