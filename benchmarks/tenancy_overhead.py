"""What tenant isolation costs: search and replace as the RLS-bound service role vs the
owner (which bypasses row-level security), on the same embedded database, same run.

    python benchmarks/tenancy_overhead.py [--chunks-per-tenant 5000] [--tenants 2]

Each tenant gets documents of 50 chunks (random words, random 384-d unit vectors).
Printed: p50 per operation for both roles and their ratio; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.common.db import open_pool  # noqa: E402
from services.common.rls import APP_ROLE  # noqa: E402
from services.common.tenancy import tenant_scope  # noqa: E402
from services.common.vectorstore.pgvector import PgVectorStore  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_docs import PER_DOC, migrated_postgres, p50_ms, synthetic_doc  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks-per-tenant", type=int, default=5000)
    parser.add_argument("--tenants", type=int, default=2)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(7)
    with migrated_postgres() as dsn:
        owner, role = open_pool(dsn, max_size=2), open_pool(
            dsn, max_size=2, role=APP_ROLE)
        stores = {"owner": PgVectorStore(owner), "ragchat_app": PgVectorStore(role)}
        for t in range(args.tenants):
            with tenant_scope(f"tenant{t}"):
                for d in range(args.chunks_per_tenant // PER_DOC):
                    stores["ragchat_app"].replace_document(*synthetic_doc(rng, f"t{t}d{d}"))
        with owner.connection() as conn:
            conn.execute("ANALYZE")
        query = np.random.default_rng(1).normal(size=384).astype(np.float32)
        results: dict[str, dict[str, float]] = {}
        with tenant_scope("tenant0"):
            for name, store in stores.items():
                doc = synthetic_doc(rng, f"bench-{name}")
                results[name] = {
                    "dense_ms": p50_ms(lambda s=store: s.search(query, 10), args.runs),
                    "keyword_ms": p50_ms(lambda s=store: s.keyword_search(
                        "w1 w20 w300", 10), args.runs),
                    "replace_50_chunks_ms": p50_ms(
                        lambda s=store, d=doc: s.replace_document(*d), 30),
                }
        owner.close()
        role.close()
    print(f"{'operation':<22} {'owner (no RLS)':>15} {'ragchat_app':>12} {'ratio':>6}")
    for op in results["owner"]:
        a, b = results["owner"][op], results["ragchat_app"][op]
        print(f"{op:<22} {a:>15.3f} {b:>12.3f} {b / a:>6.2f}")
    print(json.dumps({"chunks_per_tenant": args.chunks_per_tenant, "tenants": args.tenants,
                      "p50": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
