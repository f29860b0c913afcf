"""python -m mlops.finetune_embeddings: fine-tune the embedding model on a BEIR dataset.

Pairs come from the *fit* queries of --split (a fixed seeded 80/20 split of its query
ids), hard negatives from the base model's dense ranking over the chunked corpus;
epochs are selected by *dev* nDCG@10. Writes a sentence-transformers folder to
--output, logs the run to MLflow and registers the model as `ragchat-embedder`.
Progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from mlops.cli import prepare
from mlops.finetune_embeddings.train import TrainConfig
from services.ingest.config import IngestSettings


def _positive(kind: type) -> object:
    def parse(text: str) -> object:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    return parse


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ingest = IngestSettings.model_construct()  # only the chunking defaults are read
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="python -m mlops.finetune_embeddings",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--dataset", required=True, help="BEIR-format folder")
    add("--split", default="train", help="qrels/<split>.tsv to split into fit/dev (train)")
    add("--output", required=True, help="folder to write the fine-tuned model to")
    add("--base-model", default="", help="sentence-transformers folder (default: the "
        "packaged all-MiniLM-L6-v2)")
    add("--epochs", type=_positive(int), default=defaults.epochs)
    add("--batch-size", type=_positive(int), default=defaults.batch_size,
        help="pairs per step; the other pairs of a batch are its in-batch negatives")
    add("--lr", type=_positive(float), default=defaults.lr)
    add("--seed", type=int, default=defaults.seed)
    add("--hard-negatives", type=int, default=3, help="mined negatives per pair (0: none)")
    add("--negative-margin", type=float, default=0.05,
        help="skip candidate negatives scoring above the positive minus this")
    add("--max-pairs", type=_positive(int), default=2000, help="cap on training pairs")
    add("--max-seq-length", type=_positive(int), default=defaults.max_seq_length,
        help="tokens per text while training")
    add("--patience", type=_positive(int), default=defaults.patience,
        help="epochs without a better dev nDCG@10 before stopping")
    add("--dev-fraction", type=float, default=0.2)
    add("--dev-pool", type=int, default=10, help="dev queries are ranked against their "
        "relevant chunks, the base model's top N chunks each and --dev-random random "
        "chunks (0: the whole corpus)")
    add("--dev-random", type=int, default=200)
    add("--chunk-tokens", type=int, default=ingest.chunk_tokens)
    add("--chunk-overlap", type=int, default=ingest.chunk_overlap_tokens)
    add("--cache-dir", default="data/eval/cache",
        help="embedding cache of the base model (shared with evaluate_rag)")
    add("--mlflow-uri", default="", help="default: MLFLOW_TRACKING_URI, else ./mlruns")
    add("--experiment", default="ragchat-finetune")
    add("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.hard_negatives < 0:
        parser.error("--hard-negatives must be 0 or more")
    if not 0.0 < args.dev_fraction < 1.0:
        parser.error("--dev-fraction must be between 0 and 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    prepare()
    from mlops.finetune_embeddings.run import finetune  # deferred: loads torch

    try:
        summary = finetune(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{'dev nDCG@10 base':<26} {summary['base_dev_ndcg@10']:.4f}")
    print(f"{'dev nDCG@10 fine-tuned':<26} {summary['dev_ndcg@10']:.4f}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
