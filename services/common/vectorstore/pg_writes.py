"""PgVectorStore's writes: chunk rows through a staging table, vectors per generation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.common.generations import Generation
from services.common.types import ChunkRecord
from services.common.vectorstore.pg_generations import ByGeneration, write_vectors

# Row-level security refuses COPY into chunks: slices are copied into a session-private
# staging table (no policies; emptied at commit) and moved with one INSERT each.
STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS chunk_staging (chunk_id text, document_id text,"
    " ordinal int, text text, page int, heading text, embedding vector) ON COMMIT DELETE ROWS"
)
_COPY_CHUNKS = (
    "COPY chunk_staging (chunk_id, document_id, ordinal, text, page, heading, embedding)"
    " FROM STDIN (FORMAT BINARY)"
)
_MOVE_CHUNKS = (
    "WITH moved AS (DELETE FROM chunk_staging RETURNING *)"
    " INSERT INTO chunks (chunk_id, document_id, ordinal, text, page, heading, embedding)"
    " SELECT chunk_id, document_id, ordinal, text, page, heading, embedding FROM moved"
)
# Generation 1 (chunks.embedding) retired: the column is gone.
_MOVE_TEXT_ONLY = (
    "WITH moved AS (DELETE FROM chunk_staging RETURNING *)"
    " INSERT INTO chunks (chunk_id, document_id, ordinal, text, page, heading)"
    " SELECT chunk_id, document_id, ordinal, text, page, heading FROM moved"
)


def write_slice(
    cur: Any, part: Sequence[ChunkRecord], by_gen: ByGeneration,
    live: Sequence[Generation],
) -> None:
    """One slice: its chunk rows (with generation 1's vectors while it is live), then
    its vectors in every other live generation's table."""
    in_chunks = next((g for g in live if g.in_chunks), None)
    matrix = by_gen[in_chunks.id] if in_chunks else [None] * len(part)
    with cur.copy(_COPY_CHUNKS) as copy:
        copy.set_types(["text", "text", "int4", "text", "int4", "text", "vector"])
        for chunk, vector in zip(part, matrix, strict=True):
            copy.write_row((chunk.chunk_id, chunk.document_id, chunk.ordinal, chunk.text,
                            chunk.page, chunk.heading, vector))
    cur.execute(_MOVE_CHUNKS if in_chunks else _MOVE_TEXT_ONLY)
    ids = [c.chunk_id for c in part]
    for generation in live:
        if not generation.in_chunks:
            write_vectors(cur, generation, ids, by_gen[generation.id])
