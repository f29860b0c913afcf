"""What index generations cost: dense search in generation 1 (chunks.embedding) vs a
generation in its own table, and replacing a document while one or two are live.

    python benchmarks/generations.py [--chunks 10000] [--runs 200]

Documents of 50 chunks (random words, random 384-d unit vectors), written as the
RLS-bound service role; generation 2 gets the same vectors (so both graphs hold the
same points). Printed: p50 per operation for both, their ratio; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.common.db import open_pool  # noqa: E402
from services.common.generations import (  # noqa: E402
    build_index,
    create_generation,
    get_generation,
)
from services.common.rls import APP_ROLE  # noqa: E402
from services.common.tenancy import DEFAULT_TENANT, tenant_scope  # noqa: E402
from services.common.vectorstore.pgvector import PgVectorStore  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_docs import PER_DOC, migrated_postgres, p50_ms, synthetic_doc  # noqa: E402


def _measure(store: PgVectorStore, dsn: str, rng: random.Random,
             runs: int) -> dict[str, tuple[float, float]]:
    """operation -> (baseline, with generations): dense search in generation 1 vs 2;
    replacing a document with one live generation vs two (during a reindex)."""
    query = np.random.default_rng(1).normal(size=384).astype(np.float32)
    with psycopg.connect(dsn, autocommit=True) as conn:
        g1, g2 = get_generation(conn, 1), get_generation(conn, 2)
    assert g1 is not None and g2 is not None
    one, two = store.at(g1), store.at(g2)
    results = {
        "dense top 10": (p50_ms(lambda: one.search(query, 10), runs),
                         p50_ms(lambda: two.search(query, 10), runs)),
        "dense candidates 100": (p50_ms(lambda: one.search_candidates(query, 100), runs),
                                 p50_ms(lambda: two.search_candidates(query, 100), runs)),
    }
    doc = synthetic_doc(rng, "bench")
    single = p50_ms(lambda: store.replace_document(*doc), 30)
    with psycopg.connect(dsn, autocommit=True) as conn:  # generation 2 is live now
        conn.execute("UPDATE index_generations SET state = 'ready' WHERE id = 2")
    labelled = {1: doc[2], 2: doc[2]}
    both = p50_ms(lambda: store.replace_document(doc[0], doc[1], labelled), 30)
    results["replace 50 chunks"] = (single, both)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(7)
    with migrated_postgres() as dsn:
        pool = open_pool(dsn, max_size=2, role=APP_ROLE)
        store = PgVectorStore(pool)
        with tenant_scope(DEFAULT_TENANT):
            for d in range(args.chunks // PER_DOC):
                store.replace_document(*synthetic_doc(rng, f"d{d}"))
            started = time.perf_counter()
            with psycopg.connect(dsn, autocommit=True) as conn:
                with conn.transaction():
                    generation = create_generation(conn, "bench", "bench", 384)
                conn.execute("INSERT INTO chunk_vectors_g2 (chunk_id, tenant_id, embedding)"
                             " SELECT chunk_id, tenant_id, embedding FROM chunks")
                copy_s = round(time.perf_counter() - started, 1)
                started = time.perf_counter()
                build_index(conn, generation)  # as mlops.reindex does, once filled
                index_s = round(time.perf_counter() - started, 1)
                conn.execute("ANALYZE")
                # Not live until measured as such: writes fill generation 1 alone.
                conn.execute("UPDATE index_generations SET state = 'failed' WHERE id = 2")
            results = _measure(store, dsn, rng, args.runs)
        pool.close()
    print("p50 ms; dense: generation 1 (chunks.embedding) vs generation 2 (own table);"
          " replace: one live generation vs two")
    for op, (a, b) in results.items():
        print(f"{op:<22} {a:>10.3f} {b:>10.3f} {b / a:>6.2f}")
    print(json.dumps({"chunks": args.chunks, "fill_generation_2_s": copy_s,
                      "index_generation_2_s": index_s, "p50": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
