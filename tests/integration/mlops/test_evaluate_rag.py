"""python -m mlops.evaluate_rag end to end: real PostgreSQL, real model, real MLflow server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from tests.support.fake_openai import ChatRequest, FakeOpenAI
from tests.support.mlflow_server import MlflowServer

DATASET = Path(__file__).resolve().parents[2] / "fixtures" / "beir-mini"
REPO = Path(__file__).resolve().parents[3]
METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


@pytest.fixture(scope="module")
def workspace(make_database: Callable[[str], str],
              tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("eval")
    return {"db": make_database("eval_cli"), "work": str(root / "work"),
            "cache": str(root / "cache"), "cwd": str(root)}


def evaluate(workspace: dict[str, str], *args: str, env: dict[str, str] | None = None,
             check: bool = True) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    environ = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": f"{REPO}:{REPO / 'gen'}"}
    environ.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(
        [sys.executable, "-m", "mlops.evaluate_rag", "--dataset", str(DATASET),
         "--database-url", workspace["db"], "--work-dir", workspace["work"],
         "--cache-dir", workspace["cache"], *args],
        cwd=workspace["cwd"], env={**environ, **(env or {})}, capture_output=True, text=True,
        timeout=300,
    )
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    return (json.loads(lines[-1]) if check else {}), proc


def test_every_mode_reports_metrics_and_logs_them_to_mlflow(
    workspace: dict[str, str], mlflow_server: MlflowServer
) -> None:
    results = {}
    for mode in ("hybrid", "dense", "keyword"):
        summary, proc = evaluate(workspace, "--mode", mode, "--mlflow-uri", mlflow_server.uri)
        assert summary["mode"] == mode and summary["queries"] == 8
        assert all(0.0 <= summary[m] <= 1.0 for m in METRICS)
        assert "querying" in proc.stderr  # the progress bar
        assert "nDCG@10" in proc.stdout
        results[mode] = summary
    first, later = results["hybrid"], results["keyword"]
    assert first["documents"] == 12 and first["chunks"] > 12  # the long document is split
    assert first["embedded"] == first["chunks"] and first["indexed"] == 12
    assert later["embedded"] == 0 and later["indexed"] == 0  # cached, unchanged
    # An easy set: every mode finds most answers; hybrid is at least as good as dense.
    assert all(r["recall@10"] >= 0.75 for r in results.values())
    assert results["hybrid"]["ndcg@10"] >= 0.8

    client = MlflowClient(mlflow_server.uri)
    experiment = client.get_experiment_by_name("ragchat-eval-retrieval")
    assert experiment is not None
    runs = {r.info.run_id: r for r in client.search_runs([experiment.experiment_id])}
    for mode, summary in results.items():
        run = runs[summary["mlflow_run_id"]]
        assert run.data.params["mode"] == mode and run.data.params["split"] == "test"
        assert run.data.metrics["ndcg_at_10"] == pytest.approx(summary["ndcg@10"])
        assert run.data.metrics["recall_at_100"] == pytest.approx(summary["recall@100"])


def test_without_a_tracking_uri_runs_land_in_a_local_mlruns_folder(
    workspace: dict[str, str]
) -> None:
    summary, _ = evaluate(workspace, "--mode", "keyword", "--limit", "3", "--no-progress")
    assert summary["queries"] == 3
    database = Path(workspace["cwd"]) / "mlruns" / "mlflow.db"
    assert database.is_file()
    client = MlflowClient(f"sqlite:///{database}")
    run = client.get_run(summary["mlflow_run_id"])
    assert run.data.metrics["mrr_at_10"] == pytest.approx(summary["mrr@10"])


def test_answer_evaluation_scores_answers_and_refusals(
    workspace: dict[str, str], mlflow_server: MlflowServer
) -> None:
    replies = {
        "In what city is the Eiffel Tower?": "Paris [1]",
        "Which hormone made by the pancreas controls blood sugar?":
            "Insulin, made by the pancreas [1].",
        "Who won the Battle of Hastings?": "I don't know.",
        "In what year did the Eiffel Tower become a lighthouse?": "In 1925 [1].",
    }

    def reply(request: ChatRequest) -> str:
        asked = json.dumps(request.messages)
        return next((a for q, a in replies.items() if q in asked), "unexpected question")

    with FakeOpenAI(api_key="eval-key", reply=reply) as fake:
        summary, _ = evaluate(
            workspace, "--task", "answers", "--mode", "hybrid",
            "--mlflow-uri", mlflow_server.uri,
            env={"RAGCHAT_LLM_PROVIDER": "openai", "RAGCHAT_OPENAI_BASE_URL": fake.base_url,
                 "RAGCHAT_OPENAI_API_KEY": "eval-key"},
        )
        asked = [json.dumps(r.messages) for r in fake.requests]
    assert summary["queries"] == 5 and summary["mode"] == "hybrid"
    assert (summary["answerable"], summary["unanswerable"]) == (3, 2)
    # EM: Paris 1, "insulin made by pancreas" 0, refusal 0.
    assert summary["exact_match"] == pytest.approx(1 / 3, abs=1e-3)
    # F1: 1 + (1 common of 4 predicted, 1 gold: 2*(1/4)/(5/4) = 0.4) + 0, over 3.
    assert summary["f1"] == pytest.approx(1.4 / 3, abs=1e-3)
    assert summary["false_refusal_rate"] == pytest.approx(1 / 3, abs=1e-3)
    # The passport question finds no passage above the threshold: refused, model not asked;
    # "In 1925" is in no passage (RAGCHAT_MIN_ANSWER_SUPPORT 0.5): refused too.
    assert summary["refusal_rate"] == pytest.approx(1.0)
    assert not any("passport" in a for a in asked) and len(asked) == 4
    assert summary["context_recall"] == pytest.approx(1.0)


def test_a_missing_dataset_is_a_clear_error(workspace: dict[str, str]) -> None:
    _, proc = evaluate(workspace, "--dataset", str(DATASET / "nope"), check=False)
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "not found" in proc.stderr
    assert "Traceback" not in proc.stderr
