"""python -m mlops.evaluate_rag: evaluate retrieval (BEIR metrics) or answers (SQuAD-style).

Progress goes to stderr; results go to stdout, and the last line of stdout is one JSON
object with the metrics, "mode" and "queries".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from mlops.cli import prepare
from mlops.evaluate_rag.tracking import log_run
from services.ingest.config import IngestSettings

_METRIC_LABELS = {"ndcg@10": "nDCG@10", "recall@10": "Recall@10", "recall@100": "Recall@100",
                  "mrr@10": "MRR@10", "exact_match": "Exact match", "f1": "Token F1",
                  "refusal_rate": "Refusal rate (unanswerable)",
                  "false_refusal_rate": "Refusal rate (answerable)",
                  "context_recall": "Gold passage in context"}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ingest = IngestSettings.model_construct()  # only the chunking defaults are read
    parser = argparse.ArgumentParser(prog="python -m mlops.evaluate_rag", description=__doc__)
    parser.add_argument("--dataset", required=True, help="BEIR-format folder")
    parser.add_argument("--split", default="test",
                        help="qrels/<split>.tsv (default: test); fit and dev are the two "
                        "sides of train (mlops.splits)")
    parser.add_argument("--task", choices=("retrieval", "answers"), default="retrieval")
    parser.add_argument("--mode", choices=("dense", "keyword", "hybrid"), default=None,
                        help="search mode (default: RAGCHAT_SEARCH_MODE, i.e. the service's)")
    parser.add_argument("--top-k", type=int, default=None,
                        help="documents ranked per query (retrieval, default 100) or "
                        "chunks given to the model (answers, default 5)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N queries")
    parser.add_argument("--backend", choices=("pgvector", "chroma"), default=None)
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL database of its own (default: embedded, in --work-dir)")
    parser.add_argument("--work-dir", default="", help="default: data/eval/<dataset name>")
    parser.add_argument("--cache-dir", default="data/eval/cache",
                        help="embedding cache, shared by every dataset")
    parser.add_argument("--embedding-model", default="",
                        help="a sentence-transformers folder to evaluate instead of the "
                        "service's model; it gets its own index (a subfolder of the work "
                        "dir) and cache file, named by a digest of its files")
    parser.add_argument("--chunk-tokens", type=int, default=ingest.chunk_tokens)
    parser.add_argument("--chunk-overlap", type=int, default=ingest.chunk_overlap_tokens)
    parser.add_argument("--rrf-k", type=float, default=None)
    parser.add_argument("--dense-weight", type=float, default=None)
    parser.add_argument("--keyword-weight", type=float, default=None)
    parser.add_argument("--reranker", choices=("none", "embedding", "cross-encoder", "blend"),
                        default=None, help="default: RAGCHAT_RERANKER")
    parser.add_argument("--reranker-model-path", default="")
    parser.add_argument("--rerank-depth", type=int, default=None)
    parser.add_argument("--mlflow-uri", default="",
                        help="default: MLFLOW_TRACKING_URI, else ./mlruns")
    parser.add_argument("--experiment", default="")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.top_k is not None and args.top_k < 1:
        parser.error("--top-k must be at least 1")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    prepare()
    try:
        summary, params, artifacts = _run(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    experiment = args.experiment or f"ragchat-eval-{args.task}"
    run_id = log_run(experiment, f"{params['mode']}:{os.path.basename(args.dataset)}",
                     params, {k: v for k, v in summary.items() if _is_number(v)},
                     artifacts, args.mlflow_uri)
    for key, label in _METRIC_LABELS.items():
        if key in summary:
            print(f"{label:<30} {summary[key]:.4f}")
    print(json.dumps({**summary, "mlflow_run_id": run_id}))
    return 0


def _run(args: argparse.Namespace) -> tuple[dict, dict, dict]:
    from mlops.evaluate_rag.context import prepared  # deferred: loads torch and models

    progress = not args.no_progress
    if args.task == "retrieval":
        from mlops.evaluate_rag.retrieval_eval import evaluate_retrieval

        top_k = args.top_k or 100
        with prepared(args, top_k * 2) as ctx:
            summary, run = evaluate_retrieval(ctx, top_k, None, args.limit, progress)
            params = {**ctx.params, "top_k": top_k, "queries": summary["queries"]}
            return summary, params, {"run.json": run}
    from mlops.evaluate_rag.answers_eval import evaluate_answers, load_answers
    from services.generation.answering import Answerer
    from services.generation.config import GenerationSettings
    from services.generation.providers.factory import provider_from_settings

    gold = load_answers(args.dataset)
    generation = GenerationSettings()
    answerer = Answerer(provider_from_settings(generation),
                        max_context_chunks=generation.max_context_chunks,
                        min_support=generation.min_answer_support)
    top_k = args.top_k or 5
    with prepared(args, top_k, thresholds=True) as ctx:
        summary, rows = evaluate_answers(ctx, answerer, gold, top_k, generation.max_tokens,
                                         args.limit, progress)
        params = {**ctx.params, "top_k": top_k, "llm_provider": generation.llm_provider,
                  "model": summary["model"]}
        return summary, params, {"answers.json": rows}


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


if __name__ == "__main__":
    sys.exit(main())
