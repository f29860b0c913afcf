"""Wires the checks: index the dataset, rank it every way, then generate on a subset."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from mlops.answer_checks import generation_checks as gen
from mlops.answer_checks import retrieval_checks as ret
from mlops.evaluate_rag.__main__ import parse_args as eval_args
from mlops.evaluate_rag.answers_eval import load_answers
from mlops.evaluate_rag.context import prepared
from services.common.types import ScoredChunk
from services.retrieval.rerank import BlendReranker, EmbeddingReranker, Reranker
from services.retrieval.search import Retriever

Search = Callable[[str], Sequence[ScoredChunk]]


def searcher(retriever: Retriever, mode: str, depth: int,
             reranker: Reranker | None = None) -> Search:
    """Top `depth` of a mode, optionally re-ranked."""
    def search(query: str) -> Sequence[ScoredChunk]:
        chunks = retriever.search(query, top_k=depth, mode=mode).chunks
        return reranker.rerank(query, chunks) if reranker else chunks
    return search


def run(args: argparse.Namespace) -> dict[str, object]:
    """Every figure of the README's "Answers you can check" section."""
    gold = load_answers(args.dataset)
    argv = ["--dataset", args.dataset, "--mode", "hybrid", "--reranker", "none"]
    argv += ["--work-dir", args.work_dir] if args.work_dir else []
    argv += ["--no-progress"] if args.no_progress else []
    with prepared(eval_args(argv), args.rerank_depth, thresholds=True) as ctx:
        embeddings = ctx.retriever._embeddings  # noqa: SLF001 - the index's own model
        rankers: dict[str, Search] = {
            mode: searcher(ctx.retriever, mode, args.rerank_depth)
            for mode in ("dense", "keyword", "hybrid")}
        rankers["hybrid+embedding"] = searcher(ctx.retriever, "hybrid", args.rerank_depth,
                                               EmbeddingReranker(embeddings))
        rankers["hybrid+blend(passages)"] = searcher(
            ctx.retriever, "hybrid", args.rerank_depth, BlendReranker(embeddings, sentences=False))
        rankers["hybrid+blend"] = searcher(ctx.retriever, "hybrid", args.rerank_depth,
                                           BlendReranker(embeddings))
        p1 = {name: ret.precision_by_half(s, gold) for name, s in rankers.items()}
        _say(f"precision@1: {p1}")
        chosen = {"none": "hybrid", "embedding": "hybrid+embedding",
                  "blend": "hybrid+blend"}[args.reranker]
        pairs = ret.follow_ups(gold)
        queries = ret.follow_up_queries(pairs)
        follow = {name: {f"hit@{k}": round(ret.hit_rate(rankers[chosen], q, k), 4)
                         for k in (1, 5)} for name, q in queries.items()}
        follow["pairs"] = len(pairs)  # type: ignore[assignment]
        _say(f"follow-ups: {follow}")
        cosine = ret.dense_top_scores(ctx.retriever, gold)
        curve = ret.threshold_curve(cosine, [g.is_impossible for g in gold], _cosines())
        results: dict[str, object] = {"precision@1": p1, "follow_ups": follow,
                                      "dense_score_refusal": curve, "context_ranking": chosen}
        if args.answerable or args.unanswerable:
            results.update(_generation(args, gold, rankers[chosen]))
    return results


def _generation(args: argparse.Namespace, gold: list, search: Search) -> dict[str, object]:
    from services.generation.answering import Answerer
    from services.generation.config import GenerationSettings
    from services.generation.providers.factory import provider_from_settings

    settings = GenerationSettings()
    answerer = Answerer(provider_from_settings(settings), max_context_chunks=args.top_k)
    items = gen.subset(gold, args.answerable, args.unanswerable, args.seed)
    rows, seconds = gen.generate(answerer, lambda q: list(search(q))[: args.top_k], items,
                                 settings.max_tokens, not args.no_progress)
    points = [gen.summary_at(rows, t, empty) for empty in (False, True) for t in _thresholds()]
    for point in points:
        _say(f"generation: {point}")
    return {"generation": points, "generation_seconds": round(seconds, 1),
            "generated": len(rows), "model": answerer._provider.model_name,  # noqa: SLF001
            "answers": [{"q": r.item.question, "prediction": r.prediction, "text": r.text,
                         "gold": list(r.item.answers), "impossible": r.item.is_impossible,
                         "coverage": round(r.best_coverage, 3), "refused": r.model_refused,
                         "first_citation_gold": r.first_citation == r.item.gold_passage}
                        for r in rows]}


def _thresholds() -> tuple[float, ...]:
    from mlops.answer_checks.__main__ import THRESHOLDS
    return THRESHOLDS


def _cosines() -> tuple[float, ...]:
    from mlops.answer_checks.__main__ import COSINE_THRESHOLDS
    return COSINE_THRESHOLDS


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
