"""Loading BEIR-format folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops.evaluate_rag.beir import CorpusDoc, load_beir

# tests/unit/mlops/test_beir.py -> parents[3] is the repository; shared/ lies beside it.
SCIFACT = Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "scifact"

HEADER = "query-id\tcorpus-id\tscore\n"


def write(root: Path, corpus: list[dict], queries: list[dict], qrels: str,
          split: str = "test") -> Path:
    """A BEIR folder at root; blank lines included to check they are skipped."""
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "\n".join(json.dumps(r) for r in corpus) + "\n\n", encoding="utf-8")
    (root / "queries.jsonl").write_text(
        "\n\n".join(json.dumps(r, ensure_ascii=False) for r in queries), encoding="utf-8")
    (root / "qrels" / f"{split}.tsv").write_text(qrels, encoding="utf-8")
    return root


def test_loads_corpus_queries_and_judgements(tmp_path: Path) -> None:
    root = write(
        tmp_path / "ds",
        [{"_id": "d1", "title": "T1", "text": "one"}, {"_id": 2, "text": "two"}],
        [{"_id": "q1", "text": "first?", "metadata": {}}, {"_id": "q2", "text": "unjudged"},
         {"_id": "q3", "text": "þriðja?"}],
        HEADER + "q1\td1\t1\nq1\t2\t2\n\nq3\td1\t0\nq1\tmissing\t1\nqx\td1\t1\n",
    )
    ds = load_beir(root, "test")
    assert ds.corpus == {"d1": CorpusDoc("d1", "T1", "one"), "2": CorpusDoc("2", "", "two")}
    assert ds.queries == {"q1": "first?", "q3": "þriðja?"}  # only judged queries
    assert ds.qrels == {"q1": {"d1": 1, "2": 2}, "q3": {"d1": 0}}
    assert ds.dropped_qrels == 2  # q1 -> unknown doc, unknown query qx


def test_the_header_is_optional_and_ids_stay_strings(tmp_path: Path) -> None:
    root = write(tmp_path / "ds", [{"_id": "007"}], [{"_id": "01", "text": "q"}],
                 "01\t007\t1\r\n", split="train")
    ds = load_beir(root, "train")
    assert ds.qrels == {"01": {"007": 1}}
    assert ds.dropped_qrels == 0


def test_a_missing_folder_or_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_beir(tmp_path / "nowhere")
    root = write(tmp_path / "ds", [{"_id": "d"}], [{"_id": "q"}], "q\td\t1\n")
    (root / "queries.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match="queries.jsonl"):
        load_beir(root)


def test_a_missing_split_names_the_available_ones(tmp_path: Path) -> None:
    root = write(tmp_path / "ds", [{"_id": "d"}], [{"_id": "q"}], "q\td\t1\n", split="dev")
    (root / "qrels" / "train.tsv").write_text(HEADER)
    expected = r"test\.tsv not found; splits available: dev, train"
    with pytest.raises(FileNotFoundError, match=expected):
        load_beir(root, "test")


def test_a_malformed_qrels_line_names_file_and_line(tmp_path: Path) -> None:
    root = write(tmp_path / "ds", [{"_id": "d"}], [{"_id": "q"}], HEADER + "q\td\n")
    with pytest.raises(ValueError, match=r"test\.tsv:2"):
        load_beir(root)
    (root / "qrels" / "test.tsv").write_text(HEADER + "q\td\t1\n\nq\td\thigh\n")
    with pytest.raises(ValueError, match=r"test\.tsv:4"):
        load_beir(root)


def test_a_malformed_jsonl_line_names_file_and_line(tmp_path: Path) -> None:
    root = write(tmp_path / "ds", [{"_id": "d"}], [{"_id": "q"}], HEADER + "q\td\t1\n")
    (root / "corpus.jsonl").write_text('{"_id": "d"}\n{not json\n')
    with pytest.raises(ValueError, match=r"corpus\.jsonl:2"):
        load_beir(root)
    (root / "corpus.jsonl").write_text('{"_id": "d"}\n')
    (root / "queries.jsonl").write_text('\n{"text": "no id"}\n')
    with pytest.raises(ValueError, match=r"queries\.jsonl:2"):
        load_beir(root)


def test_scifact_train_split_is_complete() -> None:
    if not SCIFACT.is_dir():
        pytest.skip(f"{SCIFACT} not present")
    ds = load_beir(SCIFACT, "train")
    assert len(ds.corpus) == 5183
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as lines:
        query_ids = {json.loads(line)["_id"] for line in lines if line.strip()}
    assert len(query_ids) == 809
    assert set(ds.queries) == set(ds.qrels) == query_ids  # every query has judgements
    assert sum(len(rels) for rels in ds.qrels.values()) == 919
    assert ds.dropped_qrels == 0
