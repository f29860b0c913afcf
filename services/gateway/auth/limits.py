"""Per-tenant limits and the in-process token buckets that enforce the rates."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


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


# One statement per check: count this request in the current fixed window of
# (key, limit) and return the count and the seconds until the window ends.
_COUNT = """
INSERT INTO rate_windows (key_id, limit_name, window_start, hits)
VALUES (%(key)s, %(limit)s,
        to_timestamp(floor(extract(epoch FROM now()) / %(period)s) * %(period)s), 1)
ON CONFLICT (key_id, limit_name, window_start) DO UPDATE SET hits = rate_windows.hits + 1
RETURNING hits, extract(epoch FROM window_start - now()) + %(period)s AS reset_in
"""
_SWEEP = "DELETE FROM rate_windows WHERE window_start < now() - interval '2 hours'"
_SWEEP_EVERY = 1000


class SharedRateLimiter:
    """Fixed windows counted in PostgreSQL: every gateway task sees the same counts.

    One INSERT ... ON CONFLICT per limit and request; a key may burst up to twice its
    allowance across a window boundary, the price of one statement per check.
    """

    def __init__(self, run: Callable[..., Any]) -> None:
        self._run = run  # KeyStore._run: (query, params) -> rows
        self._calls = 0

    async def take(self, key_id: str, limit: str, allowed: int, period_s: float, per: str) -> None:
        if allowed <= 0:
            return
        self._calls += 1
        if self._calls % _SWEEP_EVERY == 0:
            await self._run(_SWEEP)
        (row,) = await self._run(_COUNT, {"key": key_id, "limit": limit,
                                          "period": int(period_s)})
        if row["hits"] > allowed:
            raise RateLimited(limit, allowed, per, max(1, math.ceil(float(row["reset_in"]))))

    def forget(self, key_id: str) -> None:
        """Nothing to drop: old windows are swept."""
