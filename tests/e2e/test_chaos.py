"""Load and chaos, bounded and on loopback: 60 s at 50 requests/s (streaming and not, `auto` and
explicit) while the router model server and the processor are each killed and restarted once.

Every request must end in a 2xx from a configured model, or in the one deliberate, documented
error (`503 processor_unavailable` while the processor is down: Envoy fails closed). No connection
resets, no truncated stream passed off as success. The tally is printed.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import time
from pathlib import Path

import openai
import pytest

from tests.e2e.conftest import Provider, SplitStack, split_stack, write_policies

DURATION_S = 60.0
RATE_PER_S = 50
DELIBERATE = {"503 processor_unavailable"}


async def one(client: openai.AsyncOpenAI, index: int) -> str:
    # Every conversation is new: a repeated one would be answered from the decision cache, and
    # the router (whose failures this test is about) would not be asked.
    model = "auto" if index % 2 == 0 else "alpha-chat"
    stream = index % 4 >= 2
    extra = {"x-switchyard-policy": "scripted"}
    try:
        if not stream:
            raw = await client.chat.completions.with_raw_response.create(
                model=model, messages=[{"role": "user", "content": f"hi {index}"}], extra_headers=extra)
            raw.parse()
            return f"2xx {raw.headers['x-switchyard-decision']}"
        raw = await client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": f"hi {index}"}], extra_headers=extra, stream=True)
        finished = False
        async for chunk in raw.parse():
            finished = finished or any(c.finish_reason == "stop" for c in chunk.choices)
        # A stream that ends cleanly without its final chunk would be a truncation passed off as success.
        return f"2xx stream {raw.headers['x-switchyard-decision']}" if finished else "TRUNCATED_AS_SUCCESS"
    except openai.APIStatusError as exc:
        code = exc.body.get("code") if isinstance(exc.body, dict) else None
        return f"{exc.status_code} {code}"
    except openai.APIConnectionError as exc:
        return f"CONNECTION_ERROR {type(exc.__cause__).__name__}"
    except Exception as exc:  # anything else is counted, and fails the test below
        return f"EXCEPTION {type(exc).__name__}: {exc}"


async def load(base_url: str, chaos) -> collections.Counter[str]:  # type: ignore[no-untyped-def]
    client = openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=30)
    tasks = []
    started = time.monotonic()
    chaos_task = asyncio.ensure_future(chaos(started))
    for index in range(int(DURATION_S * RATE_PER_S)):
        await asyncio.sleep(max(0.0, started + index / RATE_PER_S - time.monotonic()))
        tasks.append(asyncio.ensure_future(one(client, index)))
    results = await asyncio.gather(*tasks)
    await chaos_task
    await client.close()
    return collections.Counter(results)


@pytest.fixture()
def stack(tmp_path: Path, logs: Path, alpha: Provider, beta: Provider, scripted_router: Provider):  # type: ignore[no-untyped-def]
    for provider in (alpha, beta, scripted_router):
        provider.reset()
    scripted_router.control(route="small_talk")
    alpha.control(chunks=5, chunk_delay_ms=20)
    write_policies(tmp_path, scripted_router.url, scripted_router.url, alpha, beta)
    stack = split_stack("chaos", tmp_path, logs)
    yield stack
    stack.stop()


def test_load_with_router_and_processor_restarts(stack: SplitStack, scripted_router: Provider,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    events: list[str] = []

    async def chaos(started: float) -> None:
        async def at(t: float) -> None:
            await asyncio.sleep(max(0.0, started + t - time.monotonic()))

        await at(10)
        scripted_router.process.stop(signal.SIGKILL)
        events.append(f"{time.monotonic() - started:5.1f}s router model server killed")
        await at(20)
        scripted_router.process.restart()
        await asyncio.to_thread(scripted_router.process.wait_http, f"{scripted_router.url}/_test/requests", 30)
        scripted_router.control(route="small_talk")
        events.append(f"{time.monotonic() - started:5.1f}s router model server back")
        await at(30)
        assert stack.switchyard is not None
        os.kill(stack.switchyard.pid, signal.SIGKILL)
        events.append(f"{time.monotonic() - started:5.1f}s processor killed")
        await at(33)
        await asyncio.to_thread(stack.start_switchyard)
        events.append(f"{time.monotonic() - started:5.1f}s processor back")

    tally = asyncio.run(load(stack.base_url, chaos))
    with capsys.disabled():
        print(f"\nchaos: {sum(tally.values())} requests in {DURATION_S:.0f} s; " + "; ".join(events))
        for outcome, count in sorted(tally.items(), key=lambda kv: -kv[1]):
            print(f"  {count:5d}  {outcome}")
    assert sum(tally.values()) == DURATION_S * RATE_PER_S
    unexpected = {k: v for k, v in tally.items() if not k.startswith("2xx") and k not in DELIBERATE}
    assert unexpected == {}
    # The chaos really happened, and traffic recovered from it.
    assert tally["2xx fallback:router_unavailable"] + tally["2xx stream fallback:router_unavailable"] > 0
    assert tally["503 processor_unavailable"] > 0
    assert tally["2xx routed:arch-router"] > 0 and tally["2xx stream explicit"] > 0
