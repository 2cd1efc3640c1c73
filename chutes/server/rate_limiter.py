"""Per-client rate limiting: a token bucket per client address."""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class RateLimiter:
    """A token bucket per client address: ``per_minute`` requests, refilled continuously."""

    def __init__(
        self, per_minute: int, clock: Callable[[], float] = time.monotonic, max_clients: int = 100_000
    ) -> None:
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._max_clients = max_clients

    @property
    def enabled(self) -> bool:
        """Whether limiting is switched on."""
        return self.per_minute > 0

    def check(self, client: str) -> int:
        """Take one token for ``client``; returns 0 when allowed, else the seconds to wait."""
        now = self._clock()
        full = float(self.per_minute)
        bucket = self._buckets.get(client)
        if bucket is None:  # a new client starts with a full bucket
            tokens = full
        else:  # no tuple built nor min() called: this runs on every request
            tokens = bucket[0] + (now - bucket[1]) * self._rate
            if tokens > full:
                tokens = full
        if tokens >= 1.0:
            if len(self._buckets) >= self._max_clients and client not in self._buckets:
                self._buckets.clear()  # bounded memory under address churn; resetting only forgives
            self._buckets[client] = (tokens - 1.0, now)
            return 0
        self._buckets[client] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self._rate))
