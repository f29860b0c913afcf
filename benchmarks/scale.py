"""Search at scale: build time, HNSW recall@10 per ef_search, p50/p99 per mode, disk size.

    python benchmarks/scale.py --sizes 100000[,1000000] [--m 16 --ef-construction 64]
        [--efs 10,20,40,100,200] [--dense-only] [--database-url URL]

Synthetic corpus (see README, "Search at scale"):
- text: words drawn from SciFact's own vocabulary with its empirical frequencies (a
  Zipf law, stopwords included) and chunk lengths from its documents, so postings
  lists are as long as a real corpus of that size would make them;
- vectors: 384-d, clustered like topic-bound sentence embeddings (sqrt(N) random
  centres, each point a centre plus noise of similar norm, normalised). Uniform random
  vectors would be HNSW's worst case and nothing like a model's output;
- queries: SciFact's real queries for keyword search, vectors drawn like the data.

--dense-only loads vectors alone (COPY straight into `chunks`, empty text: no postings),
so a 1M graph fits a session; it measures recall and dense latency only.
Without --database-url PostgreSQL runs embedded under --work-dir. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
from psycopg import sql
from psycopg_pool import ConnectionPool

from services.common.db import migrate, open_pool
from services.common.embeddings import EmbeddingProvider
from services.common.types import ChunkRecord, DocumentMeta
from services.common.vectorstore.pgvector import PgVectorStore
from services.retrieval.search import Retriever, SearchPolicy

DATASET = Path(__file__).resolve().parents[1].parent / "shared/datasets/scifact"
DOC_CHUNKS = 500  # chunks per synthetic document (one replace_document each)
COPY_BLOCK = 50_000  # vectors drawn and copied at a time by --dense-only


class Corpus:
    """Words and lengths of a real corpus, to draw synthetic chunks and queries from."""

    def __init__(self, dataset: Path, seed: int) -> None:
        rows = [json.loads(line) for line in (dataset / "corpus.jsonl").open()]
        counts: Counter[str] = Counter()
        lengths = []
        for row in rows:
            words = re.findall(r"\w+", f"{row['title']} {row['text']}".lower())
            counts.update(words)
            lengths.append(min(max(len(words), 20), 250))  # chunks of <= ~200 tokens
        self.words = np.array([w for w, _ in counts.most_common()])
        freq = np.array([c for _, c in counts.most_common()], dtype=np.float64)
        self.p = freq / freq.sum()
        self.lengths = np.array(lengths)
        self.queries = [json.loads(line)["text"] for line in (dataset / "queries.jsonl").open()]
        self.rng = np.random.default_rng(seed)

    def texts(self, n: int) -> list[str]:
        lengths = self.rng.choice(self.lengths, n)
        drawn = self.rng.choice(len(self.words), int(lengths.sum()), p=self.p)
        out, at = [], 0
        for length in lengths:
            out.append(" ".join(self.words[drawn[at:at + length]]))
            at += length
        return out


class Vectors:
    """Clustered unit vectors: a point is one of sqrt(N) centres plus noise."""

    def __init__(self, n: int, dim: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed + 1)
        self.centres = self.rng.standard_normal((max(1, int(n ** 0.5)), dim)).astype(np.float32)
        self.dim = dim

    def draw(self, n: int) -> np.ndarray:
        which = self.rng.integers(0, len(self.centres), n)
        noise = self.rng.standard_normal((n, self.dim)).astype(np.float32)
        points = self.centres[which] + noise
        return points / np.linalg.norm(points, axis=1, keepdims=True)


class QueryVectors(EmbeddingProvider):
    """Hands the retriever the drawn vector of each benchmark query (no model involved)."""

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self._table = table

    @property
    def model_name(self) -> str:
        return "synthetic"

    @property
    def dimension(self) -> int:
        return len(next(iter(self._table.values())))

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._table[t] for t in texts])


def load_chunks(pool: ConnectionPool, corpus: Corpus, vectors: Vectors, n: int) -> np.ndarray:
    """n chunks through the store (postings triggers included); returns their vectors."""
    store = PgVectorStore(pool)
    matrix = np.empty((n, vectors.dim), dtype=np.float32)
    for start in range(0, n, DOC_CHUNKS):
        count = min(DOC_CHUNKS, n - start)
        doc = DocumentMeta(f"s{start}", f"synthetic {start}", "synthetic", "text/plain")
        chunks = [ChunkRecord(f"c{start + i}", doc.document_id, i, text)
                  for i, text in enumerate(corpus.texts(count))]
        matrix[start:start + count] = vectors.draw(count)
        store.replace_document(doc, chunks, matrix[start:start + count])
    return matrix


def load_vectors(pool: ConnectionPool, vectors: Vectors, n: int) -> np.ndarray:
    """n vectors COPYed straight into chunks of one document, with empty text (the
    connection must bypass row-level security: the owner of an embedded database)."""
    matrix = np.empty((n, vectors.dim), dtype=np.float32)
    with pool.connection() as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO documents (document_id, title, source, content_type)"
                    " VALUES ('dense', 'synthetic', 'synthetic', 'text/plain')")
        for start in range(0, n, COPY_BLOCK):
            block = matrix[start:start + COPY_BLOCK]
            block[:] = vectors.draw(len(block))
            with cur.copy("COPY chunks (chunk_id, document_id, ordinal, text, embedding)"
                          " FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["text", "text", "int4", "text", "vector"])
                for i, vector in enumerate(block, start=start):
                    copy.write_row((f"c{i}", "dense", i, "", vector))
    return matrix


def reusable(pool: ConnectionPool, n: int, args: argparse.Namespace) -> bool:
    """Whether the database already holds this run's n chunks under the chosen graph
    (a --reuse run: build once, measure again later, e.g. on a quieter machine)."""
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM chunks),"
            " (SELECT indexdef FROM pg_indexes WHERE indexname = 'chunks_embedding_hnsw_idx')"
        ).fetchone()
    assert row is not None
    graph = f"m='{int(args.m)}', ef_construction='{int(args.ef_construction)}'"
    return row[0] == n and graph in (row[1] or "")


def redraw(vectors: Vectors, n: int, args: argparse.Namespace) -> np.ndarray:
    """The vectors a build drew, drawn again in the same order (the same seed)."""
    if not args.dense_only:
        raise SystemExit("--reuse needs --dense-only (text chunks are not redrawn)")
    matrix = np.empty((n, vectors.dim), dtype=np.float32)
    for start in range(0, n, COPY_BLOCK):
        block = matrix[start:start + COPY_BLOCK]
        block[:] = vectors.draw(len(block))
    return matrix


def build(pool: ConnectionPool, corpus: Corpus, vectors: Vectors, n: int,
          args: argparse.Namespace) -> dict[str, Any]:
    """Load n chunks, then build the HNSW index (m, ef_construction from `args`)."""
    if args.reuse and reusable(pool, n, args):
        return {"matrix": redraw(vectors, n, args), "load_s": None, "hnsw_build_s": None}
    with pool.connection() as conn:
        conn.execute("DROP INDEX IF EXISTS chunks_embedding_hnsw_idx")
        conn.execute("TRUNCATE documents CASCADE")
    started = time.perf_counter()
    if args.dense_only:
        matrix = load_vectors(pool, vectors, n)
    else:
        matrix = load_chunks(pool, corpus, vectors, n)
    loaded = time.perf_counter() - started
    with pool.connection() as conn:
        # A graph larger than this is built on disk, several times slower.
        conn.execute(sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(args.build_mem)))
        conn.execute(
            f"CREATE INDEX chunks_embedding_hnsw_idx ON chunks USING hnsw "
            f"(embedding vector_cosine_ops) WITH (m = {int(args.m)}, "
            f"ef_construction = {int(args.ef_construction)})"  # integers, not text
        )
        conn.commit()
        conn.autocommit = True  # VACUUM runs outside a transaction
        conn.execute("VACUUM ANALYZE chunks")
        conn.execute("VACUUM ANALYZE bm25_postings")
        conn.autocommit = False
    built = time.perf_counter() - started - loaded
    return {"matrix": matrix, "load_s": round(loaded, 1), "hnsw_build_s": round(built, 1)}


def recall(pool: ConnectionPool, matrix: np.ndarray, queries: np.ndarray,
           efs: Sequence[int]) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """recall@10 of the HNSW scan against exact (brute-force) neighbours, and the scan's
    own p50/p99 (the store, query vectors given), per ef_search."""
    truth = [set(np.argpartition(-(matrix @ q), 10)[:10].tolist()) for q in queries]
    found_at, latency = {}, {}
    for ef in efs:
        store = PgVectorStore(pool, ef_search=ef)
        for q in queries[:10]:  # warm the graph's pages for this ef
            store.search(q, 10, min_score=-1)
        found, samples = 0, []
        for q, t in zip(queries, truth, strict=True):
            started = time.perf_counter()
            hits = store.search(q, 10, min_score=-1)
            samples.append((time.perf_counter() - started) * 1000)
            found += len(t & {int(c.chunk_id[1:]) for c in hits})
        found_at[str(ef)] = round(found / (10 * len(queries)), 4)
        latency[str(ef)] = summary(samples)
    return found_at, latency


def summary(samples: Sequence[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": round(statistics.median(samples), 2), "p99": round(cuts[98], 2)}


def percentiles(call: Callable[[str], object], queries: Sequence[str]) -> dict[str, float]:
    for query in queries[:10]:
        call(query)
    samples = []
    for query in queries:
        started = time.perf_counter()
        call(query)
        samples.append((time.perf_counter() - started) * 1000)
    return summary(samples)


def disk(pool: ConnectionPool) -> dict[str, float]:
    mib = 1024 * 1024
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT pg_total_relation_size('chunks'),"
            " pg_relation_size('chunks_embedding_hnsw_idx'),"
            " pg_total_relation_size('bm25_postings'), pg_database_size(current_database())"
        ).fetchone()
    assert row is not None
    names = ("chunks_mib", "hnsw_mib", "postings_mib", "database_mib")
    return {name: round(value / mib, 1) for name, value in zip(names, row, strict=True)}


def model_latency(pool: ConnectionPool, texts: Sequence[str],
                  args: argparse.Namespace) -> dict[str, float]:
    """Dense search as the service runs it: each query embedded by the configured model
    (its precision and threads), then the HNSW scan. The model's vectors are not those
    the corpus was drawn like, so this times the path; recall comes from the drawn ones."""
    from services.common.components import embeddings_from
    from services.retrieval.config import RetrievalSettings

    settings = RetrievalSettings(embedding_dim=args.dim)
    retriever = Retriever(embeddings_from(settings),
                          PgVectorStore(pool, ef_search=args.ef_search),
                          SearchPolicy(dense_min_score=-1.0))
    return percentiles(lambda q: retriever.search(q, top_k=10, mode="dense"), texts)


def run_size(pool: ConnectionPool, n: int, args: argparse.Namespace) -> dict[str, Any]:
    corpus, vectors = Corpus(Path(args.dataset), args.seed), Vectors(n, args.dim, args.seed)
    built = build(pool, corpus, vectors, n, args)
    query_vectors = vectors.draw(args.queries)
    texts = corpus.queries[: args.queries]
    table = dict(zip(texts, query_vectors, strict=False))
    retriever = Retriever(QueryVectors(table), PgVectorStore(pool, ef_search=args.ef_search),
                          SearchPolicy(dense_min_score=-1.0))
    modes = ("dense",) if args.dense_only else ("dense", "keyword", "hybrid")
    latency = {mode: percentiles(lambda q, m=mode: retriever.search(q, top_k=10, mode=m), texts)
               for mode in modes}
    if args.with_model:
        latency["dense_with_model"] = model_latency(pool, texts, args)
    found, scan = recall(pool, built["matrix"], query_vectors, args.efs)
    return {"chunks": n, "load_s": built["load_s"], "hnsw_build_s": built["hnsw_build_s"],
            "recall_at_10": found, "dense_ms_by_ef_search": scan, "latency_ms": latency,
            "disk": disk(pool)}


def _set_shared_buffers(dsn: str, size: str) -> bool:
    """ALTER SYSTEM shared_buffers of the embedded server; True if a restart is due."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER SYSTEM SET shared_buffers = {}").format(sql.Literal(size)))
        row = conn.execute("SELECT pending_restart FROM pg_settings"
                           " WHERE name = 'shared_buffers'").fetchone()
    return bool(row and row[0])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000", help="comma-separated chunk counts")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--efs", default="10,20,40,100,200", help="ef_search values")
    parser.add_argument("--ef-search", type=int, default=100, help="for the latency runs")
    parser.add_argument("--m", type=int, default=24, help="HNSW m")
    parser.add_argument("--ef-construction", type=int, default=128, help="HNSW ef_construction")
    parser.add_argument("--build-mem", default="2GB", help="maintenance_work_mem of the build")
    parser.add_argument("--dense-only", action="store_true",
                        help="vectors only (COPY, no text or postings); dense figures only")
    parser.add_argument("--reuse", action="store_true",
                        help="with --dense-only: measure the index a previous run of the same"
                        " size, graph and seed left in the database instead of rebuilding it")
    parser.add_argument("--shared-buffers", default="",
                        help="the embedded server's shared_buffers, e.g. 6GB (its default"
                        " is 128MB; a production server sizes it to its memory)")
    parser.add_argument("--with-model", action="store_true",
                        help="also time dense search with each query embedded by the model")
    parser.add_argument("--dataset", default=str(DATASET))
    parser.add_argument("--database-url", default="")
    parser.add_argument("--work-dir", default="data/scale")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    args.efs = [int(v) for v in args.efs.split(",")]
    results = []
    with ExitStack() as stack:
        dsn = args.database_url
        if not dsn:
            from devstack.postgres import start_postgres

            server = start_postgres(Path(args.work_dir) / "postgres")
            if args.shared_buffers and _set_shared_buffers(server.dsn, args.shared_buffers):
                server.stop()  # shared_buffers takes effect at start only
                server = start_postgres(Path(args.work_dir) / "postgres")
            stack.callback(server.stop)
            dsn = server.dsn
        migrate(dsn, args.dim)
        pool = open_pool(dsn, max_size=4)
        stack.callback(pool.close)
        for size in (int(v) for v in args.sizes.split(",")):
            results.append(run_size(pool, size, args))
            print(json.dumps(results[-1]), file=sys.stderr)
    hnsw = {"m": args.m, "ef_construction": args.ef_construction}
    print(json.dumps({"hnsw": hnsw, "dense_only": args.dense_only,
                      "ef_search": args.ef_search, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
