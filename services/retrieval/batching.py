"""Query embeddings batched across concurrent requests, on one model thread.

The model encodes one batch at a time (the provider holds a lock), so under load each
query would wait for every query before it. Here callers queue their query and one
model thread encodes everything waiting, up to `max_batch` queries per forward pass.
Running every pass on the same thread also keeps torch's per-thread state warm: a
pass from a rotating pool of request threads measured ~2.5 ms slower than from one
thread. Torch releases the GIL while it computes, so gRPC and database work proceed
on the other core meanwhile.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from services.common.embeddings import EmbeddingProvider, EmbeddingWrapper


@dataclass
class _Waiter:
    text: str
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    done: threading.Event = field(default_factory=threading.Event)
    vector: np.ndarray | None = None
    error: BaseException | None = None


class BatchingEmbeddings(EmbeddingWrapper):
    """Wraps a provider; `embed_query` from many threads shares forward passes."""

    def __init__(self, inner: EmbeddingProvider, max_batch: int = 32) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be positive, got {max_batch}")
        super().__init__(inner)
        self._max_batch = max_batch
        self._ready = threading.Condition()
        self._waiting: list[_Waiter] = []
        self._thread: threading.Thread | None = None
        # A provider with its own query encoding (an instruction prefix, say) is not
        # batched through embed_documents.
        self._batchable = type(inner).embed_query is EmbeddingProvider.embed_query

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        if not self._batchable:
            return self._inner.embed_query(text)
        waiter = _Waiter(text)
        with self._ready:
            self._waiting.append(waiter)
            if self._thread is None:  # started on first use, never at construction
                self._thread = threading.Thread(target=self._serve, name="embed-queries",
                                                daemon=True)
                self._thread.start()
            self._ready.notify()
        waiter.done.wait()
        if waiter.error is not None:
            raise waiter.error
        assert waiter.vector is not None
        return waiter.vector

    def _serve(self) -> None:
        """The model thread: encode what is waiting, batch after batch, forever."""
        while True:
            with self._ready:
                while not self._waiting:
                    self._ready.wait()
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
            self._run(batch)

    def _run(self, batch: list[_Waiter]) -> None:
        texts = [w.text for w in batch]
        try:  # in the first caller's context, so the model's span joins its trace
            vectors = batch[0].context.run(self._inner.embed_documents, texts)
        except BaseException as exc:  # every caller of the batch sees the failure
            for waiter in batch:
                waiter.error = exc
        else:
            for waiter, vector in zip(batch, vectors, strict=True):
                waiter.vector = vector
        for waiter in batch:
            waiter.done.set()
