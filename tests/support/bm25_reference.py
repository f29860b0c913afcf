"""The BM25 SQL that keyword search used before the postings table: the reference.

It unnests the tsvector of every chunk sharing a query term and rescans `chunks` for N
and avgdl, so its cost grows with the corpus; it is kept to prove that the postings
implementation scores exactly as it did.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql
from psycopg_pool import ConnectionPool

# BM25 (Lucene's form) over the english tsvector: idf = ln(1 + (N - df + 0.5) / (df + 0.5)),
# tf from the lexeme's positions, length = indexed tokens. Corpus statistics are global,
# so a filter changes which chunks compete, never how a chunk scores. Lexemes are quoted
# for tsquery input by hand (quote_literal may emit E'' strings, which tsquery rejects).
REFERENCE_SQL = r"""
WITH terms AS (
    SELECT lexeme AS term,
           '''' || replace(replace(lexeme, '\', '\\'), '''', '''''') || '''' AS quoted
    FROM unnest(to_tsvector('english', %(q)s))
), corpus AS (
    SELECT count(*)::float8 AS n, coalesce(avg(tsv_length), 0)::float8 AS avgdl FROM chunks
), idf AS (
    SELECT t.term, ln(1 + (corpus.n - df.n + 0.5) / (df.n + 0.5)) AS w
    FROM terms t CROSS JOIN corpus
    CROSS JOIN LATERAL (
        SELECT count(*)::float8 AS n FROM chunks WHERE tsv @@ t.quoted::tsquery
    ) df
), hits AS MATERIALIZED (
    SELECT c.chunk_id, c.tsv, c.tsv_length
    FROM chunks c JOIN documents d ON d.document_id = c.document_id
    WHERE c.tsv @@ (SELECT string_agg(quoted, ' | ')::tsquery FROM terms) AND {conditions}
), scored AS (
    SELECT h.chunk_id,
           sum(idf.w * f.tf * (%(k1)s + 1)
               / (f.tf + %(k1)s * (1 - %(b)s + %(b)s * h.tsv_length
                                    / greatest(corpus.avgdl, 1)))) AS score
    FROM hits h
    CROSS JOIN LATERAL unnest(h.tsv) u
    JOIN idf ON idf.term = u.lexeme
    CROSS JOIN corpus
    CROSS JOIN LATERAL (SELECT coalesce(array_length(u.positions, 1), 1)::float8 AS tf) f
    GROUP BY h.chunk_id
    ORDER BY score DESC, h.chunk_id
    LIMIT %(k)s
)
SELECT s.chunk_id, c.document_id, d.title, d.source, c.text, c.ordinal, c.page, c.heading,
       s.score
FROM scored s
JOIN chunks c ON c.chunk_id = s.chunk_id
JOIN documents d ON d.document_id = c.document_id
ORDER BY s.score DESC, s.chunk_id
"""


def reference_keyword_search(
    pool: ConnectionPool, query: str, top_k: int, k1: float = 0.9, b: float = 0.4
) -> list[tuple[str, float]]:
    """(chunk_id, score) best first, as the old implementation ranked them."""
    params: dict[str, Any] = {"q": query.strip(), "k": top_k, "k1": k1, "b": b}
    statement = sql.SQL(REFERENCE_SQL).format(conditions=sql.SQL("true"))
    with pool.connection() as conn:
        rows = conn.execute(statement, params).fetchall()
    return [(row[0], float(row[-1])) for row in rows]
