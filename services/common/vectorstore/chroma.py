"""VectorStore on an embedded Chroma collection (cosine space), for single-node setups.

Each chunk carries its document's metadata: document_id, ordinal, title, source,
content_type, created_at (epoch seconds) and tags (a list; left out when empty, since
Chroma rejects empty lists), and its own place: heading and page (left out when unknown).
Filters become Chroma `where` clauses with the same meaning as in PostgreSQL; tags use
`$contains` on the list, one clause per tag (ALL must match).

Keyword (BM25) search uses an SQLite FTS5 index in `<path>/keyword.sqlite3`
(chroma_keyword.py), written after Chroma by replace_document and delete_document and
filled in from the collection on open when it lacks chunks (e.g. an older persist dir).

Each tenant has a collection and a keyword index of its own (the default tenant keeps
the unsuffixed names, so data written before tenants stays where it was): no search
ever meets, or is scored against, another tenant's chunks.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from services.common.errors import DocumentSuperseded
from services.common.tenancy import DEFAULT_TENANT, current_tenant, tenant_scope
from services.common.types import ChunkRecord, DocumentMeta, ScoredChunk, SearchFilter
from services.common.vectorstore.base import (
    Slice,
    VectorStore,
    as_utc,
    check_keyword_query,
    check_query,
    checked_slices,
)
from services.common.vectorstore.chroma_keyword import KeywordIndex, match_expression

logger = logging.getLogger(__name__)
_MAX_COLLECTION_NAME = 63  # Chroma's limit


def space_names(collection: str, tenant: str) -> tuple[str, str]:
    """(collection name, keyword index file name) of a tenant's space."""
    if tenant == DEFAULT_TENANT:
        return collection, "keyword.sqlite3"
    name = f"{collection}--{tenant}"
    if len(name) > _MAX_COLLECTION_NAME or not name[-1].isalnum():
        name = f"{collection}--{hashlib.sha256(tenant.encode()).hexdigest()[:24]}"
    return name, f"keyword-{tenant}.sqlite3"


class ChromaVectorStore(VectorStore):
    """Chunks in persistent Chroma collections at `path`, one per tenant."""

    def __init__(self, path: str, collection: str = "ragchat") -> None:
        import chromadb  # deferred: heavy, and only needed with this backend
        from chromadb.config import Settings

        self._client = chromadb.PersistentClient(
            path=str(path), settings=Settings(anonymized_telemetry=False)
        )
        self._path, self._name = Path(path), collection
        self._spaces: dict[str, tuple[Any, KeywordIndex]] = {}
        self._batch = max(1, int(self._client.get_max_batch_size()))
        # Chroma has no transactions: serialise writers of a document in this process at
        # least (per document, so a long document does not hold up the others).
        self._locks: weakref.WeakValueDictionary[str, threading.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._locks_guard = threading.Lock()
        with tenant_scope(DEFAULT_TENANT):
            self._space()  # open (and mend) the default tenant's space now

    @property
    def _collection(self) -> Any:
        """The current tenant's collection."""
        return self._space()[0]

    @property
    def _keywords(self) -> KeywordIndex:
        """The current tenant's keyword index."""
        return self._space()[1]

    def _space(self) -> tuple[Any, KeywordIndex]:
        tenant = current_tenant()
        with self._locks_guard:
            space = self._spaces.get(tenant)
            if space is None:
                name, keyword_file = space_names(self._name, tenant)
                collection = self._client.get_or_create_collection(
                    name, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
                )
                space = self._spaces[tenant] = (collection, KeywordIndex(self._path / keyword_file))
                if space[1].count() < collection.count():
                    self._backfill_keywords(*space)
        return space

    def replace_document(
        self,
        doc: DocumentMeta,
        chunks: Sequence[ChunkRecord] | Iterable[Slice],
        vectors: np.ndarray | None = None,
    ) -> None:
        slices = checked_slices(doc, chunks, vectors, None)
        with self._write_lock(doc.document_id):
            old = self._collection.get(
                where={"document_id": doc.document_id}, include=["metadatas"]
            )
            _check_version(doc, old["metadatas"] or [])
            meta = _document_metadata(doc, _created_at(doc, old["metadatas"] or []))
            rows: list[tuple[str, str]] = []  # (chunk_id, text) for the keyword index
            # Upsert first, then drop leftovers: the document is never without chunks,
            # and a re-run with the same chunk ids changes nothing.
            try:
                for part, matrix in slices:
                    self._upsert(part, matrix, meta)
                    rows.extend((c.chunk_id, c.text) for c in part)
            except BaseException:
                # Take back the ids this call added; overwritten ones are mended by a re-run.
                self._delete_ids(sorted({cid for cid, _ in rows} - set(old["ids"])))
                raise
            self._delete_ids(sorted(set(old["ids"]) - {cid for cid, _ in rows}))
            # Last, so a crash before it leaves a re-run (idempotent) to finish the job.
            self._keywords.replace(doc.document_id, rows)

    def _upsert(self, chunks: Sequence[ChunkRecord], matrix: np.ndarray,
                meta: dict[str, Any]) -> None:
        for start in range(0, len(chunks), self._batch):
            part = chunks[start:start + self._batch]
            with _as_value_error():
                self._collection.upsert(
                    ids=[c.chunk_id for c in part],
                    embeddings=matrix[start:start + self._batch],
                    documents=[c.text for c in part],
                    metadatas=[_chunk_metadata(meta, c) for c in part],
                )

    def _delete_ids(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), self._batch):
            self._collection.delete(ids=list(ids[start:start + self._batch]))

    def _write_lock(self, document_id: str) -> threading.Lock:
        """The lock serialising writes of one document, shared while anyone holds it."""
        with self._locks_guard:
            lock = self._locks.get(document_id)
            if lock is None:
                lock = self._locks[document_id] = threading.Lock()
            return lock

    def delete_document(self, document_id: str) -> int:
        with self._write_lock(document_id):
            ids = self._collection.get(where={"document_id": document_id}, include=[])["ids"]
            self._delete_ids(ids)
            self._keywords.delete(document_id)
        return len(ids)

    def search(
        self,
        vector: np.ndarray,
        top_k: int,
        min_score: float = 0.0,
        flt: SearchFilter | None = None,
    ) -> list[ScoredChunk]:
        query = check_query(vector, top_k, None)
        with _as_value_error():
            found = self._collection.query(
                query_embeddings=[query],
                n_results=top_k,
                where=to_where(flt) if flt is not None else None,
                include=["documents", "metadatas", "distances"],
            )
        ids = found["ids"][0]
        texts = (found["documents"] or [[]])[0]
        metas = (found["metadatas"] or [[]])[0]
        distances = (found["distances"] or [[]])[0]
        results = []
        for chunk_id, text, meta, distance in zip(ids, texts, metas, distances, strict=True):
            score = 1.0 - float(distance)
            if score < min_score:
                continue
            results.append(_scored(chunk_id, text, meta, score, "dense"))
        results.sort(key=lambda r: r.score, reverse=True)
        return results

    def keyword_search(
        self, query: str, top_k: int, flt: SearchFilter | None = None
    ) -> list[ScoredChunk]:
        text = check_keyword_query(query, top_k)
        if not match_expression(text):
            return []  # no searchable term: skip the filter lookup
        where = to_where(flt) if flt is not None else None
        allowed = None
        if where is not None:
            # Exact filter: rank only the matching chunks, then cut to top_k.
            allowed = set(self._collection.get(where=where, include=[])["ids"])
            if not allowed:
                return []
        ranked = self._keywords.search(text, top_k, allowed)
        if not ranked:
            return []
        found = self._collection.get(ids=[cid for cid, _ in ranked],
                                     include=["documents", "metadatas"])
        rows = dict(zip(found["ids"], zip(found["documents"] or [], found["metadatas"] or [],
                                          strict=True), strict=True))
        return [
            _scored(chunk_id, *rows[chunk_id], score, "keyword")
            for chunk_id, score in ranked
            if chunk_id in rows  # else removed from Chroma after the index was read
        ]

    def _backfill_keywords(self, collection: Any, keywords: KeywordIndex) -> None:
        """Index chunks the keyword index lacks, e.g. of a collection written before it.

        Pages through the collection; chunks already indexed are left alone, so an
        interrupted run is finished by the next open.
        """
        total = collection.count()
        logger.info("keyword index behind the collection (%d chunks): filling it in", total)
        added = 0
        for offset in range(0, total, self._batch):
            page = collection.get(include=["documents", "metadatas"],
                                  limit=self._batch, offset=offset)
            added += keywords.add_missing([
                (cid, str(meta["document_id"]), doc or "")
                for cid, doc, meta in zip(page["ids"], page["documents"] or [],
                                          page["metadatas"] or [], strict=True)
            ])
        logger.info("keyword index: added %d chunks", added)

    def count_chunks(self, document_id: str | None = None) -> int:
        if document_id is None:
            return int(self._collection.count())
        return len(self._collection.get(where={"document_id": document_id}, include=[])["ids"])


def to_where(flt: SearchFilter) -> dict[str, Any] | None:
    """The filter as a Chroma `where` clause; None when the filter is empty."""
    clauses: list[dict[str, Any]] = []
    if flt.sources:
        clauses.append({"source": {"$in": list(flt.sources)}})
    clauses.extend({"tags": {"$contains": tag}} for tag in flt.tags)
    if flt.created_after:
        clauses.append({"created_at": {"$gte": as_utc(flt.created_after).timestamp()}})
    if flt.created_before:
        clauses.append({"created_at": {"$lt": as_utc(flt.created_before).timestamp()}})
    if flt.document_ids:
        clauses.append({"document_id": {"$in": list(flt.document_ids)}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _scored(chunk_id: str, text: str | None, meta: Any, score: float, kind: str) -> ScoredChunk:
    """A search hit from Chroma's stored text and chunk metadata."""
    page = meta.get("page")
    return ScoredChunk(chunk_id=chunk_id, document_id=str(meta["document_id"]),
                       title=str(meta["title"]), source=str(meta["source"]), text=text or "",
                       ordinal=int(meta["ordinal"]), score=score, score_kind=kind,
                       page=int(page) if page is not None else None,
                       heading=str(meta.get("heading") or ""))


def _chunk_metadata(doc_meta: dict[str, Any], chunk: ChunkRecord) -> dict[str, Any]:
    """The document's metadata plus the chunk's place in it (page left out when unknown)."""
    meta = {**doc_meta, "ordinal": chunk.ordinal, "heading": chunk.heading}
    if chunk.page is not None:
        meta["page"] = chunk.page
    return meta


def _document_metadata(doc: DocumentMeta, created_at: float) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "document_id": doc.document_id,
        "title": doc.title,
        "source": doc.source,
        "content_type": doc.content_type,
        "created_at": created_at,
    }
    if doc.tags:
        meta["tags"] = list(doc.tags)
    if doc.version:
        meta["version"] = doc.version
    return meta


def _check_version(doc: DocumentMeta, old_metadatas: Sequence[Any]) -> None:
    """Refuse to overwrite chunks of a newer document version with an older one."""
    stored = max((int(m.get("version", 0)) for m in old_metadatas if m), default=0)
    if doc.version and stored > doc.version:
        raise DocumentSuperseded(
            f"document {doc.document_id!r} version {doc.version} was superseded by "
            f"version {stored}"
        )


def _created_at(doc: DocumentMeta, old_metadatas: Sequence[Any]) -> float:
    """Like the PostgreSQL store: the first write's creation time is kept on re-index."""
    for meta in old_metadatas:
        if meta and "created_at" in meta:
            return float(meta["created_at"])
    return as_utc(doc.created_at).timestamp() if doc.created_at else time.time()


@contextmanager
def _as_value_error() -> Iterator[None]:
    """Turn Chroma's argument errors (e.g. a wrong dimension) into ValueError."""
    from chromadb.errors import InvalidArgumentError

    try:
        yield
    except InvalidArgumentError as exc:
        raise ValueError(str(exc)) from exc
