"""Index a BEIR corpus through the ingest pipeline, resumably, into an evaluation store."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from mlops.evaluate_rag.beir import CorpusDoc
from services.common.db import migrate, open_pool
from services.common.embedding_cache import CachedEmbeddings
from services.common.types import DocumentMeta
from services.common.vectorstore.base import VectorStore
from services.common.vectorstore.factory import build_vector_store
from services.ingest.pipeline import IndexingPipeline

logger = logging.getLogger(__name__)

_EMBED_BATCH = 256
_SAVE_EVERY = 500  # documents between manifest saves, so an interrupted run resumes


@dataclass(frozen=True)
class IndexReport:
    documents: int
    indexed: int  # (re-)indexed by this run; the rest were unchanged
    chunks: int
    embedded: int  # chunk texts the model embedded (cache misses)
    seconds: float


@contextmanager
def open_store(
    backend: str, work_dir: Path, database_url: str, dim: int, bm25_k1: float, bm25_b: float
) -> Iterator[tuple[VectorStore, str]]:
    """The evaluation store and a description of where it lives.

    Without `database_url`, PostgreSQL runs embedded under `work_dir`, so an
    evaluation corpus never mixes with served documents (BM25 statistics are global).
    """
    if backend == "chroma":
        path = work_dir / "chroma"
        yield build_vector_store("chroma", chroma_path=str(path)), f"chroma:{path}"
        return
    server = None
    if not database_url:
        from devstack.postgres import start_postgres  # deferred: only for the embedded case

        server = start_postgres(work_dir / "postgres")
        database_url = server.dsn
    try:
        migrate(database_url, dim)
        pool = open_pool(database_url, max_size=2)
        try:
            store = build_vector_store("pgvector", pool=pool, bm25_k1=bm25_k1, bm25_b=bm25_b)
            yield store, "pgvector:" + (str(work_dir / "postgres") if server else "external")
        finally:
            pool.close()
    finally:
        if server is not None:
            server.stop()


def document_text(doc: CorpusDoc) -> str:
    """What gets indexed: the title, then the text (as BEIR's own baselines do)."""
    return f"{doc.title}\n\n{doc.text}" if doc.title.strip() else doc.text


def index_corpus(
    pipeline: IndexingPipeline,
    corpus: dict[str, CorpusDoc],
    manifest_path: Path,
    source: str,
    progress: bool = True,
) -> IndexReport:
    """Make the store hold exactly `corpus`; unchanged documents are skipped.

    The manifest records each document's content fingerprint under the chunking and
    model settings; it is trusted only while the store still holds its chunk count.
    """
    started = time.perf_counter()
    settings = _settings_key(pipeline)
    manifest = _load_manifest(manifest_path, settings, pipeline.store)
    fingerprints = {doc_id: _fingerprint(doc) for doc_id, doc in corpus.items()}
    todo = [d for d in corpus if manifest["docs"].get(d, [None])[0] != fingerprints[d]]
    for gone in sorted(set(manifest["docs"]) - set(corpus)):
        pipeline.store.delete_document(gone)
        del manifest["docs"][gone]
    chunked = {d: pipeline.chunk(d, document_text(corpus[d])) for d in todo}
    embedded = _warm_cache(pipeline, [c.text for chunks in chunked.values() for c in chunks],
                           progress)
    for n, doc_id in enumerate(tqdm(todo, desc="indexing", unit="doc", disable=not progress)):
        doc = corpus[doc_id]
        meta = DocumentMeta(document_id=doc_id, title=(doc.title or doc_id)[:500],
                            source=source, content_type="text/plain")
        count = pipeline.index_chunks(meta, chunked.pop(doc_id))
        manifest["docs"][doc_id] = [fingerprints[doc_id], count]
        if (n + 1) % _SAVE_EVERY == 0:
            _save_manifest(manifest_path, manifest)
    _save_manifest(manifest_path, manifest)
    return IndexReport(
        documents=len(corpus),
        indexed=len(todo),
        chunks=sum(count for _, count in manifest["docs"].values()),
        embedded=embedded,
        seconds=time.perf_counter() - started,
    )


def _warm_cache(pipeline: IndexingPipeline, texts: list[str], progress: bool) -> int:
    """Embed chunk texts in large batches ahead of indexing; returns the cache misses."""
    cache = pipeline.embeddings
    if not isinstance(cache, CachedEmbeddings) or not texts:
        return 0
    before = cache.misses
    bar = tqdm(total=len(texts), desc="embedding", unit="chunk", disable=not progress)
    for start in range(0, len(texts), _EMBED_BATCH):
        batch = texts[start:start + _EMBED_BATCH]
        cache.embed_documents(batch)
        bar.update(len(batch))
    bar.close()
    return cache.misses - before


def _fingerprint(doc: CorpusDoc) -> str:
    return hashlib.sha256(document_text(doc).encode("utf-8")).hexdigest()


def _settings_key(pipeline: IndexingPipeline) -> str:
    chunker = pipeline.chunker
    return (f"{pipeline.embeddings.model_id}/{chunker.chunk_tokens}"
            f"/{chunker.overlap_tokens}")


def _load_manifest(path: Path, settings: str, store: VectorStore) -> dict:
    empty: dict = {"settings": settings, "docs": {}}
    if not path.exists():
        return empty
    manifest = json.loads(path.read_text(encoding="utf-8"))
    expected = sum(count for _, count in manifest.get("docs", {}).values())
    if manifest.get("settings") != settings or store.count_chunks() != expected:
        logger.info("index manifest %s is stale; re-indexing every document", path)
        return empty
    return manifest


def _save_manifest(path: Path, manifest: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest), encoding="utf-8")
    tmp.replace(path)
