"""The indexing path shared by the worker and offline tools: parse, chunk, embed, store.

A document streams through in slices: chunks are cut lazily, each slice is embedded
(through the shared batcher when there is one, the next slice queued while this one
is written) and written inside the store's one replace transaction, so memory is
bounded by the slice size, not the document's size.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future

import numpy as np
from opentelemetry import trace

from services.common.embeddings import EmbeddingProvider
from services.common.generation_models import GenerationModels
from services.common.generations import Generation
from services.common.telemetry import ATTR_CHUNK_COUNT, ATTR_DOCUMENT_ID
from services.common.types import ChunkRecord, DocumentMeta
from services.common.vectorstore.base import Slice, VectorStore
from services.ingest.batching import EmbeddingBatcher
from services.ingest.chunking import TokenChunker, chunk_sections
from services.ingest.parsing import ParseError, ParseLimits, Section, parse_document

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

DEFAULT_SLICE_SIZE = 256


class IndexingPipeline:
    """Turns raw bytes into searchable chunks of one document, atomically."""

    def __init__(
        self,
        embeddings: EmbeddingProvider,
        chunker: TokenChunker,
        store: VectorStore,
        *,
        limits: ParseLimits | None = None,
        batcher: EmbeddingBatcher | None = None,
        slice_size: int = DEFAULT_SLICE_SIZE,
        models: GenerationModels | None = None,
    ) -> None:
        """Without a batcher, slices are embedded on the calling thread. With `models`,
        every slice is embedded by the model of each live index generation (during a
        reindex: the active one and the one being built)."""
        if slice_size <= 0:
            raise ValueError(f"slice_size must be positive, got {slice_size}")
        self.embeddings = embeddings
        self.chunker = chunker
        self.store = store
        self.limits = limits or ParseLimits()
        self.batcher = batcher
        self.slice_size = slice_size
        self.models = models

    def chunks(self, document_id: str, text: str) -> Iterator[ChunkRecord]:
        """The chunks of text with no pages or headings, cut lazily."""
        return chunk_sections(self.chunker, document_id, [Section(text)])

    def chunk(self, document_id: str, text: str) -> list[ChunkRecord]:
        return list(self.chunks(document_id, text))

    def index_text(self, meta: DocumentMeta, text: str) -> int:
        """Chunk, embed and store already-extracted text; returns the chunk count."""
        return self.index_chunks(meta, self.chunks(meta.document_id, text))

    def index_chunks(self, meta: DocumentMeta, chunks: Iterable[ChunkRecord]) -> int:
        """Embed and store the chunks `chunks` cuts of a document; returns their count."""
        with tracer.start_as_current_span("ingest.index_text") as span:
            span.set_attribute(ATTR_DOCUMENT_ID, meta.document_id)
            remaining = iter(chunks)
            first = next(remaining, None)
            if first is None:
                raise ParseError("the document has no extractable text")
            counted = _Counted(itertools.chain([first], remaining))
            live = self.store.live_generations() if self.models is not None else []
            self.store.replace_document(meta, self._embedded(meta.document_id, counted, live))
            span.set_attribute(ATTR_CHUNK_COUNT, counted.count)
        return counted.count

    def index_bytes(self, meta: DocumentMeta, kind: str, data: bytes) -> int:
        """Parse raw bytes of the given kind (within the limits), then index them."""
        parsed = parse_document(kind, data, self.limits)
        return self.index_chunks(meta, chunk_sections(self.chunker, meta.document_id,
                                                      parsed.sections))

    def _embedded(
        self, key: str, chunks: Iterable[ChunkRecord], live: list[Generation]
    ) -> Iterator[Slice]:
        """(chunks, vectors) slices, vectors labelled by generation when `live` names
        any; with a batcher the next slice embeds meanwhile."""
        ahead: deque[tuple[list[ChunkRecord], _Futures]] = deque()
        try:
            for part in _batched(chunks, self.slice_size):
                ahead.append((part, self._submit_all([c.text for c in part], key, live)))
                if len(ahead) > 1:
                    yield _resolved(*ahead.popleft())
            while ahead:
                yield _resolved(*ahead.popleft())
        finally:
            for _, futures in ahead:  # the write failed: stop embedding what it won't use
                for future in futures.values():
                    future.cancel()

    def _submit_all(self, texts: list[str], key: str, live: list[Generation]) -> _Futures:
        if not live or self.models is None:
            return {None: self._submit(texts, key)}
        futures: _Futures = {}
        for generation in live:
            model = self.models.for_generation(generation)
            if model is self.embeddings:
                futures[generation.id] = self._submit(texts, key)
            else:  # another generation's model: on this thread, outside the batcher
                futures[generation.id] = _done(model.embed_documents(texts))
        return futures

    def _submit(self, texts: list[str], key: str) -> Future[np.ndarray]:
        if self.batcher is not None:
            return self.batcher.submit(texts, key)
        return _done(self.embeddings.embed_documents(texts))


_Futures = dict[int | None, Future[np.ndarray]]


def _done(result: np.ndarray) -> Future[np.ndarray]:
    future: Future[np.ndarray] = Future()
    future.set_result(result)
    return future


def _resolved(part: list[ChunkRecord], futures: _Futures) -> Slice:
    """A slice: one matrix (unlabelled), or a matrix per generation id."""
    if None in futures:
        return part, futures[None].result()
    return part, {gid: f.result() for gid, f in futures.items() if gid is not None}


class _Counted:
    """Passes items through, counting them."""

    def __init__(self, items: Iterator[ChunkRecord]) -> None:
        self._items = items
        self.count = 0

    def __iter__(self) -> Iterator[ChunkRecord]:
        for item in self._items:
            self.count += 1
            yield item


def _batched(items: Iterable[ChunkRecord], size: int) -> Iterator[list[ChunkRecord]]:
    iterator = iter(items)
    while part := list(itertools.islice(iterator, size)):
        yield part
