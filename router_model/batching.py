"""Concurrent requests' texts encoded together: one encoder call per batch, off the event loop.

One onnxruntime call costs ~1.9 ms before it runs a single token (encoder.py), so a worker that
encodes one request at a time pays that for every request, and under load the decisions queue
behind each other. Instead, what requests ask for while the encoder is busy goes in the next
call, each distinct text once; then each request's own work on its vectors (the router's scoring)
runs on the same thread, and its coroutine gets the result. The event loop only ever awaits a
future.

A batcher belongs to one event loop at a time (a worker's); the encoder thread is the
executor's, which should have one thread: batches run one after another, and a second thread
would only fight the first for the same cores.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from router_model.encoder import TextEncoder, Vectors

T = TypeVar("T")

# How long an idle encoder waits for company: not at all, as the wait for the previous batch
# gathers enough (benchmarks/embedding_batching.py, one encoder thread, quickstart requests: a 1 ms
# window cost 1 ms at concurrency 1 and gained nothing at 8 or 32; 2 ms was worse at 8). Requests
# that arrive in the same turn of the event loop still share a call.
WINDOW_S = 0.0


@dataclass
class _Job(Generic[T]):
    texts: Sequence[str]
    then: Callable[[Vectors], T]  # runs on the encoder thread with the texts' rows, in order
    future: asyncio.Future[T]


@dataclass
class _Outcome:
    value: Any = None
    error: BaseException | None = None


@dataclass
class BatchStats:
    """What a batcher did, for tests and benchmarks."""

    batches: int = 0
    requests: int = 0
    texts: int = 0  # asked for
    encoded: int = 0  # distinct, so encoded

    def add(self, requests: int, texts: int, encoded: int) -> None:
        self.batches += 1
        self.requests += requests
        self.texts += texts
        self.encoded += encoded


def run_batch(encoder: TextEncoder, jobs: Sequence[_Job[Any]]) -> tuple[list[_Outcome], int]:
    """On the encoder thread: every distinct text of `jobs` in one call, then each job's `then`
    on its rows. A failed encode fails every job; a failed `then` only its own. Also returns how
    many texts were encoded."""
    texts = list(dict.fromkeys(text for job in jobs for text in job.texts))
    try:
        vectors = encoder.encode(texts, cache=False)
    except Exception as exc:
        return [_Outcome(error=exc) for _ in jobs], len(texts)
    row = {text: index for index, text in enumerate(texts)}
    outcomes = []
    for job in jobs:
        try:
            outcomes.append(_Outcome(job.then(vectors[[row[text] for text in job.texts]])))
        except Exception as exc:
            outcomes.append(_Outcome(error=exc))
    return outcomes, len(texts)


class EncodeBatcher:
    def __init__(self, encoder: TextEncoder, executor: Executor, window_s: float = WINDOW_S) -> None:
        self.encoder = encoder
        self.executor = executor
        self.window_s = window_s
        self.stats = BatchStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list[_Job[Any]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running = False  # a batch is on the encoder thread

    async def run(self, texts: Sequence[str], then: Callable[[Vectors], T]) -> T:
        """`then(rows)` for these texts' vectors (one row per text, in order), computed on the
        encoder thread together with whatever else is waiting."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (a test's, a CLI command's): nothing carries over
            self._loop, self._waiting, self._timer, self._running = loop, [], None, False
        future: asyncio.Future[T] = loop.create_future()
        self._waiting.append(_Job(texts, then, future))
        if not self._running and self._timer is None:
            self._timer = loop.call_later(self.window_s, self._start)
        return await future

    def _start(self) -> None:
        """Hand what waits to the encoder thread (on the loop, from the timer or the last batch)."""
        self._timer = None
        jobs = [job for job in self._waiting if not job.future.done()]  # cancelled: skipped
        self._waiting = []
        if not jobs:
            return
        self._running = True
        assert self._loop is not None
        done = self._loop.run_in_executor(self.executor, run_batch, self.encoder, jobs)
        done.add_done_callback(lambda finished: self._finish(jobs, finished))

    def _finish(self, jobs: list[_Job[Any]], finished: asyncio.Future[tuple[list[_Outcome], int]]) -> None:
        self._running = False
        outcomes, encoded = _outcomes(jobs, finished)
        self.stats.add(len(jobs), sum(len(job.texts) for job in jobs), encoded)
        for job, outcome in zip(jobs, outcomes):
            if job.future.done():  # cancelled while it ran
                continue
            if outcome is None:
                job.future.cancel()
            elif outcome.error is not None:
                job.future.set_exception(outcome.error)
            else:
                job.future.set_result(outcome.value)
        if self._waiting:  # they waited for this batch already: no window
            self._start()


def _outcomes(jobs: Sequence[_Job[Any]], finished: asyncio.Future[tuple[list[_Outcome], int]]
              ) -> tuple[Sequence[_Outcome | None], int]:
    """Each job's outcome (None: the executor shut down before running it) and the texts encoded."""
    if finished.cancelled():
        return [None] * len(jobs), 0
    error = finished.exception()
    if error is not None:  # not from the encoder or a job (run_batch catches those): say, MemoryError
        return [_Outcome(error=error)] * len(jobs), 0
    return finished.result()
