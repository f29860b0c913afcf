"""PgVectorStore's generations: labelled slices, per-generation SQL and vector writes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, LiteralString

import numpy as np
from psycopg import Cursor, sql

from services.common.generations import Generation, GenerationsChanged
from services.common.types import ChunkRecord, DocumentMeta
from services.common.vectorstore.base import UniqueChunks, check_batch

# One slice's vectors by generation id.
ByGeneration = dict[int, np.ndarray]

_VECTOR_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS vector_staging (chunk_id text, embedding vector)"
    " ON COMMIT DELETE ROWS"
)
_COPY_VECTORS = "COPY vector_staging (chunk_id, embedding) FROM STDIN (FORMAT BINARY)"
# Only chunks that exist (a newer version may have replaced them), never twice: a
# redelivered reindex message writes nothing new.
_MOVE_VECTORS: LiteralString = (
    "WITH moved AS (DELETE FROM vector_staging RETURNING *)"
    " INSERT INTO {table} (chunk_id, embedding)"
    " SELECT m.chunk_id, m.embedding FROM moved m JOIN chunks c ON c.chunk_id = m.chunk_id"
    " ON CONFLICT (chunk_id) DO NOTHING"
)

# Dense search over a generation stored in its own table (generation 1, in chunks,
# keeps pgvector.py's statements).
ANN_SEARCH: LiteralString = """
SELECT c.chunk_id, c.document_id, d.title, d.source, c.text, c.ordinal, c.page, c.heading,
       v.distance
FROM (
    SELECT chunk_id, embedding <=> %(q)s AS distance
    FROM {table} ORDER BY embedding <=> %(q)s LIMIT %(k)s
) v JOIN chunks c ON c.chunk_id = v.chunk_id JOIN documents d ON d.document_id = c.document_id
ORDER BY v.distance
"""
ANN_CANDIDATES: LiteralString = """
SELECT chunk_id, embedding <=> %(q)s AS distance
FROM {table} ORDER BY embedding <=> %(q)s LIMIT %(k)s
"""
EXACT_SEARCH: LiteralString = """
WITH hits AS MATERIALIZED (
    SELECT c.chunk_id, c.document_id, d.title, d.source, c.text, c.ordinal, c.page, c.heading,
           v.embedding <=> %(q)s AS distance
    FROM chunks c JOIN documents d ON d.document_id = c.document_id
    JOIN {table} v ON v.chunk_id = c.chunk_id
    WHERE {conditions}
)
SELECT chunk_id, document_id, title, source, text, ordinal, page, heading, distance
FROM hits ORDER BY distance LIMIT %(k)s
"""


def labelled_slices(
    doc: DocumentMeta,
    chunks: Sequence[ChunkRecord] | Iterable[Any],
    vectors: np.ndarray | Mapping[int, np.ndarray] | None,
    live: Sequence[Generation],
) -> Iterator[tuple[Sequence[ChunkRecord], ByGeneration]]:
    """replace_document's input as validated slices with a matrix per live generation.

    Unlabelled vectors (a plain matrix: offline tools) belong to the active generation
    and are accepted only while it is the only live one. Raises GenerationsChanged when
    a live generation has no vectors (it became live after the slice was embedded).
    """
    if not live:
        raise RuntimeError("no active index generation; run migrate() first")
    slices = [(chunks, vectors)] if vectors is not None else chunks
    seen = UniqueChunks()
    for part, given in slices:
        if not isinstance(given, Mapping):
            if len(live) > 1:
                raise GenerationsChanged("a reindex is building a new index generation; "
                                         "write through the ingest worker")
            given = {live[0].id: given}
        missing = [g.id for g in live if g.id not in given]
        if missing:
            raise GenerationsChanged(f"index generations {missing} became live meanwhile")
        by_gen = {g.id: check_batch(doc, part, given[g.id], g.dim) for g in live}
        seen.add(part)
        yield part, by_gen


def write_vectors(
    cur: Cursor[Any], generation: Generation, chunk_ids: Sequence[str], matrix: np.ndarray
) -> int:
    """Add the vectors of existing chunks to a generation's own table; returns rows added."""
    cur.execute(_VECTOR_STAGING)
    with cur.copy(_COPY_VECTORS) as copy:
        copy.set_types(["text", "vector"])
        for chunk_id, vector in zip(chunk_ids, matrix, strict=True):
            copy.write_row((chunk_id, vector))
    cur.execute(sql.SQL(_MOVE_VECTORS).format(table=sql.Identifier(generation.storage)))
    return cur.rowcount


def search_statement(template: LiteralString, generation: Generation,
                     conditions: sql.Composable | None = None) -> sql.Composed:
    """A dense search statement over the generation's own table."""
    return sql.SQL(template).format(table=sql.Identifier(generation.storage),
                                    conditions=conditions or sql.SQL("true"))
