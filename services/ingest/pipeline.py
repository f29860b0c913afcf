"""The indexing path shared by the worker and offline tools: parse, chunk, embed, store."""

from __future__ import annotations

import logging

from opentelemetry import trace

from services.common.embeddings import EmbeddingProvider
from services.common.telemetry import ATTR_CHUNK_COUNT, ATTR_DOCUMENT_ID
from services.common.types import ChunkRecord, DocumentMeta
from services.common.vectorstore.base import VectorStore
from services.ingest.chunking import TokenChunker, chunk_sections
from services.ingest.parsing import ParseError, ParseLimits, parse_document

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


class IndexingPipeline:
    """Turns raw bytes into searchable chunks of one document, atomically."""

    def __init__(
        self,
        embeddings: EmbeddingProvider,
        chunker: TokenChunker,
        store: VectorStore,
        limits: ParseLimits | None = None,
    ) -> None:
        self.embeddings = embeddings
        self.chunker = chunker
        self.store = store
        self.limits = limits or ParseLimits()

    def chunk(self, document_id: str, text: str) -> list[ChunkRecord]:
        pieces = self.chunker.split(text)
        return [
            ChunkRecord(chunk_id=f"{document_id}:{i}", document_id=document_id, ordinal=i, text=t)
            for i, t in enumerate(pieces)
        ]

    def index_text(self, meta: DocumentMeta, text: str) -> int:
        """Chunk, embed and store already-extracted text; returns the chunk count."""
        return self.index_chunks(meta, self.chunk(meta.document_id, text))

    def index_chunks(self, meta: DocumentMeta, chunks: list[ChunkRecord]) -> int:
        """Embed and store the chunks `chunk` made of a document; returns their count."""
        with tracer.start_as_current_span("ingest.index_text") as span:
            span.set_attribute(ATTR_DOCUMENT_ID, meta.document_id)
            if not chunks:
                raise ParseError("the document has no extractable text")
            vectors = self.embeddings.embed_documents([c.text for c in chunks])
            self.store.replace_document(meta, chunks, vectors)
            span.set_attribute(ATTR_CHUNK_COUNT, len(chunks))
        return len(chunks)

    def index_bytes(self, meta: DocumentMeta, kind: str, data: bytes) -> int:
        """Parse raw bytes of the given kind (within the limits), then index them."""
        parsed = parse_document(kind, data, self.limits)
        return self.index_chunks(meta, chunk_sections(self.chunker, meta.document_id,
                                                      parsed.sections))
