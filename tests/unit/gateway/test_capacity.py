"""Generation capacity: places are counted from a request's start and given back once."""

from __future__ import annotations

import asyncio

import pytest

from services.gateway.capacity import GenerationSlots, Overloaded


async def test_beyond_running_plus_queued_requests_are_refused_until_a_place_frees() -> None:
    slots = GenerationSlots(concurrent=1, queue=1, retry_after_s=7)
    first, second = slots.admit(), slots.admit()
    with pytest.raises(Overloaded) as caught:
        slots.admit()
    assert caught.value.retry_after_s == 7
    first.release()
    first.release()  # a second release gives nothing back twice
    third = slots.admit()
    with pytest.raises(Overloaded):
        slots.admit()
    second.release()
    third.release()
    assert slots.admitted == 0


async def test_only_concurrent_generations_run_at_once_the_rest_wait() -> None:
    slots = GenerationSlots(concurrent=2, queue=5, retry_after_s=1)
    running, peak = 0, 0

    async def generate() -> None:
        nonlocal running, peak
        with slots.admit():
            async with slots.generating():
                running += 1
                peak = max(peak, running)
                await asyncio.sleep(0.01)
                running -= 1

    await asyncio.gather(*(generate() for _ in range(6)))
    assert peak == 2 and slots.admitted == 0


async def test_a_handed_over_place_is_released_by_its_new_owner_only() -> None:
    slots = GenerationSlots(concurrent=1, queue=0, retry_after_s=1)
    with slots.admit() as admission:
        owner = admission.hand_over()
    assert slots.admitted == 1  # leaving the block did not release it
    owner.release()
    assert slots.admitted == 0
