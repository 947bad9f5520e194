"""Per-app request rate limits (`requests_per_minute` in apps.yaml), enforced in the processor.

A token bucket per app: up to a minute's worth of requests at once, refilled continuously. Kept
outside the policy snapshot, so a reload (even one that changes the limit) keeps each app's
bucket. Under `switchyard up` the buckets live in the control plane and workers take from them
(control_plane/workers/shared_state.py), so the limit is per sidecar, whichever worker serves.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from control_plane.policy.apps import App


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # app -> (tokens, when)

    def retry_after_s(self, app: App) -> int | None:
        """Take one request from the app's bucket: None when allowed, else the whole seconds
        until one would be (for `Retry-After`)."""
        limit = app.requests_per_minute
        if limit is None:
            return None
        now = self.clock()
        rate = limit / 60.0
        tokens, when = self._buckets.get(app.name, (float(limit), now))
        tokens = min(float(limit), tokens + (now - when) * rate)
        if tokens >= 1.0:
            self._buckets[app.name] = (tokens - 1.0, now)
            return None
        self._buckets[app.name] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / rate))
