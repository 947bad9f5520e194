"""Whether a state store answers: its gauge, its error counter, one log line per change (not
one per failed retry), and when to try again (exponential back-off with jitter, so that many
sidecars that lost one Redis do not all come back to it in the same instant)."""

from __future__ import annotations

import random
import time

import structlog

from control_plane.observability.metrics import Metrics

log = structlog.get_logger("switchyard.ledger")

FIRST_RETRY_S = 0.5


class StoreHealth:
    def __init__(self, store: str, where: str, metrics: Metrics, retry_max_s: float) -> None:
        self.store = store
        self.where = where
        self.up: bool | None = None  # None until the first try
        self._metrics = metrics
        self._retry_max_s = retry_max_s
        self._delay_s = self._first_s = min(FIRST_RETRY_S, retry_max_s)
        self._next_try = 0.0
        self._down_since = 0.0

    def due(self) -> bool:
        """Whether to try the store now (always while up; after the back-off while down)."""
        return self.up is not False or time.monotonic() >= self._next_try

    def ok(self) -> None:
        if self.up is not True:
            if self.up is False:
                log.info("state_store_up", store=self.store, where=self.where,
                         down_s=round(time.monotonic() - self._down_since, 1))
            else:
                log.info("state_store_connected", store=self.store, where=self.where)
            self._metrics.state_store_up.labels(self.store).set(1)
        self.up = True
        self._delay_s = self._first_s

    def failed(self, operation: str, error: BaseException) -> None:
        self._metrics.state_store_errors.labels(self.store, operation).inc()
        retry_in_s = self._delay_s * random.uniform(0.5, 1.0)
        self._next_try = time.monotonic() + retry_in_s
        self._delay_s = min(self._retry_max_s, self._delay_s * 2)
        if self.up is not False:
            self._down_since = time.monotonic()
            log.warning("state_store_down", store=self.store, where=self.where, operation=operation,
                        error=f"{type(error).__name__}: {error}", retry_in_s=round(retry_in_s, 2),
                        effect="counting locally; limits are per sidecar until it is back" if self.store == "redis"
                        else "counts kept in memory until the file can be written")
            self._metrics.state_store_up.labels(self.store).set(0)
        self.up = False
