"""python -m mlops.reindex: re-embed every chunk with a new model, without downtime.

Creates a `building` index generation for --embedding-model (a folder, or
models:/ragchat-embedder/<version or @alias>) and queues one reindex message per
document for the ingest worker, which embeds the document's current chunks with that
model. Retrieval keeps serving the active generation meanwhile, and new uploads are
written to both. When every document is done it verifies (every chunk has a vector in
the new generation; a smoke evaluation: sampled chunks, their own text as the query,
must find their own document in the top k), switches `active` in one transaction,
waits --drain-s, and drops the old generation's vectors. Exits 0 when switched (or
built, with --no-switch), 1 when verification fails or it times out (the old
generation stays active; run it again to resume), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence

from mlops.cli import prepare

logger = logging.getLogger(__name__)
EXPERIMENT = "ragchat-reindex"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mlops.reindex", description=__doc__)
    parser.add_argument("--embedding-model", required=True,
                        help="model folder, or models:/ragchat-embedder/<version or @alias>")
    parser.add_argument("--no-switch", action="store_true",
                        help="build and verify, leave it `ready`; a later run switches")
    parser.add_argument("--timeout-s", type=float, default=3600.0,
                        help="give up waiting after this long (resumable; default 3600)")
    parser.add_argument("--drain-s", type=float, default=3.0,
                        help="wait between the switch and dropping the old vectors; keep it "
                             "above RAGCHAT_GENERATION_POLL_S (default 3)")
    parser.add_argument("--smoke-sample", type=int, default=50,
                        help="chunks sampled for the smoke evaluation (default 50)")
    parser.add_argument("--smoke-k", type=int, default=10)
    parser.add_argument("--smoke-min", type=float, default=0.8,
                        help="least share of sampled chunks finding their own document")
    parser.add_argument("--poll-s", type=float, default=1.0, help="progress check interval")
    parser.add_argument("--mlflow-uri", default="", help="default: MLFLOW_TRACKING_URI")
    parser.add_argument("--no-mlflow", action="store_true", help="log no MLflow run")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.smoke_sample < 1 or args.smoke_k < 1 or not 0 <= args.smoke_min <= 1:
        parser.error("--smoke-sample and --smoke-k must be positive, --smoke-min in [0, 1]")
    if args.timeout_s <= 0 or args.drain_s < 0 or args.poll_s <= 0:
        parser.error("--timeout-s and --poll-s must be positive, --drain-s not negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    prepare()
    from tqdm import tqdm

    from mlops.reindex.catalog import Catalog
    from mlops.reindex.model import resolve_model
    from mlops.reindex.run import Options, Reindex, ReindexFailed, summary
    from services.common.aws import sqs_client
    from services.ingest.adapters import SqsJobQueue
    from services.ingest.config import IngestSettings

    settings = IngestSettings()
    if settings.vector_backend != "pgvector":
        print("refused: reindexing needs the pgvector store (RAGCHAT_VECTOR_BACKEND=pgvector);"
              " Chroma keeps one generation: re-ingest into a fresh collection", file=sys.stderr)
        return 2
    try:
        model = resolve_model(args.embedding_model, settings.model_cache_dir,
                              settings.embedding_device, args.mlflow_uri,
                              settings.embedding_precision)
    except ValueError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    options = Options(model.uri, not args.no_switch, args.timeout_s, args.poll_s,
                      args.drain_s, args.smoke_sample, args.smoke_k, args.smoke_min)
    queue = SqsJobQueue(sqs_client(settings), settings.sqs_queue_url)
    catalog = Catalog(settings.database_dsn())
    bar = tqdm(desc="documents reindexed", unit="doc", disable=args.no_progress,
               file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    reindex = Reindex(catalog, queue, model.provider, options, progress)
    started = time.time()
    failure = ""
    try:
        reindex.run()
    except ReindexFailed as exc:
        failure = str(exc)
    finally:
        bar.close()
        catalog.close()
    line = {**summary(reindex.outcome), "model": model.uri,
            "model_id": model.provider.model_id}
    return _report(line, failure, args, time.time() - started)


def _report(line: dict[str, object], failure: str, args: argparse.Namespace,
            seconds: float) -> int:
    """Print the summary line (and log it to MLflow); the exit code."""
    line["outcome"] = "failed" if failure else "switched" if line["switched"] else "ready"
    if failure:
        line["reason"] = failure
    if not args.no_mlflow:
        line["mlflow_run_id"] = _log(line, args.mlflow_uri, seconds)
    print(json.dumps(line))
    if failure:
        print(f"refused: {failure}", file=sys.stderr)
        return 1
    return 0


def _log(line: dict[str, object], uri: str, seconds: float) -> str:
    from mlops.evaluate_rag.tracking import log_run

    params = {k: line[k] for k in ("model", "model_id", "generation", "previous", "outcome")}
    metrics = {k: float(v) for k, v in line.items()  # type: ignore[arg-type]
               if k in ("documents", "chunks", "smoke_hit_rate") or k.endswith("_seconds")}
    metrics["wall_seconds"] = seconds
    return log_run(EXPERIMENT, f"reindex-g{line['generation']}", params, metrics, uri=uri)


if __name__ == "__main__":
    sys.exit(main())
