"""One fine-tuning run, from a BEIR folder to a registered model folder."""

from __future__ import annotations

import argparse
import json
import logging
import re
import resource
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from mlops.evaluate_rag.beir import load_beir
from mlops.finetune_embeddings.data import capped, chunk_corpus, mine_pairs
from mlops.finetune_embeddings.dense_eval import dev_pool, encode, pool_metrics
from mlops.finetune_embeddings.registry import check_tracking, log_and_register
from mlops.finetune_embeddings.train import TrainConfig, train
from mlops.splits import fit_dev_split
from services.common.embedding_cache import CachedEmbeddings
from services.common.embeddings import SentenceTransformerEmbeddings
from services.ingest.chunking import TokenChunker

logger = logging.getLogger(__name__)

_EMBED_BATCH = 256
TRAINING_RECORD = "ragchat_training.json"  # params, metrics and per-epoch dev history
_EVAL_BATCH = 64


def _embed_all(cache: CachedEmbeddings, texts: list[str], progress: bool) -> np.ndarray:
    bar = tqdm(total=len(texts), desc="embedding corpus (base)", unit="chunk",
               disable=not progress)
    parts = []
    for start in range(0, len(texts), _EMBED_BATCH):
        parts.append(cache.embed_documents(texts[start:start + _EMBED_BATCH]))
        bar.update(len(parts[-1]))
    bar.close()
    return np.concatenate(parts) if parts else np.zeros((0, cache.dimension), np.float32)


def _base_cache(
    args: argparse.Namespace,
) -> tuple[SentenceTransformerEmbeddings, CachedEmbeddings]:
    """The base model, and it behind the evaluation's embedding cache (same file and keys
    as `evaluate_rag`, so a corpus it embedded is not embedded again)."""
    base = SentenceTransformerEmbeddings(args.base_model or None)
    name = "embeddings.sqlite3"
    if args.base_model:
        name = "embeddings-" + re.sub(r"[^\w.-]", "_", base.model_id) + ".sqlite3"
    return base, CachedEmbeddings(base, Path(args.cache_dir) / name)


def _config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       max_seq_length=args.max_seq_length, patience=args.patience,
                       seed=args.seed)


def finetune(args: argparse.Namespace) -> dict[str, Any]:
    """Mine pairs, train with early stopping, save to --output, log and register."""
    started, cpu_started = time.perf_counter(), time.process_time()
    progress = not args.no_progress
    if Path(args.output).is_file():
        raise ValueError(f"--output {args.output} is a file, not a folder")
    check_tracking(args.mlflow_uri, args.experiment)
    dataset = load_beir(args.dataset, args.split)
    fit_ids, dev_ids = fit_dev_split(dataset.queries, args.dev_fraction, args.seed)
    if not fit_ids or not dev_ids:
        raise ValueError(f"{len(dataset.queries)} judged queries: too few to split fit/dev")
    base, cache = _base_cache(args)
    try:
        corpus = chunk_corpus(dataset.corpus, TokenChunker.for_embeddings(
            cache, args.chunk_tokens, args.chunk_overlap), progress)
        chunk_vectors = _embed_all(cache, corpus.texts, progress)
        fit_vectors = cache.embed_documents([dataset.queries[q] for q in fit_ids])
        dev_vectors = cache.embed_documents([dataset.queries[q] for q in dev_ids])
    finally:
        cache.close()
    pairs = mine_pairs({q: dataset.queries[q] for q in fit_ids}, dataset.qrels, corpus,
                       fit_vectors, chunk_vectors, args.hard_negatives, args.negative_margin)
    pairs = capped(pairs, args.max_pairs, args.seed)
    if not pairs:
        raise ValueError("no training pairs: no fit query has a relevant document with "
                         "enough hard negatives")
    dev_qrels = {q: dataset.qrels[q] for q in dev_ids}
    pool = dev_pool(dev_qrels, corpus, dev_vectors, chunk_vectors, args.dev_pool,
                    args.dev_random, args.seed)
    base_metrics = pool_metrics(dev_qrels, dev_vectors, chunk_vectors[pool.indices], pool,
                                corpus)
    pool_texts = [corpus.texts[int(i)] for i in pool.indices]
    dev_texts = [dataset.queries[q] for q in dev_ids]

    def evaluate_dev(model: Any) -> dict[str, float]:
        return pool_metrics(dev_qrels, encode(model, dev_texts, _EVAL_BATCH),
                            encode(model, pool_texts, _EVAL_BATCH, progress), pool, corpus)

    model = base.sentence_transformer()  # trained in place: the base vectors are all taken
    result = train(model, pairs, _config(args), evaluate_dev, base_metrics, progress)
    Path(args.output).mkdir(parents=True, exist_ok=True)
    model.save(args.output)
    measured = {"wall_seconds": round(time.perf_counter() - started, 1),
                "cpu_seconds": round(time.process_time() - cpu_started, 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    params = {**asdict(_config(args)),
              "dataset": args.dataset, "split": args.split, "base_model": args.base_model
              or "all-MiniLM-L6-v2 (packaged)", "hard_negatives": args.hard_negatives,
              "negative_margin": args.negative_margin, "max_pairs": args.max_pairs,
              "pairs": len(pairs), "fit_queries": len(fit_ids), "dev_queries": len(dev_ids),
              "dev_pool_chunks": len(pool.indices), "corpus_chunks": len(corpus.texts),
              "chunk_tokens": args.chunk_tokens, "chunk_overlap": args.chunk_overlap}
    metrics = {**{f"dev_{k}": v for k, v in result.best.items()},
               **{f"base_dev_{k}": v for k, v in base_metrics.items()},
               "best_epoch": result.best_epoch, "steps": result.steps, **measured}
    # Beside the weights, so the figures survive even if logging to MLflow fails.
    (Path(args.output) / TRAINING_RECORD).write_text(json.dumps(
        {"params": params, "metrics": metrics, "history": result.history}, indent=1,
        default=str))
    run_id, version = log_and_register(model, params, result.history, metrics,
                                       args.mlflow_uri, args.experiment)
    return {**{k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()},
            "pairs": len(pairs), "epochs_run": len(result.history) - 1,
            "output": str(Path(args.output).resolve()), "mlflow_run_id": run_id,
            "model_version": version}
