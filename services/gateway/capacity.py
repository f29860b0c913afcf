"""Bounded generation capacity: a few answers at once, a short queue, then 429 at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


class Overloaded(Exception):
    """Every generation slot and queue place is taken; the client should retry later."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"the server is at capacity; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class Admission:
    """A request's place (running or queued), held from its start until release()."""

    def __init__(self, slots: GenerationSlots) -> None:
        self._slots: GenerationSlots | None = slots

    def release(self) -> None:
        """Give the place back (once; later calls do nothing)."""
        if self._slots is not None:
            self._slots.admitted -= 1
            self._slots = None

    def hand_over(self) -> Admission:
        """The same place under a new owner; this one no longer releases it."""
        assert self._slots is not None, "already released"
        successor, self._slots = Admission(self._slots), None
        return successor

    def __enter__(self) -> Admission:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class GenerationSlots:
    """At most `concurrent` generations run and `queue` more requests wait; the rest are
    refused. A refusal comes before any work (retrieval included), so a client under load
    gets a 429 with Retry-After at once rather than waiting out its deadline."""

    def __init__(self, concurrent: int, queue: int, retry_after_s: int) -> None:
        self._running = asyncio.Semaphore(concurrent)
        self._limit = concurrent + queue
        self.admitted = 0  # requests holding an Admission; only touched on the event loop
        self.retry_after_s = retry_after_s

    def admit(self) -> Admission:
        """A place for a new request, or Overloaded when there is none."""
        if self.admitted >= self._limit:
            raise Overloaded(self.retry_after_s)
        self.admitted += 1
        return Admission(self)

    @asynccontextmanager
    async def generating(self) -> AsyncIterator[None]:
        """Hold one of the `concurrent` generation slots, waiting for one if need be."""
        async with self._running:
            yield


class AdmittedStream(StreamingResponse):
    """A streamed response that releases its request's admission when it ends, however
    it ends (even when the client left before the body began)."""

    def __init__(self, content: AsyncIterator[str], admission: Admission) -> None:
        super().__init__(content, media_type="text/event-stream")
        self._admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._admission.release()


def install(app: FastAPI, concurrent: int, queue: int, retry_after_s: int) -> None:
    """Give the app its generation slots."""
    app.state.generation_slots = GenerationSlots(concurrent, queue, retry_after_s)


def slots(request: Request) -> GenerationSlots:
    """The app's generation slots."""
    slots_: GenerationSlots = request.app.state.generation_slots
    return slots_
