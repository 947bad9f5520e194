"""What requests share across processor workers, kept in ONE place, the control plane: router
decisions per user turn (control_plane/routing/cache.py) and per-app rate limits.

A worker asks over a Unix socket (newline-delimited JSON, multiplexed by request id). Only
requests that need it pay the round trip (~0.1 ms): `model: auto` (next to a router call of
tens of ms) and apps with a rate limit. So a tool loop keeps its turn's model, and an app its
limit, whichever worker Envoy picks.

    claim  {policy, version, max_entries, ttl_s, key} -> {"kept": [route, model, turn]} or
           {"decide": true}: the caller asks the router, then settles (concurrent claims for
           the same key wait for that one decision: single-flight across workers)
    settle {token, kept: [...] | null}
    take   {app, rpm} -> {"wait_s": seconds | null}
    response {id} -> {"stored": StoredResponse.wire() | null}: a response a follow-up names
           (Responses API; the guarded path, in the control plane, keeps them)
    refuse {app, limits} -> {"refusal": [code, message, retry_after_s] | null}: an app over its
           budget or token limit (the control plane keeps the ledger)
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

from control_plane.apis.request_error import RequestError
from control_plane.extproc.processor import Shared
from control_plane.ledger import AppLimits, Ledger, Refusal
from control_plane.observability.metrics import Metrics
from control_plane.policy.apps import App
from control_plane.policy.model import DecisionSettings, Policy
from control_plane.routing.cache import CachedDecision
from control_plane.routing.response_store import StoredResponse

log = structlog.get_logger("switchyard.shared_state")

SETTLE_TIMEOUT_S = 15.0  # longer than any router call (timeout_ms is at most 10 s)
Message = dict[str, Any]


def _kept(decision: CachedDecision | None) -> list[str] | None:
    return None if decision is None else [decision.route, decision.model, decision.turn]


def _decision(kept: Any) -> CachedDecision | None:
    return None if kept is None else CachedDecision(*kept)


# ---- the control plane's side ------------------------------------------------------------------


class SharedStateServer:
    def __init__(self, path: Path, metrics: Metrics, ledger: Ledger | None = None) -> None:
        self.path = path
        self.shared = Shared(metrics, ledger=ledger)  # the one `Shared` every worker's requests use
        self._server: asyncio.Server | None = None
        self._tokens = itertools.count(1)
        self._settling: dict[int, asyncio.Future[CachedDecision | None]] = {}

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._connection, path=str(self.path))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks: set[asyncio.Task[None]] = set()
        mine: set[int] = set()  # settle tokens this worker owes: released if it goes away
        try:
            while line := await reader.readline():
                task = asyncio.ensure_future(self._answer(json.loads(line), writer, mine))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except (ConnectionError, ValueError):
            pass
        finally:
            for token in mine:  # a dead worker's pending decisions: the waiters decide themselves
                self._settle(token, None)
            writer.close()

    async def _answer(self, message: Message, writer: asyncio.StreamWriter, mine: set[int]) -> None:
        op = message.get("op")
        if op == "claim":
            reply = await self._claim(message, mine)
        elif op == "settle":
            self._settle(int(message["token"]), _decision(message.get("kept")))
            mine.discard(int(message["token"]))
            return
        elif op == "take":
            app = App(str(message["app"]), requests_per_minute=int(message["rpm"]))
            reply = {"wait_s": await self.shared.retry_after_s(app)}
        elif op == "refuse":
            app = App(str(message["app"]), limits=AppLimits(*message["limits"]))
            refused = await self.shared.refusal(app)
            reply = {"refusal": None if refused is None else [refused.code, refused.message, refused.retry_after_s]}
        elif op == "response":
            stored = await self.shared.stored_response(str(message["response_id"]))
            reply = {"stored": stored.wire() if stored is not None else None}
        else:
            reply = {"error": f"unknown op {op!r}"}
        writer.write(json.dumps({"id": message.get("id"), **reply}).encode() + b"\n")

    async def _claim(self, message: Message, mine: set[int]) -> Message:
        settings = DecisionSettings(max_entries=int(message["max_entries"]), ttl_s=float(message["ttl_s"]))
        cache = self.shared.decisions.get(str(message["policy"]), str(message["version"]), settings)
        token = next(self._tokens)
        decided = asyncio.get_running_loop().create_future()  # this claimant is told to decide
        settled: asyncio.Future[CachedDecision | None] = asyncio.get_running_loop().create_future()

        async def decide() -> CachedDecision | None:
            self._settling[token] = settled
            mine.add(token)
            decided.set_result(True)
            try:
                async with asyncio.timeout(SETTLE_TIMEOUT_S):
                    return await settled
            finally:
                self._settling.pop(token, None)

        once = asyncio.ensure_future(cache.once(str(message["key"]), decide))
        await asyncio.wait([once, decided], return_when=asyncio.FIRST_COMPLETED)
        if decided.done():
            once.add_done_callback(lambda f: f.exception() if not f.cancelled() else None)
            return {"decide": True, "token": token}
        try:
            kept, _ = once.result()
        except Exception:  # the decider went away or timed out: decide on your own
            kept = None
        return {"kept": _kept(kept)} if kept is not None else {"decide": True, "token": 0}

    def _settle(self, token: int, decision: CachedDecision | None) -> None:
        future = self._settling.get(token)
        if future is not None and not future.done():
            future.set_result(decision)


# ---- a worker's side ---------------------------------------------------------------------------


class SharedStateClient:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Message]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        reader, self._writer = await asyncio.open_unix_connection(str(self.path))
        self._reading = asyncio.ensure_future(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                reply = json.loads(line)
                future = self._pending.pop(int(reply.get("id") or 0), None)
                if future is not None and not future.done():
                    future.set_result(reply)
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("the control plane went away"))

    def send(self, message: Message) -> None:
        assert self._writer is not None, "connect() first"
        self._writer.write(json.dumps(message).encode() + b"\n")

    async def call(self, message: Message) -> Message:
        """The control plane's answer; without a control plane (it is being restarted, and this
        worker with it), a `503 processor_unavailable` for the request that needed it."""
        request_id = next(self._ids)
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            self.send({**message, "id": request_id})
            return await future
        except ConnectionError:
            raise RequestError(503, "switchyard processor unavailable: its control plane went away",
                               "processor_unavailable") from None

    async def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
        if self._writer is not None:
            self._writer.close()


class RemoteTurns:
    """A policy's turn decisions, kept by the control plane (same `once` as TurnCache)."""

    def __init__(self, client: SharedStateClient, policy: Policy) -> None:
        self.client = client
        self.claim = {"op": "claim", "policy": policy.name, "version": policy.version,
                      "max_entries": policy.decisions.max_entries, "ttl_s": policy.decisions.ttl_s}

    async def once(self, key: str, decide: Callable[[], Awaitable[CachedDecision | None]]
                   ) -> tuple[CachedDecision | None, bool]:
        try:
            reply = await self.client.call({**self.claim, "key": key})
        except RequestError:  # the control plane went away (it is being restarted): decide alone
            return await decide(), False
        if not reply.get("decide"):
            return _decision(reply.get("kept")), True
        token = int(reply.get("token") or 0)
        result: CachedDecision | None = None
        try:
            result = await decide()
        finally:
            if token:
                self.client.send({"op": "settle", "token": token, "kept": _kept(result)})
        return result, False


class RemoteShared:
    """The processor's `Shared` in a worker: decisions and rate limits live in the control plane."""

    def __init__(self, client: SharedStateClient, metrics: Metrics) -> None:
        self.client = client
        self.metrics = metrics

    def decisions_for(self, policy: Policy) -> RemoteTurns:
        return RemoteTurns(self.client, policy)

    async def retry_after_s(self, app: App) -> int | None:
        if app.requests_per_minute is None:
            return None
        reply = await self.client.call({"op": "take", "app": app.name, "rpm": app.requests_per_minute})
        wait = reply.get("wait_s")
        return None if wait is None else int(wait)

    async def refusal(self, app: App) -> Refusal | None:
        limits = app.limits
        reply = await self.client.call({"op": "refuse", "app": app.name, "limits": [
            limits.usd_per_day, limits.usd_per_month, limits.tokens_per_minute]})
        refused = reply.get("refusal")
        return None if refused is None else Refusal(refused[0], str(refused[1]), int(refused[2]))

    async def stored_response(self, response_id: str) -> StoredResponse | None:
        reply = await self.client.call({"op": "response", "response_id": response_id})
        stored = reply.get("stored")
        return StoredResponse.from_wire(stored) if isinstance(stored, dict) else None
