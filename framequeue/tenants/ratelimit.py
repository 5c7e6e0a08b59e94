"""A token bucket per tenant. Pure: the clock is injected; state lives in the API process, so the limit
holds per API process (N processes behind a balancer allow up to N times the rate)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: tenants remembered at most; the fullest buckets (idle tenants) are forgotten first
MAX_TENANTS = 10_000


@dataclass
class _Bucket:
    tokens: float
    at_s: float


class RateLimiter:
    """`rate_per_s` tokens a second up to `burst`; each request takes one."""

    def __init__(self, rate_per_s: float, burst: int = 0, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_s = rate_per_s
        self.burst = float(burst or max(1.0, rate_per_s))
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    def take(self, tenant: str) -> float | None:
        """Take a token: None when allowed, else the seconds until one is there (for Retry-After)."""
        if not self.enabled:
            return None
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(tenant)
            if bucket is None:
                if len(self._buckets) >= MAX_TENANTS:
                    self._forget(now)
                bucket = self._buckets[tenant] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at_s) * self.rate_per_s)
            bucket.at_s = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return None
            return (1.0 - bucket.tokens) / self.rate_per_s

    def _forget(self, now: float) -> None:
        full = [t for t, b in self._buckets.items() if b.tokens + (now - b.at_s) * self.rate_per_s >= self.burst]
        for tenant in full or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[tenant]


def retry_after(seconds: float) -> int:
    """Whole seconds for a Retry-After header, at least 1."""
    return max(1, math.ceil(seconds))
