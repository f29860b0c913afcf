"""BM25 in PostgreSQL over a postings table whose cost grows with the query's postings.

`bm25_postings` holds one row per (lexeme, chunk) with the lexeme's term frequency and
the chunk's length; `bm25_corpus` holds N and the total length, split over a few slot
rows so concurrent writers rarely wait on one another (a transaction writes only the
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
CREATE TABLE IF NOT EXISTS bm25_postings (
    lexeme text NOT NULL,
    chunk_id text NOT NULL,
    tf int NOT NULL,
    dl int NOT NULL,
    PRIMARY KEY (lexeme, chunk_id) INCLUDE (tf, dl)
);
CREATE TABLE IF NOT EXISTS bm25_corpus (
    slot int PRIMARY KEY,
    n bigint NOT NULL DEFAULT 0,
    total_length bigint NOT NULL DEFAULT 0
);
CREATE OR REPLACE FUNCTION ragchat_bm25_sync() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    dn bigint := 0;
    dl bigint := 0;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE bm25_postings;
        UPDATE bm25_corpus SET n = 0, total_length = 0;
        RETURN NULL;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        -- The old rows' own lexemes find their postings through the primary key.
        DELETE FROM bm25_postings p
        USING (SELECT o.chunk_id, u.lexeme FROM old_rows o, unnest(o.tsv) u) x
        WHERE p.lexeme = x.lexeme AND p.chunk_id = x.chunk_id;
        SELECT dn - count(*), dl - coalesce(sum(o.tsv_length), 0) INTO dn, dl FROM old_rows o;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO bm25_postings (lexeme, chunk_id, tf, dl)
        SELECT u.lexeme, n.chunk_id, coalesce(array_length(u.positions, 1), 1), n.tsv_length
        FROM new_rows n, unnest(n.tsv) u;
        SELECT dn + count(*), dl + coalesce(sum(n.tsv_length), 0) INTO dn, dl FROM new_rows n;
    END IF;
    IF dn <> 0 OR dl <> 0 THEN
        UPDATE bm25_corpus SET n = n + dn, total_length = total_length + dl
        WHERE slot = pg_backend_pid() % {slots};
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
        INSERT INTO bm25_postings (lexeme, chunk_id, tf, dl)
        SELECT u.lexeme, c.chunk_id, coalesce(array_length(u.positions, 1), 1), c.tsv_length
        FROM chunks c, unnest(c.tsv) u
        ON CONFLICT DO NOTHING;
        INSERT INTO bm25_corpus (slot, n, total_length)
        SELECT s, CASE WHEN s = 0 THEN t.n ELSE 0 END, CASE WHEN s = 0 THEN t.l ELSE 0 END
        FROM generate_series(0, {slots} - 1) s,
             (SELECT count(*) AS n, coalesce(sum(tsv_length), 0) AS l FROM chunks) t;
    END IF;
END $do$;
"""

# Lucene's BM25: idf = ln(1 + (N - df + 0.5) / (df + 0.5)), df = the term's postings
# (counted on the primary key alone); corpus statistics are global, so a filter changes
# which chunks compete, never how a chunk scores. Only the query terms' postings are
# read, straight into one aggregate; chunk rows only for the top k.
KEYWORD_SEARCH: LiteralString = """
WITH corpus AS (
    SELECT sum(n)::float8 AS n,
           CASE WHEN sum(n) > 0 THEN sum(total_length)::float8 / sum(n) ELSE 0 END AS avgdl
    FROM bm25_corpus
), weights AS (
    SELECT t.lexeme, ln(1 + (corpus.n - df.n + 0.5) / (df.n + 0.5)) AS w
    FROM unnest(to_tsvector('english', %(q)s)) t CROSS JOIN corpus
    CROSS JOIN LATERAL (
        SELECT count(*)::float8 AS n FROM bm25_postings p WHERE p.lexeme = t.lexeme
    ) df
    WHERE df.n > 0
), scored AS (
    SELECT p.chunk_id,
           sum(w.w * p.tf * (%(k1)s + 1)
               / (p.tf + %(k1)s * (1 - %(b)s + %(b)s * p.dl / greatest(corpus.avgdl, 1))))
               AS score
    FROM weights w JOIN bm25_postings p ON p.lexeme = w.lexeme CROSS JOIN corpus
    {filter_join}
    GROUP BY p.chunk_id
    ORDER BY score DESC, p.chunk_id
    LIMIT %(k)s
)
SELECT s.chunk_id, c.document_id, d.title, d.source, c.text, c.ordinal, c.page, c.heading,
       s.score
FROM scored s
JOIN chunks c ON c.chunk_id = s.chunk_id
JOIN documents d ON d.document_id = c.document_id
ORDER BY s.score DESC, s.chunk_id
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
