"""The shared counts in Redis (or Valkey): what every sidecar of an app added up.

Keys (app names come last, so any character in them is safe):
    switchyard:day:<YYYY-MM-DD>:<app>      hash, kept 40 days   \\  fields: requests, input, cached_input,
    switchyard:month:<YYYY-MM>:<app>       hash, kept 400 days  /   output, reasoning, cost_nano, unpriced
                                           (the app's totals), and "<field>|<model>" per model
    switchyard:apps:<YYYY-MM>              set of the apps counted that month (for the report)
    switchyard:tpm:<YYYY-MM-DDTHH:MM>:<app>  integer, tokens in that minute, kept 120 s
    switchyard:batch:<id>                  marks a batch as applied, kept 1 day
    switchyard:epoch                       names this dataset; no expiry (see below)

A batch is applied by ONE Lua script, atomically and at most once: it sets the batch's marker
first, so a retry after an ambiguous failure (a timeout after Redis applied it) adds nothing. It
also checks the epoch: a Redis that lost its data (restarted without persistence, flushed) has
none, or a new one, and each sidecar then pushes its own totals of the month again (the ledger's
"reseed"), so the shared totals come back whole instead of starting from zero.

Every sync is one round trip: MULTI, the script (when there is a batch), GET epoch, and the
watched apps' totals (two HGETs and a GET each), EXEC. Redis Cluster is not supported (a batch
spans many keys); a single Redis or Valkey with `maxmemory-policy noeviction` is.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from control_plane.ledger.batch import Batch
from control_plane.ledger.budgets import AppTotals
from control_plane.ledger.model import Counts, Row
from control_plane.ledger.windows import Windows

PREFIX = "switchyard:"
EPOCH_KEY = PREFIX + "epoch"
DAY_TTL_S = 40 * 86400
MONTH_TTL_S = 400 * 86400
MINUTE_TTL_S = 120
MARKER_TTL_S = 86400  # a retry comes within seconds; a day covers a long partition
CONNECT_TIMEOUT_S = 0.5
# Past this a sync counts as failed: the ledger keeps counting locally and retries with back-off.
COMMAND_TIMEOUT_S = 1.0
SCHEMES = ("redis", "rediss", "unix")

# KEYS[1] the epoch, KEYS[2] the batch's marker, KEYS[3..] counters; ARGV[1] the epoch the batch
# counts against, ARGV[2] the marker's TTL, ARGV[3] a JSON list aligned with KEYS[3..], each
# {"t": ttl, and "h": {field: amount} (a hash), "n": amount (a counter) or "s": [members] (a set)}.
# Amounts are strings: Lua numbers are doubles, and Redis would format a large one as 1e+17.
APPLY = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then return 0 end
for i, op in ipairs(cjson.decode(ARGV[3])) do
  local key = KEYS[i + 2]
  if op.h then
    for field, amount in pairs(op.h) do redis.call('HINCRBY', key, field, amount) end
  elseif op.n then
    redis.call('INCRBY', key, op.n)
  else
    for _, member in ipairs(op.s) do redis.call('SADD', key, member) end
  end
  redis.call('EXPIRE', key, op.t)
end
return 1
"""


def day_key(day: str, app: str) -> str:
    return f"{PREFIX}day:{day}:{app}"


def month_key(month: str, app: str) -> str:
    return f"{PREFIX}month:{month}:{app}"


def minute_key(minute: str, app: str) -> str:
    return f"{PREFIX}tpm:{minute}:{app}"


def apps_key(month: str) -> str:
    return f"{PREFIX}apps:{month}"


def describe(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    where = parts.path if parts.scheme == "unix" else f"{parts.hostname}:{parts.port or 6379}{parts.path}"
    return f"{parts.scheme}://{where}"


@dataclass(frozen=True, slots=True)
class SyncReply:
    """What one sync found: the epoch Redis holds now (None: none), whether the batch was applied
    (1), had been applied before (0) or was refused for a changed epoch (-1), and the watched apps'
    totals after it."""

    epoch: str | None
    applied: int | None
    totals: dict[str, AppTotals]


class SharedStore:
    def __init__(self, url: str) -> None:
        if urlsplit(url).scheme not in SCHEMES:
            raise ValueError(f"state store {url!r}: expected redis://host:port/db (or rediss://, unix://)")
        self.url = describe(url)
        # No retries inside redis-py: a failed sync is retried by the ledger, with back-off.
        self._redis: Redis = Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=COMMAND_TIMEOUT_S, retry=Retry(NoBackoff(), 0))

    async def close(self) -> None:
        await self._redis.aclose()

    async def sync(self, epoch: str, batch: Batch | None, watched: Iterable[str], w: Windows) -> SyncReply:
        """Apply `batch` (if any) against `epoch`, and read the watched apps' totals: one round trip."""
        apps = list(watched)
        async with self._redis.pipeline(transaction=True) as pipe:
            if batch is not None:
                keys, ops = _ops(batch, w)
                pipe.eval(APPLY, 2 + len(keys), EPOCH_KEY, f"{PREFIX}batch:{batch.id}", *keys,
                          epoch, MARKER_TTL_S, json.dumps(ops, separators=(",", ":")))
            pipe.get(EPOCH_KEY)
            for app in apps:
                pipe.hget(day_key(w.day, app), "cost_nano")
                pipe.hget(month_key(w.month, app), "cost_nano")
                pipe.get(minute_key(w.minute, app))
            results: list[Any] = await pipe.execute()
        applied = int(results.pop(0)) if batch is not None else None
        found_epoch = results.pop(0)
        totals = {app: AppTotals(w.day, int(day or 0), w.month, int(month or 0), w.minute, int(minute or 0))
                  for app, (day, month, minute) in zip(apps, _threes(results))}
        return SyncReply(found_epoch, applied, totals)

    async def claim_epoch(self) -> str:
        """The epoch Redis holds, creating one if it has none (the first sidecar to ask wins)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(EPOCH_KEY, uuid.uuid4().hex, nx=True)
            pipe.get(EPOCH_KEY)
            _, epoch = await pipe.execute()
        return str(epoch)

    async def rows(self, w: Windows) -> list[Row]:
        """Per app and model: today's and this month's counts, from every sidecar."""
        apps = sorted(str(app) for app in await self._redis.smembers(apps_key(w.month)))
        async with self._redis.pipeline(transaction=False) as pipe:
            for app in apps:
                pipe.hgetall(day_key(w.day, app))
                pipe.hgetall(month_key(w.month, app))
            hashes: list[dict[str, str]] = await pipe.execute()
        out: list[Row] = []
        for app, (day, month) in zip(apps, zip(hashes[::2], hashes[1::2])):
            out += [("day", app, model, counts) for model, counts in _per_model(day).items()]
            out += [("month", app, model, counts) for model, counts in _per_model(month).items()]
        return out


def _ops(batch: Batch, w: Windows) -> tuple[list[str], list[dict[str, Any]]]:
    """The batch as the script's keys and operations: each (day, app, model) adds to the app's
    day and month hashes, as app totals and per-model fields."""
    hashes: dict[str, dict[str, int]] = {}
    ttls: dict[str, int] = {}
    apps: dict[str, set[str]] = {}
    for (day, app, model), counts in batch.usage.items():
        month = day[:7]
        apps.setdefault(month, set()).add(app)
        for key, ttl in ((day_key(day, app), DAY_TTL_S), (month_key(month, app), MONTH_TTL_S)):
            fields = hashes.setdefault(key, {})
            ttls[key] = ttl
            for name, value in zip(Counts.FIELDS, counts.values()):
                if value:
                    fields[name] = fields.get(name, 0) + value
                    fields[f"{name}|{model}"] = fields.get(f"{name}|{model}", 0) + value
    keys: list[str] = []
    ops: list[dict[str, Any]] = []
    for key, fields in hashes.items():
        keys.append(key)
        ops.append({"t": ttls[key], "h": {name: str(value) for name, value in fields.items()}})
    for month, members in apps.items():
        keys.append(apps_key(month))
        ops.append({"t": MONTH_TTL_S, "s": sorted(members)})
    for (minute, app), tokens in batch.minutes.items():
        if minute >= w.minute:  # a past minute no longer limits anything
            keys.append(minute_key(minute, app))
            ops.append({"t": MINUTE_TTL_S, "n": str(tokens)})
    return keys, ops


def _per_model(fields: dict[str, str]) -> dict[str, Counts]:
    """A day or month hash as counts per model (the "<field>|<model>" fields)."""
    out: dict[str, Counts] = {}
    for name, value in fields.items():
        field, sep, model = name.partition("|")
        if sep and field in Counts.FIELDS:
            setattr(out.setdefault(model, Counts()), field, int(value))
    return out


def _threes(items: list[Any]) -> Iterable[tuple[Any, Any, Any]]:
    return zip(items[::3], items[1::3], items[2::3])
