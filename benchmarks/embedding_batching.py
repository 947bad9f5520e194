"""The embedding tier alone, in this process (no Envoy, no workers): decisions one at a time on
the encoder thread (as before batching) against batched (router_model/batching.py) with idle
windows of 0, 1 and 2 ms, at several concurrencies, interleaved in one run.

Each cell runs `concurrency` asyncio tasks, each deciding one request after another for
`--seconds`: a request is a new text each time (benchmarks/workloads.py's texts and nonces; by
default the quickstart policy and its requests). Prints decisions/s, decision time p50/p99 (what
`x-switchyard-router-ms` reports) and CPU per decision (this process). One encoder thread,
as in one processor worker.

    python benchmarks/embedding_batching.py [--concurrency 1 8 32] [--seconds 4] [--rounds 1]
        [--policy FILE] [--texts JSONL ...]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.load_generator import p99
from benchmarks.workloads import DEFAULT_POLICY, DEFAULT_TEXTS, carries_nonce, latest_user_texts, with_nonce
from control_plane.policy.loader import load_policy_file
from router_model.batching import EncodeBatcher
from router_model.embedding import EmbeddingRouter, Gate
from router_model.encoder import Encoder
from router_model.prompt import Message

Decide = Callable[[list[Message]], Awaitable[object]]


@dataclass
class Cell:
    mode: str
    concurrency: int
    decisions_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu_s: float = 0.0


async def run(cell: Cell, decide: Decide, texts: list[str], seconds: float, nonces: itertools.count[int]) -> None:
    """`cell.concurrency` tasks deciding back to back for `seconds`."""
    deadline = time.perf_counter() + seconds

    async def one_task() -> None:
        while time.perf_counter() < deadline:
            nonce = next(nonces)
            started = time.perf_counter()
            await decide([Message("user", with_nonce(texts[nonce % len(texts)], nonce))])
            cell.decisions_ms.append((time.perf_counter() - started) * 1000)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one_task() for _ in range(cell.concurrency)))
    cell.cpu_s += time.process_time() - cpu
    cell.seconds += time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY)
    parser.add_argument("--texts", type=Path, nargs="+", default=list(DEFAULT_TEXTS))
    args = parser.parse_args()

    policy = load_policy_file(args.policy)
    texts = [t for t in dict.fromkeys(latest_user_texts(args.texts)) if carries_nonce(t)]
    encoder, thread = Encoder(), ThreadPoolExecutor(1, thread_name_prefix="embedding")
    gate = Gate(policy.router.threshold, policy.router.strictness)

    def router(batcher: EncodeBatcher | None) -> EmbeddingRouter:
        return EmbeddingRouter(encoder, policy.route_specs, batcher, gate, policy.router.other_examples)

    alone = router(None)

    async def one_by_one(conversation: list[Message]) -> object:  # the tier before batching
        return await asyncio.get_running_loop().run_in_executor(thread, alone.scores, conversation)

    modes: dict[str, Decide] = {"one by one": one_by_one}
    for window_ms in (0, 1, 2):
        modes[f"batched, {window_ms} ms"] = router(EncodeBatcher(encoder, thread, window_ms / 1000)).score
    cells = [Cell(mode, c) for c in args.concurrency for mode in modes]
    nonces = itertools.count()

    async def measure() -> None:
        for cell in cells[:len(modes)]:  # warm-up: onnxruntime's first calls at each shape are slow
            await run(Cell(cell.mode, 8), modes[cell.mode], texts, 1.0, nonces)
        for _ in range(args.rounds):
            for cell in cells:
                await run(cell, modes[cell.mode], texts, args.seconds, nonces)

    asyncio.run(measure())
    print(f"policy {args.policy}, {len(texts)} texts; {args.seconds:g} s per cell, {args.rounds} round(s); "
          "one encoder thread")
    print(f"{'mode':>16} {'conc':>4} {'decisions/s':>11} {'p50 ms':>7} {'p99 ms':>7} {'CPU ms/decision':>15}")
    for cell in cells:
        count = len(cell.decisions_ms)
        print(f"{cell.mode:>16} {cell.concurrency:>4} {count / cell.seconds:11.0f} "
              f"{statistics.median(cell.decisions_ms):7.1f} {p99(cell.decisions_ms):7.1f} "
              f"{cell.cpu_s * 1000 / count:15.2f}")


if __name__ == "__main__":
    main()
