"""python -m mlops.tune: tune the retrieval configuration with Optuna on the dev split.

Fits nothing on the test split: the objective is nDCG@10 on the *dev* side of the
fixed fit/dev split of qrels/train.tsv (mlops.splits). Interrupted studies resume from
--storage. Results go to stdout, the last line one JSON object; progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from mlops.cli import prepare


def _ints(text: str) -> list[int]:
    try:
        values = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") \
            from exc
    if not values:
        raise argparse.ArgumentTypeError("expected at least one value")
    return values


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mlops.tune", description=__doc__)
    parser.add_argument("--dataset", required=True, help="BEIR folder with qrels/train.tsv")
    parser.add_argument("--trials", type=int, required=True, help="trials to run now")
    parser.add_argument("--split", choices=("dev", "fit", "train"), default="dev",
                        help="queries scored (default dev; the test split is never used)")
    parser.add_argument("--sample", type=int, default=None,
                        help="score a fixed sample of N queries of the split (speed)")
    parser.add_argument("--storage", default="", help="Optuna storage (default: "
                        "sqlite:///<work-dir>/optuna.db); a study there resumes")
    parser.add_argument("--study-name", default="", help="default: tune-<dataset name>")
    parser.add_argument("--seed", type=int, default=13, help="TPE sampler seed")
    parser.add_argument("--chunk-tokens", type=_ints, default=None,
                        help="chunk sizes to try, e.g. 128,200,256 (default: today's only)")
    parser.add_argument("--chunk-overlaps", type=_ints, default=None,
                        help="overlaps to try, e.g. 0,32,64 (default: today's only)")
    parser.add_argument("--work-dir", default="", help="default: data/tune/<dataset name>")
    parser.add_argument("--cache-dir", default="data/eval/cache", help="embedding cache")
    parser.add_argument("--mlflow-uri", default="", help="default: MLFLOW_TRACKING_URI")
    parser.add_argument("--experiment", default="ragchat-tune")
    parser.add_argument("--register", action="store_true",
                        help="register the best configuration as ragchat-rag@challenger")
    parser.add_argument("--embedder-version", default=None,
                        help="the ragchat-embedder version the registered config needs")
    parser.add_argument("--also-score", choices=("fit", "dev", "train"), default=None,
                        help="score today's and the best configuration on this split too "
                        "(e.g. fit, so overfitting to dev shows)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    if args.sample is not None and args.sample < 1:
        parser.error("--sample must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    prepare()
    try:
        from mlops.tune.run import tune  # deferred: loads torch, the models and Optuna

        result = tune(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{'configuration':<16} {args.split + ' nDCG@10':>14}")
    print(f"{'today (trial 0)':<16} {result['baseline']:>14.4f}")
    print(f"{'best':<16} {result['best']:>14.4f}   trial {result['best_trial']}")
    if "also" in result:
        also = result["also"]
        print(f"{also['split']} nDCG@10: today {also['baseline']:.4f}, best {also['best']:.4f}"
              f" ({also['queries']} queries)")
    print(json.dumps(result))
    return 0


def default_work_dir(dataset: str) -> Path:
    return Path("data/tune") / Path(dataset).resolve().name


if __name__ == "__main__":
    sys.exit(main())
