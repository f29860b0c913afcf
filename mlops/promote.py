"""python -m mlops.promote: move ragchat-rag@challenger to @champion, only if it wins.

Both configurations are re-scored here, on the same dev queries and the same indexes:
the challenger must beat the champion's dev nDCG@10 by more than max(--margin, 1.645 x
the standard error of the per-query difference) (see mlops.registry.compare), and, with
--answers-dataset, must not lose more than --answers-tolerance token F1 on its answers.
With no champion yet, the challenger is promoted as is. Prints the comparison; exits 0
when promoted (or nothing to do), 1 when refused, 2 on a usage or data error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mlops.cli import prepare


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mlops.promote", description=__doc__)
    parser.add_argument("--dataset", required=True, help="BEIR folder with qrels/train.tsv")
    parser.add_argument("--split", choices=("dev", "fit", "train"), default="dev")
    parser.add_argument("--sample", type=int, default=None, help="score N queries only")
    parser.add_argument("--margin", type=float, default=0.005,
                        help="smallest nDCG@10 lift worth a promotion (default 0.005)")
    parser.add_argument("--answers-dataset", default="",
                        help="folder with answers.jsonl (the Normans set); omitted: no check")
    parser.add_argument("--answers-sample", type=int, default=None,
                        help="answer the first N questions only (speed)")
    parser.add_argument("--answers-tolerance", type=float, default=0.01,
                        help="largest token-F1 loss allowed (default 0.01)")
    parser.add_argument("--work-dir", default="", help="default: data/tune/<dataset name>")
    parser.add_argument("--cache-dir", default="data/eval/cache", help="embedding cache")
    parser.add_argument("--mlflow-uri", default="", help="default: MLFLOW_TRACKING_URI")
    parser.add_argument("--no-embedder-check", action="store_true",
                        help="promote even if the serving index was not built with the "
                             "ragchat-embedder version the challenger requires")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.margin < 0 or args.answers_tolerance < 0:
        parser.error("--margin and --answers-tolerance must not be negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    prepare()
    from mlops.registry.config import CHALLENGER, CHAMPION
    from mlops.registry.store import load, set_alias

    challenger = load(CHALLENGER, args.mlflow_uri)
    if challenger is None:
        print("error: no ragchat-rag@challenger to promote", file=sys.stderr)
        return 2
    refusal = "" if args.no_embedder_check else _embedder_refusal(challenger.requires)
    if refusal:
        print(f"refused: {refusal}")
        return 1
    champion = load(CHAMPION, args.mlflow_uri)
    if champion is None or champion.version == challenger.version:
        if champion is None:
            set_alias(CHAMPION, challenger.version, args.mlflow_uri)
        print(f"promoted: ragchat-rag/{challenger.version} is champion"
              + (" (first champion)" if champion is None else " already"))
        return 0
    try:
        from mlops.registry.compare import compare

        verdict, table, figures = compare(args, champion.settings, challenger.settings)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{'':<34}{'champion v' + champion.version:>16}{'challenger v' + challenger.version:>18}")
    for row in table:
        print(row)
    from mlops.evaluate_rag.tracking import log_run

    log_run("ragchat-promote", f"v{challenger.version} vs v{champion.version}",
            {"champion": champion.version, "challenger": challenger.version,
             "promoted": not verdict, "verdict": verdict or "promoted", "split": args.split,
             "margin": args.margin}, figures, uri=args.mlflow_uri)
    if verdict:
        print(f"refused: {verdict}")
        return 1
    set_alias(CHAMPION, challenger.version, args.mlflow_uri)
    print(f"promoted: ragchat-rag/{challenger.version} is champion "
          f"(was {champion.version})")
    return 0


def _embedder_refusal(requires: dict[str, object]) -> str:
    """A configuration needing another embedder waits for its reindex (mlops.reindex)."""
    from mlops.reindex.requirement import embedder_refusal
    from services.common.settings import DatabaseSettings

    return embedder_refusal(requires, DatabaseSettings().database_dsn())


def default_work_dir(dataset: str) -> Path:
    return Path("data/tune") / Path(dataset).resolve().name


if __name__ == "__main__":
    sys.exit(main())
