"""Answer evaluation: retrieve, generate, and score answers SQuAD-style."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from tqdm import tqdm

from mlops.evaluate_rag.answer_metrics import AnswerRecord, summarize
from mlops.evaluate_rag.context import EvalContext
from mlops.evaluate_rag.retrieval_eval import index_summary
from services.generation.answering import Answerer
from services.generation.citations import strip_markers


@dataclass(frozen=True)
class GoldAnswer:
    question_id: str
    question: str
    answers: tuple[str, ...]
    is_impossible: bool
    gold_passage: str


def load_answers(dataset_dir: str | Path) -> list[GoldAnswer]:
    """answers.jsonl of the dataset folder; raises FileNotFoundError if it has none."""
    path = Path(dataset_dir) / "answers.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: answer evaluation needs gold answers")
    gold = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                gold.append(GoldAnswer(str(row["_id"]), row["question"],
                                       tuple(row.get("answers") or ()),
                                       bool(row.get("is_impossible")),
                                       str(row.get("gold_passage") or "")))
            except (ValueError, KeyError) as exc:
                raise ValueError(f"{path}:{number}: malformed answer record ({exc})") from exc
    return gold


def evaluate_answers(
    ctx: EvalContext, answerer: Answerer, gold: list[GoldAnswer], top_k: int,
    max_tokens: int, limit: int | None, progress: bool,
) -> tuple[dict[str, float | int | str], list[dict[str, object]]]:
    """The summary (EM, F1, refusal rates, context recall) and one row per question."""
    items = list(islice(gold, limit)) if limit else gold
    records, rows, context_hits, model = [], [], 0, ""
    started = time.perf_counter()
    mode = str(ctx.params["mode"])
    for item in tqdm(items, desc=f"answering ({mode})", unit="question", disable=not progress):
        chunks = ctx.retriever.search(item.question, top_k=top_k, mode=mode).chunks
        answer = answerer.answer(item.question, chunks, (), max_tokens)
        prediction, model = strip_markers(answer.text), answer.model or model
        found = item.gold_passage in {c.document_id for c in chunks}
        context_hits += int(found and not item.is_impossible)
        records.append(AnswerRecord(item.question_id, prediction, item.answers,
                                    item.is_impossible, answer.refused))
        rows.append({"id": item.question_id, "question": item.question,
                     "prediction": prediction, "refused": answer.refused,
                     "gold": list(item.answers), "is_impossible": item.is_impossible,
                     "gold_passage_retrieved": found})
    summary = summarize(records)
    answerable = int(summary["answerable"])
    return {
        "mode": mode,
        "queries": len(items),
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()},
        "context_recall": round(context_hits / answerable, 4) if answerable else 0.0,
        "model": model,
        "seconds": round(time.perf_counter() - started, 2),
        **index_summary(ctx),
    }, rows
