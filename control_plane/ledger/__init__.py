"""The spend ledger: what each app spent (tokens by kind, cost), per-app budgets and token
limits, kept across restarts (SQLite) and shared by sidecars (Redis or Valkey).

    ledger = await open_ledger(state_dir, redis_url, metrics)
    refusal = await ledger.refusal(app, limits)     # before routing, for apps with limits
    await ledger.record(spend)                      # after each answered request
    await ledger.report()                           # the admin page /usage
    await ledger.close()                            # on SIGTERM: flushes everything counted

Windows are UTC: calendar days and months for budgets, whole minutes for tokens_per_minute (a
fixed window; windows.py). Over a limit, the next request is refused until its window resets;
the request that crossed the line was served and is counted in full.

Where the counts live (each module says more):
- `sqlite_store.py`: this sidecar's counts in `<state dir>/ledger.sqlite3`, written in one
  transaction per flush (every 0.5 s, and on close), never per request.
- `redis_store.py`: with `redis://host:port/db`, every sidecar's counts, so that an app's budget
  is one budget across sidecars. Losing Redis fails open: requests are served, the outage is
  logged and counted (`switchyard_state_store_up`, `switchyard_state_store_errors_total`),
  limits fall back to this sidecar's own counts, and the counts made meanwhile wait in SQLite's
  outbox and are added to Redis when it answers again (ledger.py).

The default state dir is `$XDG_STATE_HOME/switchyard`, else `~/.local/state/switchyard`. The
ledger needs a folder it can write, and the policies folder often is not one: a Kubernetes
ConfigMap, a read-only bind mount, a folder in git. XDG's state directory is the one meant for
data that should survive restarts but is neither configuration nor a user's documents, and it is
per user, so a developer's sidecars do not share one by accident. Containers set
`XDG_STATE_HOME` (or `--state-dir`) to a mounted volume: without one the counts last only as
long as the container.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from control_plane.ledger.ledger import FLUSH_INTERVAL_S, RETRY_MAX_S, Ledger
from control_plane.ledger.model import KINDS, AppLimits, Refusal, Spend, utc_now
from control_plane.ledger.redis_store import SharedStore
from control_plane.ledger.sqlite_store import LocalStore, StateDirInUse
from control_plane.observability.metrics import Metrics

__all__ = ["KINDS", "AppLimits", "Ledger", "LedgerError", "Refusal", "Spend", "default_state_dir", "open_ledger"]

LEDGER_FILE = "ledger.sqlite3"


class LedgerError(Exception):
    """The ledger cannot start: a state dir it cannot write or that another sidecar uses, or a
    state store URL it does not understand. The message says what to change."""


def default_state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    base = environ.get("XDG_STATE_HOME", "")
    if os.path.isabs(base):  # the XDG spec: a relative path is invalid and is ignored
        return Path(base) / "switchyard"
    return Path(environ.get("HOME") or Path.home()) / ".local" / "state" / "switchyard"


async def open_ledger(state_dir: Path, redis_url: str | None, metrics: Metrics, *,
                      clock: Callable[[], datetime] = utc_now, flush_interval_s: float = FLUSH_INTERVAL_S,
                      retry_max_s: float = RETRY_MAX_S) -> Ledger:
    """Open the ledger in `state_dir` (created if missing) and, given `redis_url`, share it
    through that Redis. A Redis that does not answer is no error: the ledger starts locally and
    keeps trying. `clock` and the intervals are for tests."""
    try:
        shared = SharedStore(redis_url) if redis_url else None
    except ValueError as error:
        raise LedgerError(str(error)) from None
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        local = LocalStore(state_dir / LEDGER_FILE)
    except StateDirInUse as error:
        raise LedgerError(str(error)) from None
    except (OSError, sqlite3.Error) as error:
        raise LedgerError(f"cannot keep the ledger in {state_dir}: {error} (choose a writable folder with "
                          "--state-dir, or set XDG_STATE_HOME)") from None
    ledger = Ledger(local, shared, metrics, clock=clock, flush_interval_s=flush_interval_s, retry_max_s=retry_max_s)
    await ledger.start()
    return ledger
