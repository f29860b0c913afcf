"""One embedding thread shared by every job in flight, batching their chunks fairly.

Jobs submit slices of chunk texts; the thread fills each model batch round-robin
across the jobs that are waiting (an equal share each, the rest to whoever has
more), so a one-chunk upload rides in the next batch instead of waiting for a
large document to finish, and several small jobs fill one batch together.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field

import numpy as np

from services.common.embeddings import EmbeddingProvider

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Request:
    """One submitted slice: texts in, rows of `vectors` filled in as batches finish.

    Texts go to batches longest first, so a batch pads its texts to similar lengths.
    """

    texts: Sequence[str]
    future: Future[np.ndarray] = field(default_factory=Future)
    order: list[int] = field(default_factory=list)  # indices of texts, longest first
    taken: int = 0  # texts handed to a batch so far
    done: int = 0  # texts whose vectors are in `vectors`
    vectors: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.order = sorted(range(len(self.texts)), key=lambda i: -_length(self.texts[i]))


class EmbeddingBatcher:
    """Embeds texts from many threads on one thread, `batch_size` texts per model call."""

    def __init__(self, embeddings: EmbeddingProvider, batch_size: int = 32) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.embeddings = embeddings
        self.batch_size = batch_size
        self._cond = threading.Condition()
        self._waiting: OrderedDict[str, deque[_Request]] = OrderedDict()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, texts: Sequence[str], key: str) -> Future[np.ndarray]:
        """Queue texts of job `key`; the future gives their (len(texts), dim) vectors."""
        request = _Request(texts)
        if not texts:
            request.future.set_result(np.zeros((0, self.embeddings.dimension), np.float32))
            return request.future
        with self._cond:
            if self._closed:
                raise RuntimeError("the embedding batcher is closed")
            self._waiting.setdefault(key, deque()).append(request)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="embedding-batcher", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return request.future

    def embed(self, texts: Sequence[str], key: str) -> np.ndarray:
        """Blocking form of `submit`."""
        return self.submit(texts, key).result()

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if not self._waiting:
                    return
                batch = self._take()
            try:
                self._encode(batch)
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any batch
                logger.exception("embedding batch failed unexpectedly")
                self._fail({r for r, _ in batch}, exc)

    def _take(self) -> list[tuple[_Request, list[int]]]:
        """Up to batch_size texts, shared round-robin by the waiting jobs (lock held)."""
        batch: list[tuple[_Request, list[int]]] = []
        room = self.batch_size
        while room and self._waiting:
            share = max(1, room // len(self._waiting))
            for key in list(self._waiting):
                if not room:
                    break
                queue = self._waiting[key]
                request = queue[0]
                if not request.future.done():  # else cancelled, or failed in an earlier batch
                    count = min(share, room, len(request.texts) - request.taken)
                    batch.append((request, request.order[request.taken:request.taken + count]))
                    request.taken += count
                    room -= count
                if request.future.done() or request.taken == len(request.texts):
                    queue.popleft()
                    if not queue:
                        del self._waiting[key]
        if self._waiting:
            self._waiting.move_to_end(next(iter(self._waiting)))  # next batch starts elsewhere
        return batch

    def _encode(self, batch: list[tuple[_Request, list[int]]]) -> None:
        live = [(r, rows) for r, rows in batch if not r.future.done()]  # skip failed ones
        texts = [r.texts[i] for r, rows in live for i in rows]
        if not texts:
            return
        try:
            vectors = self.embeddings.embed_documents(texts)
        except Exception as exc:  # noqa: BLE001 - handed to the jobs that asked
            if len(live) > 1:  # find whose texts fail: one job's bad input fails only it
                for item in live:
                    self._encode([item])
                return
            logger.warning("embedding %d texts failed", len(texts), exc_info=True)
            self._fail({r for r, _ in live}, exc)
            return
        start = 0
        for request, rows in live:
            if request.vectors is None:
                request.vectors = np.empty((len(request.texts), vectors.shape[1]), np.float32)
            request.vectors[rows] = vectors[start : start + len(rows)]
            start += len(rows)
            request.done += len(rows)
            if request.done == len(request.texts):
                with contextlib.suppress(InvalidStateError):  # cancelled meanwhile
                    request.future.set_result(request.vectors)

    def _fail(self, requests: set[_Request], exc: Exception) -> None:
        with self._cond:
            for key, queue in list(self._waiting.items()):
                kept = deque(r for r in queue if r not in requests)
                if kept:
                    self._waiting[key] = kept
                else:
                    del self._waiting[key]
        for request in requests:
            with contextlib.suppress(InvalidStateError):
                request.future.set_exception(exc)


def _length(text: object) -> int:
    """Characters of a text; anything else sorts last (and fails in the model, alone)."""
    return len(text) if isinstance(text, str) else 0
