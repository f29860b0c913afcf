"""Query embeddings batched across concurrent requests.

The model encodes one batch at a time (the provider holds a lock), so under load each
query would wait for every query before it. Here the first caller becomes the leader
and encodes what is waiting, up to `max_batch` queries in one forward pass; when its
own query is done it hands the lead to the next waiting caller, so no caller serves
others for longer than one batch after its own result. Torch releases the GIL while it
encodes, so gRPC and database work proceed on the other core meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from services.common.embeddings import EmbeddingProvider


@dataclass
class _Waiter:
    text: str
    wake: threading.Event = field(default_factory=threading.Event)
    vector: np.ndarray | None = None
    error: BaseException | None = None
    lead: bool = False


class BatchingEmbeddings(EmbeddingProvider):
    """Wraps a provider; `embed_query` from many threads shares forward passes."""

    def __init__(self, inner: EmbeddingProvider, max_batch: int = 32) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be positive, got {max_batch}")
        self._inner = inner
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._waiting: list[_Waiter] = []
        self._leading = False
        # A provider with its own query encoding (an instruction prefix, say) is not
        # batched through embed_documents.
        self._batchable = type(inner).embed_query is EmbeddingProvider.embed_query

    @property
    def model_name(self) -> str:
        return self._inner.model_name

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    @property
    def max_input_tokens(self) -> int | None:
        return self._inner.max_input_tokens

    def count_tokens(self, text: str) -> int:
        return self._inner.count_tokens(text)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        if not self._batchable:
            return self._inner.embed_query(text)
        me = _Waiter(text)
        with self._lock:
            self._waiting.append(me)
            me.lead = not self._leading
            self._leading = True
        while not me.lead:
            me.wake.wait()
            me.wake.clear()
            if me.vector is not None or me.error is not None:
                return self._result(me)
        while me.vector is None and me.error is None:
            self._run_batch()
        self._hand_over()
        return self._result(me)

    def _run_batch(self) -> None:
        with self._lock:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
        try:
            vectors = self._inner.embed_documents([w.text for w in batch])
        except BaseException as exc:  # every waiter of the batch sees the failure
            for waiter in batch:
                waiter.error = exc
        else:
            for waiter, vector in zip(batch, vectors, strict=True):
                waiter.vector = vector
        for waiter in batch:
            waiter.wake.set()

    def _hand_over(self) -> None:
        """Pass the lead to the oldest waiting caller, or give it up."""
        with self._lock:
            if not self._waiting:
                self._leading = False
                return
            successor = self._waiting[0]
            successor.lead = True
        successor.wake.set()

    @staticmethod
    def _result(waiter: _Waiter) -> np.ndarray:
        if waiter.error is not None:
            raise waiter.error
        assert waiter.vector is not None
        return waiter.vector
