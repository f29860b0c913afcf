"""Per-tenant limits and the in-process token buckets that enforce the rates."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """A tenant's effective limits; 0 means unlimited."""

    requests_per_minute: int
    uploads_per_hour: int
    storage_bytes: int


class RateLimited(Exception):
    """A key used up a rate; `retry_after_s` says when one more request fits."""

    def __init__(self, limit: str, allowed: int, per: str, retry_after_s: int) -> None:
        super().__init__(
            f"rate limit exceeded: {limit} allows {allowed} per {per} for this key; "
            f"retry in {retry_after_s} s"
        )
        self.limit, self.retry_after_s = limit, retry_after_s


class _Bucket:
    __slots__ = ("capacity", "rate", "tokens", "stamp")

    def __init__(self, capacity: int, rate: float, now: float) -> None:
        self.capacity, self.rate, self.tokens, self.stamp = capacity, rate, float(capacity), now

    def take(self, now: float) -> float:
        """Take one token; 0 on success, else the seconds until one is there."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class RateLimiter:
    """Token buckets per (key, limit): a burst of the whole allowance, refilled evenly.

    In-process and event-loop only: each gateway counts its own requests.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._clock = clock

    def take(self, key_id: str, limit: str, allowed: int, period_s: float, per: str) -> None:
        """Count one use of `limit`; raise RateLimited when `allowed` per period is spent."""
        if allowed <= 0:
            return
        now = self._clock()
        bucket = self._buckets.get((key_id, limit))
        if bucket is None or bucket.capacity != allowed:  # new key or changed limit
            bucket = self._buckets[(key_id, limit)] = _Bucket(allowed, allowed / period_s, now)
        wait = bucket.take(now)
        if wait:
            raise RateLimited(limit, allowed, per, max(1, math.ceil(wait)))

    def forget(self, key_id: str) -> None:
        """Drop a revoked key's buckets."""
        for entry in [k for k in self._buckets if k[0] == key_id]:
            del self._buckets[entry]
