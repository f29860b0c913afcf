"""python -m mlops.answer_checks: precision@1 per ranking, follow-up hit-rate, the dense
score as a refusal signal (whole set, no LLM), then on a seeded subset through the
configured LLM: EM/F1, first-citation accuracy and refusal per answer-support threshold.

Progress goes to stderr; the last line of stdout is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from mlops.cli import prepare

THRESHOLDS = (0.0, 0.25, 0.5, 0.75, 1.0)
COSINE_THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mlops.answer_checks", description=__doc__)
    parser.add_argument("--dataset", default="../shared/datasets/squad2-normans",
                        help="BEIR folder with answers.jsonl (default: %(default)s)")
    parser.add_argument("--answerable", type=int, default=40,
                        help="answerable questions to generate for (0: skip generation)")
    parser.add_argument("--unanswerable", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--top-k", type=int, default=5, help="chunks given to the model")
    parser.add_argument("--rerank-depth", type=int, default=20)
    parser.add_argument("--reranker", choices=("none", "embedding", "blend"), default="blend",
                        help="ranking used for the context of generated answers")
    parser.add_argument("--work-dir", default="")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    prepare()
    from mlops.answer_checks.run import run  # deferred: loads torch and models

    try:
        results = run(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
