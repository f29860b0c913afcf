"""Loading BEIR-format folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops.evaluate_rag.beir import load_beir
from tests.support.datasets import datasets_dir


def write(root: Path, corpus: list[dict], queries: list[dict], qrels: str,
          split: str = "test") -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in corpus) + "\n\n")
    (root / "queries.jsonl").write_text("\n".join(json.dumps(r) for r in queries))
    (root / "qrels" / f"{split}.tsv").write_text(qrels)
    return root


def test_loads_corpus_queries_and_judgements(tmp_path: Path) -> None:
    root = write(
        tmp_path / "ds",
        [{"_id": "d1", "title": "T1", "text": "one"}, {"_id": 2, "text": "two"}],
        [{"_id": "q1", "text": "first?"}, {"_id": "q2", "text": "unjudged"},
         {"_id": "q3", "text": "third?"}],
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\t2\t2\nq3\td1\t0\nq1\tmissing\t1\nqx\td1\t1\n",
    )
    ds = load_beir(root, "test")
    assert ds.corpus["d1"].title == "T1" and ds.corpus["2"].text == "two"
    assert ds.corpus["2"].title == ""
    assert ds.queries == {"q1": "first?", "q3": "third?"}  # only judged queries
    assert ds.qrels == {"q1": {"d1": 1, "2": 2}, "q3": {"d1": 0}}
    assert ds.dropped_qrels == 2  # unknown doc, unknown query


def test_a_missing_split_names_the_available_ones(tmp_path: Path) -> None:
    root = write(tmp_path / "ds", [{"_id": "d"}], [{"_id": "q"}], "q\td\t1\n", split="dev")
    with pytest.raises(FileNotFoundError, match="dev"):
        load_beir(root, "test")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_beir(tmp_path / "nowhere")


def test_a_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    root = write(tmp_path / "ds", [{"_id": "d"}], [{"_id": "q"}], "q-id\tc-id\tscore\nq\td\n")
    with pytest.raises(ValueError, match=r"test.tsv:2"):
        load_beir(root)
    (root / "corpus.jsonl").write_text('{"_id": "d"}\n{not json\n')
    with pytest.raises(ValueError, match=r"corpus.jsonl:2"):
        load_beir(root)


def test_scifact_train_split_is_complete() -> None:
    root = datasets_dir() / "scifact"
    if not root.is_dir():
        pytest.skip(f"{root} not present")
    ds = load_beir(root, "train")
    assert len(ds.corpus) == 5183
    assert len(ds.queries) == 809
    assert sum(len(v) for v in ds.qrels.values()) == 919
    assert ds.dropped_qrels == 0
