"""The encode batcher on a scripted encoder that can be held inside a call, so which requests
share a batch is decided by the test, not by timing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from router_model.batching import EncodeBatcher
from router_model.encoder import MAX_CALL_ROWS, MAX_CALL_TOKENS, Vectors, intra_op_threads, length_groups

WAIT_S = 10.0  # a deadline for events that come at once when nothing is broken


class HeldEncoder:
    """Text -> [len(text), first letter's code]; every call recorded; `hold()` keeps the next
    call inside the encoder until `release()`."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.entered = threading.Event()
        self._gate = threading.Event()
        self._gate.set()

    def hold(self) -> None:
        self.entered.clear()
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def encode(self, texts: Sequence[str], cache: bool = True) -> Vectors:
        self.calls.append(list(texts))
        self.entered.set()
        assert self._gate.wait(WAIT_S)
        if "boom" in texts:
            raise RuntimeError("encoder failed")
        return vectors(texts)


def vectors(texts: Sequence[str]) -> Vectors:
    return np.array([[len(t), ord(t[0])] for t in texts], dtype=np.float32).reshape(len(texts), 2)


def rows(vectors: Vectors) -> list[list[float]]:
    return [[float(x) for x in row] for row in vectors]


@pytest.fixture
def encoder() -> HeldEncoder:
    return HeldEncoder()


@pytest.fixture
def batcher(encoder: HeldEncoder) -> EncodeBatcher:
    return EncodeBatcher(encoder, ThreadPoolExecutor(1))


async def started(encoder: HeldEncoder, batcher: EncodeBatcher, texts: list[str]) -> asyncio.Task[list[list[float]]]:
    """A request whose batch is now held inside the encoder (the event loop is not)."""
    encoder.hold()
    task = asyncio.create_task(batcher.run(texts, rows))
    assert await asyncio.to_thread(encoder.entered.wait, WAIT_S)
    return task


async def test_what_arrives_while_a_batch_runs_is_one_call_each_distinct_text_once(
        encoder: HeldEncoder, batcher: EncodeBatcher) -> None:
    first = await started(encoder, batcher, ["apple", "bean"])
    # The first batch is inside the encoder; the event loop still takes requests.
    later = [asyncio.create_task(batcher.run(texts, rows))
             for texts in (["bean", "corn"], ["corn"], ["apple", "apple", "date"])]
    await asyncio.sleep(0)
    assert not first.done() and encoder.calls == [["apple", "bean"]]
    encoder.release()
    results = await asyncio.gather(first, *later)
    assert encoder.calls == [["apple", "bean"], ["bean", "corn", "apple", "date"]]
    assert results == [rows(vectors(t)) for t in (["apple", "bean"], ["bean", "corn"], ["corn"],
                                                   ["apple", "apple", "date"])]
    assert (batcher.stats.batches, batcher.stats.requests, batcher.stats.texts, batcher.stats.encoded) == (2, 4, 8, 6)


async def test_requests_that_arrive_together_at_an_idle_encoder_share_a_call(
        encoder: HeldEncoder, batcher: EncodeBatcher) -> None:
    results = await asyncio.gather(batcher.run(["fig"], rows), batcher.run(["grape", "fig"], rows))
    assert encoder.calls == [["fig", "grape"]]
    assert results == [rows(vectors(["fig"])), rows(vectors(["grape", "fig"]))]


async def test_a_failed_encode_fails_its_batch_and_a_failed_step_only_its_request(
        encoder: HeldEncoder, batcher: EncodeBatcher) -> None:
    def broken(_: Vectors) -> list[list[float]]:
        raise ValueError("scoring failed")

    outcomes = await asyncio.gather(batcher.run(["boom"], rows), batcher.run(["kiwi"], rows), return_exceptions=True)
    assert [type(o) for o in outcomes] == [RuntimeError, RuntimeError]
    outcomes = await asyncio.gather(batcher.run(["lime"], broken), batcher.run(["kiwi"], rows), return_exceptions=True)
    assert isinstance(outcomes[0], ValueError) and outcomes[1] == rows(vectors(["kiwi"]))


async def test_a_request_cancelled_while_it_waits_is_not_encoded(encoder: HeldEncoder, batcher: EncodeBatcher) -> None:
    first = await started(encoder, batcher, ["mango"])
    gone = asyncio.create_task(batcher.run(["nectarine"], rows))
    kept = asyncio.create_task(batcher.run(["olive"], rows))
    await asyncio.sleep(0)
    gone.cancel()
    encoder.release()
    assert await first == rows(vectors(["mango"])) and await kept == rows(vectors(["olive"]))
    assert encoder.calls == [["mango"], ["olive"]] and gone.cancelled()


async def test_a_batcher_moves_to_a_new_event_loop(encoder: HeldEncoder, batcher: EncodeBatcher) -> None:
    """Commands and tests run one loop after another with the same routers."""
    def in_a_new_loop() -> list[list[float]]:
        return asyncio.run(batcher.run(["pear"], rows))

    assert await batcher.run(["plum"], rows) == rows(vectors(["plum"]))
    assert await asyncio.to_thread(in_a_new_loop) == rows(vectors(["pear"]))
    assert await batcher.run(["quince"], rows) == rows(vectors(["quince"]))


@pytest.mark.parametrize("lengths,groups", [
    ([], []),
    ([12, 10], [[1, 0]]),  # 2 x 12 + 20 = 44 < 10 + 12 + 2 x 20 = 62: padding is cheaper than a call
    ([10, 200, 11], [[0, 2], [1]]),  # 3 x 200 + 20 = 620 > 2 x 11 + 200 + 2 x 20 = 262
    ([8, 8, 8, 30, 30], [[0, 1, 2], [3, 4]]),  # 3 x 8 + 2 x 30 + 2 x 20 = 124 < 5 x 30 + 20 = 170
])
def test_texts_are_grouped_into_calls_by_least_estimated_cost(lengths: list[int], groups: list[list[int]]) -> None:
    assert length_groups(lengths) == groups


def test_no_call_runs_more_than_its_token_budget() -> None:
    lengths = [5] * 1000 + [256] * 40
    groups = length_groups(lengths)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert all(len(g) <= MAX_CALL_ROWS and len(g) * max(lengths[i] for i in g) <= MAX_CALL_TOKENS for g in groups)
    assert len(groups) == 8 + 3  # 1000 short texts in calls of 128 rows; 40 long ones in 16 + 16 + 8


@pytest.mark.parametrize("cpus,workers,threads", [(2, 2, 1), (2, 1, 2), (16, 8, 2), (1, 4, 1), (8, 3, 2)])
def test_encoder_threads_are_each_workers_share_of_the_cores(cpus: int, workers: int, threads: int) -> None:
    assert intra_op_threads(cpus, workers) == threads


async def test_a_router_factory_keeps_one_encoder_and_batcher_per_encoder_name() -> None:
    """Policies that name the same encoder share its batcher (one batch holds any policy's
    requests); a policy naming another gets that one, loaded once, on first use."""
    from router_model.encoders import DEFAULT_ENCODER
    from router_model.kinds import RouterFactory

    loaded: list[str] = []

    def load(name: str) -> HeldEncoder:
        loaded.append(name)
        return HeldEncoder()

    factory = RouterFactory(encoder=load)  # type: ignore[arg-type]
    try:
        assert loaded == []
        default, again = factory.batcher(), factory.batcher(DEFAULT_ENCODER)
        other = factory.batcher("minilm-int8")
        assert default is again and other is not default and other is factory.batcher("minilm-int8")
        assert loaded == [DEFAULT_ENCODER, "minilm-int8"]
        assert rows(await other.run(["ab"], lambda v: v)) == [[2.0, 97.0]]
    finally:
        await factory.close()
