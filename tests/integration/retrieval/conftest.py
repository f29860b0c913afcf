"""A small real corpus, indexed with the real model into pgvector or Chroma."""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg_pool import ConnectionPool

from services.common.embeddings import EmbeddingProvider
from services.common.types import DocumentMeta
from services.common.vectorstore.base import VectorStore
from services.common.vectorstore.factory import build_vector_store
from services.ingest.chunking import TokenChunker
from services.ingest.pipeline import IndexingPipeline

CORPUS = {
    "paris": ("landmarks.md", "The Eiffel Tower is a wrought-iron lattice tower on the Champ "
              "de Mars in Paris, France, completed in 1889."),
    "relay": ("manual.pdf", "Fault ZX-4491 is raised when the relay of the cooling fan "
              "overheats; replace the relay module."),
    "bread": ("recipes.md", "To bake sourdough bread, feed the starter the night before and "
              "let the dough rise slowly in a cool kitchen."),
    "cats": ("pets.txt", "Cats sleep for most of the day and hunt mostly at dawn and dusk."),
}


@pytest.fixture(params=["pgvector", "chroma"])
def corpus_store(
    request: pytest.FixtureRequest, embeddings: EmbeddingProvider, tmp_path: Path
) -> VectorStore:
    if request.param == "pgvector":
        pool: ConnectionPool = request.getfixturevalue("clean_pool")
        store = build_vector_store("pgvector", pool=pool)
    else:
        store = build_vector_store("chroma", chroma_path=str(tmp_path / "chroma"))
    pipeline = IndexingPipeline(embeddings, TokenChunker.for_embeddings(embeddings, 64, 8), store)
    for doc_id, (source, text) in CORPUS.items():
        meta = DocumentMeta(doc_id, doc_id.title(), source, "text/plain", (source[-2:],))
        pipeline.index_text(meta, text)
    return store
