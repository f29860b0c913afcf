"""Load BEIR-format folders: corpus.jsonl, queries.jsonl and qrels/<split>.tsv."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.evaluate_rag.metrics import Qrels


@dataclass(frozen=True)
class CorpusDoc:
    doc_id: str
    title: str
    text: str


@dataclass(frozen=True)
class BeirDataset:
    corpus: dict[str, CorpusDoc]
    queries: dict[str, str]  # only queries that have judgements in the split
    qrels: Qrels
    dropped_qrels: int = 0  # judgements naming an unknown query or document


def _jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    rows = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                row["_id"] = str(row["_id"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path.name}:{number}: malformed line ({exc})") from exc
            rows.append((number, row))
    return rows


def _qrels(path: Path) -> list[tuple[str, str, int]]:
    if not path.is_file():
        folder = path.parent
        splits = sorted(p.stem for p in folder.glob("*.tsv")) if folder.is_dir() else []
        raise FileNotFoundError(
            f"{path} not found; splits available: {', '.join(splits) or 'none'}")
    rows = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            fields = line.rstrip("\n").split("\t")
            if not line.strip() or (number == 1 and not fields[-1].strip().lstrip("-").isdigit()):
                continue  # blank, or the header line
            try:
                qid, doc_id, grade = fields[0], fields[1], int(fields[2])
            except (IndexError, ValueError) as exc:
                raise ValueError(f"{path.name}:{number}: expected query-id, corpus-id, "
                                 f"score separated by tabs") from exc
            rows.append((qid.strip(), doc_id.strip(), grade))
    return rows


def load_beir(path: str | Path, split: str = "test") -> BeirDataset:
    """The dataset at `path`; FileNotFoundError or ValueError say what is wrong."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} not found")
    corpus = {
        row["_id"]: CorpusDoc(row["_id"], str(row.get("title") or ""), str(row.get("text") or ""))
        for _, row in _jsonl(root / "corpus.jsonl")
    }
    all_queries = {
        row["_id"]: str(row.get("text") or "") for _, row in _jsonl(root / "queries.jsonl")
    }
    qrels: Qrels = {}
    dropped = 0
    for qid, doc_id, grade in _qrels(root / "qrels" / f"{split}.tsv"):
        if qid not in all_queries or doc_id not in corpus:
            dropped += 1
            continue
        qrels.setdefault(qid, {})[doc_id] = grade
    queries = {qid: text for qid, text in all_queries.items() if qid in qrels}
    return BeirDataset(corpus, queries, qrels, dropped)
