"""The per-key token buckets: a burst of the whole allowance, then an even refill."""

from __future__ import annotations

import pytest

from services.gateway.auth.limits import RateLimited, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_the_allowance_then_429_with_the_wait_until_one_more_fits() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    for _ in range(6):
        limiter.take("k1", "requests_per_minute", 6, 60.0, "minute")
    with pytest.raises(RateLimited) as refused:
        limiter.take("k1", "requests_per_minute", 6, 60.0, "minute")
    assert refused.value.retry_after_s == 10  # one request back every 60/6 s
    assert "requests_per_minute allows 6 per minute" in str(refused.value)
    clock.now += 9.5
    with pytest.raises(RateLimited) as again:
        limiter.take("k1", "requests_per_minute", 6, 60.0, "minute")
    assert again.value.retry_after_s == 1
    clock.now += 0.5
    limiter.take("k1", "requests_per_minute", 6, 60.0, "minute")


def test_keys_and_limits_are_counted_apart_and_zero_is_unlimited() -> None:
    limiter = RateLimiter(Clock())
    limiter.take("k1", "uploads_per_hour", 1, 3600.0, "hour")
    limiter.take("k2", "uploads_per_hour", 1, 3600.0, "hour")
    limiter.take("k1", "requests_per_minute", 1, 60.0, "minute")
    with pytest.raises(RateLimited) as refused:
        limiter.take("k1", "uploads_per_hour", 1, 3600.0, "hour")
    assert refused.value.retry_after_s == 3600
    for _ in range(1000):
        limiter.take("k3", "requests_per_minute", 0, 60.0, "minute")


def test_a_changed_limit_applies_at_once_and_forget_drops_a_key() -> None:
    limiter = RateLimiter(Clock())
    limiter.take("k1", "requests_per_minute", 1, 60.0, "minute")
    limiter.take("k1", "requests_per_minute", 5, 60.0, "minute")  # raised: a fresh bucket
    limiter.forget("k1")
    limiter.take("k1", "requests_per_minute", 1, 60.0, "minute")
