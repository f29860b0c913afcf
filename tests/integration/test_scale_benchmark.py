"""benchmarks/scale.py on a tiny corpus, so it never rots (figures are not asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATASET = REPO / "tests" / "fixtures" / "beir-mini"


def test_the_scale_benchmark_runs_and_reports_json(
    tmp_path: Path, make_database: Callable[[str], str]
) -> None:
    dsn = make_database("scale_benchmark")
    report = _run(tmp_path, dsn, "--sizes", "1200,1500", "--efs", "10,100")
    assert [r["chunks"] for r in report["results"]] == [1200, 1500]
    for result in report["results"]:
        assert set(result["recall_at_10"]) == {"10", "100"}
        assert result["recall_at_10"]["100"] >= 0.9
        assert set(result["latency_ms"]) == {"dense", "keyword", "hybrid"}
        assert all(v["p50"] > 0 for v in result["latency_ms"].values())
        assert result["disk"]["postings_mib"] > 0 and result["hnsw_build_s"] >= 0
        assert set(result["dense_ms_by_ef_search"]) == {"10", "100"}


def test_the_dense_only_scale_run_copies_vectors_and_builds_the_chosen_graph(
    tmp_path: Path, make_database: Callable[[str], str]
) -> None:
    dsn = make_database("scale_dense_only")
    report = _run(tmp_path, dsn, "--sizes", "3000", "--dense-only", "--m", "8",
                  "--ef-construction", "32", "--efs", "10,200")
    assert report["hnsw"] == {"m": 8, "ef_construction": 32} and report["dense_only"]
    (result,) = report["results"]
    assert result["chunks"] == 3000 and set(result["latency_ms"]) == {"dense"}
    assert result["recall_at_10"]["200"] >= 0.9
    assert result["recall_at_10"]["10"] <= result["recall_at_10"]["200"]
    assert result["disk"]["postings_mib"] < 0.1 < result["disk"]["hnsw_mib"]  # no text


def test_a_reuse_run_measures_the_index_it_finds_instead_of_rebuilding(
    tmp_path: Path, make_database: Callable[[str], str]
) -> None:
    dsn = make_database("scale_reuse")
    options = ("--sizes", "2000", "--dense-only", "--ef-construction", "32", "--efs", "10,100",
               "--reuse")
    (built,) = _run(tmp_path, dsn, *options, "--m", "8")["results"]
    (again,) = _run(tmp_path, dsn, *options, "--m", "8")["results"]
    assert built["load_s"] is not None and again["load_s"] is None
    assert again["hnsw_build_s"] is None
    assert again["recall_at_10"] == built["recall_at_10"]  # the same vectors and queries
    (other,) = _run(tmp_path, dsn, *options, "--m", "12")["results"]  # another graph
    assert other["load_s"] is not None


def test_with_model_times_dense_search_with_the_query_model(
    tmp_path: Path, make_database: Callable[[str], str]
) -> None:
    dsn = make_database("scale_with_model")
    (result,) = _run(tmp_path, dsn, "--dim", "384", "--sizes", "1000", "--dense-only",
                     "--efs", "100", "--with-model")["results"]
    timed = result["latency_ms"]["dense_with_model"]
    assert 0 < timed["p50"] <= timed["p99"]


def _run(tmp_path: Path, dsn: str, *options: str) -> dict:
    environ = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": f"{REPO}:{REPO / 'gen'}"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "scale.py"), "--dim", "16",
         "--queries", "12", "--dataset", str(DATASET), "--database-url", dsn, *options],
        cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))
