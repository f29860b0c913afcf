"""Load BEIR-format folders: corpus.jsonl, queries.jsonl and qrels/<split>.tsv.

Files are read as UTF-8 (a leading byte-order mark is tolerated); empty lines are skipped.
A missing folder or file raises FileNotFoundError naming the path (and, for a missing
split, the splits that exist); a malformed line raises ValueError naming file and line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.evaluate_rag.metrics import Qrels

_ENCODING = "utf-8-sig"  # UTF-8, minus a byte-order mark if the file starts with one


@dataclass(frozen=True)
class CorpusDoc:
    """One corpus document; a missing title or text is ""."""

    doc_id: str
    title: str
    text: str


@dataclass(frozen=True)
class BeirDataset:
    """A loaded split: the corpus, the judged queries and their judgements."""

    corpus: dict[str, CorpusDoc]
    queries: dict[str, str]  # query id -> text, only queries with judgements in the split
    qrels: Qrels
    dropped_qrels: int = 0  # judgements naming a query or document that does not exist


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a .jsonl file, each with a string "_id"."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    with path.open(encoding=_ENCODING) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict) or "_id" not in row:
                    raise ValueError('expected a JSON object with an "_id"')
            except ValueError as exc:
                raise ValueError(f"{path.name}:{number}: malformed line ({exc})") from exc
            row["_id"] = str(row["_id"])
            yield row


def _missing_split(path: Path) -> FileNotFoundError:
    folder = path.parent
    splits = sorted(p.stem for p in folder.glob("*.tsv")) if folder.is_dir() else []
    return FileNotFoundError(f"{path} not found; splits available: {', '.join(splits) or 'none'}")


def _is_header(fields: list[str]) -> bool:
    """Three columns, the last not an integer: "query-id, corpus-id, score" or the like."""
    if len(fields) != 3:
        return False
    try:
        int(fields[2])
    except ValueError:
        return True
    return False


def _qrels(path: Path) -> Iterator[tuple[str, str, int]]:
    """(query id, doc id, grade) of each row of a qrels .tsv file."""
    if not path.is_file():
        raise _missing_split(path)
    first = True
    with path.open(encoding=_ENCODING) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            fields = [field.strip() for field in line.strip().split("\t")]
            if first:  # only the first non-empty line may be the header
                first = False
                if _is_header(fields):
                    continue
            try:
                qid, doc_id, score = fields
                if not qid or not doc_id:
                    raise ValueError("empty id")
                grade = int(score)
            except ValueError as exc:
                raise ValueError(
                    f"{path.name}:{number}: expected query-id<TAB>corpus-id<TAB>integer score, "
                    f"got {line.strip()!r}") from exc
            yield qid, doc_id, grade


def load_beir(path: str | Path, split: str = "test") -> BeirDataset:
    """The dataset in folder `path` with the judgements of qrels/<split>.tsv.

    Judgements naming a query missing from queries.jsonl or a document missing from the
    corpus are dropped and counted in `dropped_qrels`.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} not found")
    corpus = {
        row["_id"]: CorpusDoc(row["_id"], str(row.get("title") or ""), str(row.get("text") or ""))
        for row in _jsonl(root / "corpus.jsonl")
    }
    all_queries = {row["_id"]: str(row.get("text") or "") for row in _jsonl(root / "queries.jsonl")}
    qrels: Qrels = {}
    dropped = 0
    for qid, doc_id, grade in _qrels(root / "qrels" / f"{split}.tsv"):
        if qid not in all_queries or doc_id not in corpus:
            dropped += 1
            continue
        qrels.setdefault(qid, {})[doc_id] = grade
    queries = {qid: text for qid, text in all_queries.items() if qid in qrels}
    return BeirDataset(corpus, queries, qrels, dropped)
