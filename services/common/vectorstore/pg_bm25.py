"""BM25 in PostgreSQL over a postings table whose cost grows with the query's postings.

`bm25_postings` holds one row per (tenant, lexeme, chunk) with the lexeme's term frequency and
the chunk's length; `bm25_corpus` holds each tenant's N and total length, split over a
few slot rows so concurrent writers rarely wait on one another (a transaction writes only the
slot of its backend, so two writers never lock two slots in opposite orders). Both are
kept by statement-level triggers on `chunks`, so every path that writes or deletes
chunks (replace, delete, the cascade from `documents`, TRUNCATE) keeps them in the same
transaction. Document frequency is not stored: it is the count of the term's postings,
read anyway to score them, in the query's own snapshot, so it can never drift and no
hot per-lexeme row serialises ingest.
"""

from __future__ import annotations

from typing import LiteralString

from psycopg import sql

CORPUS_SLOTS = 16

SCHEMA: LiteralString = """
-- Per tenant since tenants exist: tables of the older global layout are rebuilt (the
-- backfill below refills them from chunks).
DO $do$ BEGIN
    IF to_regclass('bm25_corpus') IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_attribute
            WHERE attrelid = to_regclass('bm25_corpus') AND attname = 'tenant_id') THEN
        DROP TABLE IF EXISTS bm25_postings;
        DROP TABLE bm25_corpus;
    END IF;
END $do$;
CREATE TABLE IF NOT EXISTS bm25_postings (
    tenant_id text NOT NULL,
    lexeme text NOT NULL,
    chunk_id text NOT NULL,
    tf int NOT NULL,
    dl int NOT NULL,
    PRIMARY KEY (tenant_id, lexeme, chunk_id) INCLUDE (tf, dl)
);
CREATE TABLE IF NOT EXISTS bm25_corpus (
    tenant_id text NOT NULL,
    slot int NOT NULL,
    n bigint NOT NULL DEFAULT 0,
    total_length bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, slot)
);
CREATE OR REPLACE FUNCTION ragchat_bm25_sync() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE bm25_postings;
        DELETE FROM bm25_corpus;
        RETURN NULL;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        -- The old rows' own lexemes find their postings through the primary key.
        DELETE FROM bm25_postings p
        USING (SELECT o.tenant_id, o.chunk_id, u.lexeme FROM old_rows o, unnest(o.tsv) u) x
        WHERE p.tenant_id = x.tenant_id AND p.lexeme = x.lexeme AND p.chunk_id = x.chunk_id;
        INSERT INTO bm25_corpus AS c (tenant_id, slot, n, total_length)
        SELECT o.tenant_id, pg_backend_pid() % {slots}, -count(*), -coalesce(sum(o.tsv_length), 0)
        FROM old_rows o GROUP BY o.tenant_id
        ON CONFLICT (tenant_id, slot) DO UPDATE
        SET n = c.n + excluded.n, total_length = c.total_length + excluded.total_length;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO bm25_postings (tenant_id, lexeme, chunk_id, tf, dl)
        SELECT n.tenant_id, u.lexeme, n.chunk_id, coalesce(array_length(u.positions, 1), 1),
               n.tsv_length
        FROM new_rows n, unnest(n.tsv) u;
        INSERT INTO bm25_corpus AS c (tenant_id, slot, n, total_length)
        SELECT n.tenant_id, pg_backend_pid() % {slots}, count(*), coalesce(sum(n.tsv_length), 0)
        FROM new_rows n GROUP BY n.tenant_id
        ON CONFLICT (tenant_id, slot) DO UPDATE
        SET n = c.n + excluded.n, total_length = c.total_length + excluded.total_length;
    END IF;
    RETURN NULL;
END
$fn$;
CREATE OR REPLACE TRIGGER chunks_bm25_insert AFTER INSERT ON chunks
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ragchat_bm25_sync();
CREATE OR REPLACE TRIGGER chunks_bm25_delete AFTER DELETE ON chunks
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ragchat_bm25_sync();
CREATE OR REPLACE TRIGGER chunks_bm25_update AFTER UPDATE ON chunks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ragchat_bm25_sync();
CREATE OR REPLACE TRIGGER chunks_bm25_truncate AFTER TRUNCATE ON chunks
    FOR EACH STATEMENT EXECUTE FUNCTION ragchat_bm25_sync();
-- Backfill once, when the corpus rows are first created: the triggers above already
-- hold a lock that keeps writers out until this transaction commits.
DO $do$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM bm25_corpus) THEN
        INSERT INTO bm25_postings (tenant_id, lexeme, chunk_id, tf, dl)
        SELECT c.tenant_id, u.lexeme, c.chunk_id, coalesce(array_length(u.positions, 1), 1),
               c.tsv_length
        FROM chunks c, unnest(c.tsv) u
        ON CONFLICT DO NOTHING;
        INSERT INTO bm25_corpus (tenant_id, slot, n, total_length)
        SELECT tenant_id, 0, count(*), coalesce(sum(tsv_length), 0) FROM chunks
        GROUP BY tenant_id;
    END IF;
END $do$;
"""

# Lucene's BM25: idf = ln(1 + (N - df + 0.5) / (df + 0.5)), df = the term's postings
# (counted on the primary key alone); corpus statistics are the tenant's own (never
# another tenant's) and ignore filters, so a filter changes which chunks compete, never
# how a chunk scores. Only the query terms' postings are
# read, straight into one aggregate; chunk rows only for the top k.
KEYWORD_SCORED: LiteralString = """
WITH corpus AS (
    SELECT sum(n)::float8 AS n,
           CASE WHEN sum(n) > 0 THEN sum(total_length)::float8 / sum(n) ELSE 0 END AS avgdl
    FROM bm25_corpus WHERE tenant_id = %(tenant)s
), weights AS (
    SELECT t.lexeme, ln(1 + (corpus.n - df.n + 0.5) / (df.n + 0.5)) AS w
    FROM unnest(to_tsvector('english', %(q)s)) t CROSS JOIN corpus
    CROSS JOIN LATERAL (
        SELECT count(*)::float8 AS n FROM bm25_postings p
        WHERE p.tenant_id = %(tenant)s AND p.lexeme = t.lexeme
    ) df
    WHERE df.n > 0
), scored AS (
    SELECT p.chunk_id,
           sum(w.w * p.tf * (%(k1)s + 1)
               / (p.tf + %(k1)s * (1 - %(b)s + %(b)s * p.dl / greatest(corpus.avgdl, 1))))
               AS score
    FROM weights w
    JOIN bm25_postings p ON p.tenant_id = %(tenant)s AND p.lexeme = w.lexeme
    CROSS JOIN corpus
    {filter_join}
    GROUP BY p.chunk_id
    ORDER BY score DESC, p.chunk_id
    LIMIT %(k)s
)
"""

# The top k with their chunk rows.
KEYWORD_SEARCH: LiteralString = KEYWORD_SCORED + """
SELECT s.chunk_id, c.document_id, d.title, d.source, c.text, c.ordinal, c.page, c.heading,
       s.score
FROM scored s
JOIN chunks c ON c.chunk_id = s.chunk_id
JOIN documents d ON d.document_id = c.document_id
ORDER BY s.score DESC, s.chunk_id
"""

# The top k as (chunk_id, score) only: hybrid search reads chunk rows for the fused top k.
KEYWORD_CANDIDATES: LiteralString = KEYWORD_SCORED + """
SELECT chunk_id, score FROM scored ORDER BY score DESC, chunk_id
"""

# Only a filtered search reads chunk and document rows for every candidate.
FILTER_JOIN: LiteralString = """
    JOIN chunks c ON c.chunk_id = p.chunk_id
    JOIN documents d ON d.document_id = c.document_id
    WHERE {conditions}
"""


def schema() -> sql.Composed:
    """The BM25 tables, triggers and one-time backfill, for the migration."""
    return sql.SQL(SCHEMA).format(slots=sql.Literal(CORPUS_SLOTS))
