"""BM25 keyword index for the Chroma backend: an SQLite FTS5 table beside the collection.

Chroma has no BM25, so the chunk texts are also kept in `<persist dir>/keyword.sqlite3`
(WAL mode with a busy timeout, so a retrieval and an ingest process can share it) and
ranked with FTS5's built-in bm25() (k1 = 1.2, b = 0.75) under the Porter stemmer. Corpus
statistics are global: a search restricted to some chunks scores them as an unrestricted
one would, like the PostgreSQL store.

Texts live in the ordinary table `chunk_text` (chunk ids unique, indexed by document), and
`chunk_fts` is an external-content FTS5 index over it kept in step by triggers, so
replacing one document's rows never scans the whole index.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)

_VERSION = 1  # PRAGMA user_version of the current schema
_SCHEMA = (
    "CREATE TABLE chunk_text (id INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL UNIQUE,"
    " document_id TEXT NOT NULL, text TEXT NOT NULL)",
    "CREATE INDEX chunk_text_document ON chunk_text (document_id)",
    "CREATE VIRTUAL TABLE chunk_fts USING fts5(text, content = 'chunk_text',"
    " content_rowid = 'id', tokenize = 'porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER chunk_text_ai AFTER INSERT ON chunk_text BEGIN"
    " INSERT INTO chunk_fts (rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER chunk_text_ad AFTER DELETE ON chunk_text BEGIN"
    " INSERT INTO chunk_fts (chunk_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER chunk_text_au AFTER UPDATE ON chunk_text BEGIN"
    " INSERT INTO chunk_fts (chunk_fts, rowid, text) VALUES ('delete', old.id, old.text);"
    " INSERT INTO chunk_fts (rowid, text) VALUES (new.id, new.text); END",
)
_SEARCH = (
    "SELECT t.chunk_id, -bm25(chunk_fts) AS score"
    " FROM chunk_fts JOIN chunk_text t ON t.id = chunk_fts.rowid"
    " WHERE chunk_fts MATCH ? ORDER BY score DESC, t.chunk_id"
)
_INSERT = "INSERT INTO chunk_text (chunk_id, document_id, text) VALUES (?, ?, ?)"
_MIN_SCORE = 1e-12  # bm25() is negative for a match; anything else is not a hit
_WORD = re.compile(r"\w+", re.UNICODE)
# PostgreSQL's (Snowball's) english stopword list, so both backends drop the same words.
STOPWORDS = frozenset("""
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself
she her hers herself it its itself they them their theirs themselves what which who whom
this that these those am is are was were be been being have has had having do does did
doing a an the and but if or because as until while of at by for with about against
between into through during before after above below to from up down in out on off over
under again further then once here there when where why how all any both each few more
most other some such no nor not only own same so than too very s t can will just don
should now
""".split())


def match_expression(query: str) -> str:
    """The query's distinct non-stopword terms as an FTS5 OR of quoted strings; "" if none.

    Quoting makes every term plain text, so user input never reaches FTS5's query syntax.
    """
    words = (w.lower() for w in _WORD.findall(query))
    terms = dict.fromkeys(w for w in words if w not in STOPWORDS)
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


class KeywordIndex:
    """Chunk texts searchable by BM25 in one SQLite file; safe to share across threads."""

    def __init__(self, path: str | Path, busy_timeout_s: float = 30.0) -> None:
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self._path, timeout=busy_timeout_s,
                                     check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        self._create_schema()

    def _create_schema(self) -> None:
        """Create the tables on first use; an older layout is dropped (it is derived data)."""
        with self._transaction() as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version == _VERSION:
                return
            if version > _VERSION:
                raise RuntimeError(f"{self._path} has keyword index schema {version}, "
                                   f"newer than this code's {_VERSION}")
            logger.info("creating the keyword index in %s", self._path)
            conn.execute("DROP TABLE IF EXISTS chunk_fts")
            conn.execute("DROP TABLE IF EXISTS chunk_text")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {_VERSION}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so concurrent writers queue, not fail."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def count(self) -> int:
        """Chunks in the index."""
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM chunk_text").fetchone()[0])

    def replace(self, document_id: str, rows: Sequence[tuple[str, str]]) -> None:
        """Make the (chunk_id, text) rows the document's only entries, atomically.

        Idempotent; a chunk id indexed under another document moves to this one.
        """
        with self._transaction() as conn:
            conn.execute("DELETE FROM chunk_text WHERE document_id = ?", (document_id,))
            conn.executemany("DELETE FROM chunk_text WHERE chunk_id = ?",
                             [(chunk_id,) for chunk_id, _ in rows])
            conn.executemany(_INSERT, [(chunk_id, document_id, text or "")
                                       for chunk_id, text in rows])

    def add_missing(self, rows: Iterable[tuple[str, str, str]]) -> int:
        """Index the (chunk_id, document_id, text) rows whose chunk id is not indexed yet.

        Returns how many were added; rows already indexed are left as they are.
        """
        with self._transaction() as conn:
            # rowcount sums the rows each insert added, not the trigger's writes.
            return conn.executemany(_INSERT + " ON CONFLICT (chunk_id) DO NOTHING",
                                    ((cid, did, text or "") for cid, did, text in rows)
                                    ).rowcount

    def delete(self, document_id: str) -> int:
        """Remove the document's entries; returns how many were removed."""
        with self._transaction() as conn:
            return conn.execute(
                "DELETE FROM chunk_text WHERE document_id = ?", (document_id,)
            ).rowcount

    def search(
        self, query: str, limit: int, allowed_ids: set[str] | None = None
    ) -> list[tuple[str, float]]:
        """Up to `limit` (chunk_id, score) pairs, best first, every score > 0.

        Only chunks sharing a non-stopword term with the query are returned and, when
        `allowed_ids` is given, only those among them (an empty set gives nothing).
        """
        expression = match_expression(query)
        if not expression or limit < 1 or allowed_ids == set():
            return []
        found: list[tuple[str, float]] = []
        with self._lock:
            cursor = self._conn.execute(_SEARCH, (expression,))
            try:
                # Rows come in rank order: stop once enough allowed ones are seen.
                for chunk_id, score in cursor:
                    if score <= _MIN_SCORE:
                        continue
                    if allowed_ids is not None and chunk_id not in allowed_ids:
                        continue
                    found.append((chunk_id, float(score)))
                    if len(found) >= limit:
                        break
            finally:
                cursor.close()
        return found

    def close(self) -> None:
        """Close the connection; the index is unusable afterwards."""
        with self._lock:
            self._conn.close()
