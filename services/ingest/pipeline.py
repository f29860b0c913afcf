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
    ) -> None:
        """Without a batcher, slices are embedded on the calling thread."""
        if slice_size <= 0:
            raise ValueError(f"slice_size must be positive, got {slice_size}")
        self.embeddings = embeddings
        self.chunker = chunker
        self.store = store
        self.limits = limits or ParseLimits()
        self.batcher = batcher
        self.slice_size = slice_size

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
            self.store.replace_document(meta, self._embedded(meta.document_id, counted))
            span.set_attribute(ATTR_CHUNK_COUNT, counted.count)
        return counted.count

    def index_bytes(self, meta: DocumentMeta, kind: str, data: bytes) -> int:
        """Parse raw bytes of the given kind (within the limits), then index them."""
        parsed = parse_document(kind, data, self.limits)
        return self.index_chunks(meta, chunk_sections(self.chunker, meta.document_id,
                                                      parsed.sections))

    def _embedded(self, key: str, chunks: Iterable[ChunkRecord]) -> Iterator[Slice]:
        """(chunks, vectors) slices; with a batcher the next slice embeds meanwhile."""
        ahead: deque[tuple[list[ChunkRecord], Future[np.ndarray]]] = deque()
        try:
            for part in _batched(chunks, self.slice_size):
                ahead.append((part, self._submit([c.text for c in part], key)))
                if len(ahead) > 1:
                    done, future = ahead.popleft()
                    yield done, future.result()
            while ahead:
                done, future = ahead.popleft()
                yield done, future.result()
        finally:
            for _, future in ahead:  # the write failed: stop embedding what it won't use
                future.cancel()

    def _submit(self, texts: list[str], key: str) -> Future[np.ndarray]:
        if self.batcher is not None:
            return self.batcher.submit(texts, key)
        future: Future[np.ndarray] = Future()
        future.set_result(self.embeddings.embed_documents(texts))
        return future


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
