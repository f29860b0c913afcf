"""Bounded generation capacity: a few answers at once, a short queue, then 429 at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request


class Overloaded(Exception):
    """Every generation slot and queue place is taken; the client should retry later."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"the server is at capacity; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class GenerationSlots:
    """At most `concurrent` generations run and `queue` more wait; the rest are refused.

    A refusal is immediate, so a client under load gets a 429 with Retry-After rather
    than waiting out its deadline in an unbounded queue.
    """

    def __init__(self, concurrent: int, queue: int, retry_after_s: int) -> None:
        self._running = asyncio.Semaphore(concurrent)
        self._limit = concurrent + queue
        self._admitted = 0  # running + waiting; only touched on the event loop
        self.retry_after_s = retry_after_s

    def check(self) -> None:
        """Raise Overloaded when a new request would be refused now."""
        if self._admitted >= self._limit:
            raise Overloaded(self.retry_after_s)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a generation slot for the block, waiting in the queue if need be."""
        self.check()
        self._admitted += 1
        try:
            async with self._running:
                yield
        finally:
            self._admitted -= 1


def install(app: FastAPI, concurrent: int, queue: int, retry_after_s: int) -> None:
    """Give the app its generation slots."""
    app.state.generation_slots = GenerationSlots(concurrent, queue, retry_after_s)


def slots(request: Request) -> GenerationSlots:
    """The app's generation slots."""
    slots_: GenerationSlots = request.app.state.generation_slots
    return slots_
