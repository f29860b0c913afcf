"""python -m mlops.tune on the BEIR fixture: trials run, log to MLflow, and resume."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from mlops.tune.__main__ import main
from tests.support.mlflow_server import MlflowServer


def test_two_trials_then_a_restart_continues_the_same_study(
    dataset: Path, tmp_path: Path, mlflow_server: MlflowServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    args = ["--dataset", str(dataset), "--storage", storage, "--study-name", "s",
            "--work-dir", str(tmp_path / "work"), "--cache-dir", str(tmp_path / "cache"),
            "--mlflow-uri", mlflow_server.uri, "--experiment", "tune-test",
            "--chunk-tokens", "48,200", "--no-progress"]
    assert main([*args, "--trials", "2"]) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["trials"] == 2 and first["queries"] == 2  # the dev side of 8 queries
    assert 0.0 <= first["baseline"] <= first["best"] <= 1.0

    assert main([*args, "--trials", "1"]) == 0  # a new process would do the same
    out = capsys.readouterr().out
    second = json.loads(out.strip().splitlines()[-1])
    assert second["trials"] == 3 and "today (trial 0)" in out
    assert second["mlflow_parent_run"] == first["mlflow_parent_run"]
    study = optuna.load_study(study_name="s", storage=storage)
    assert [t.number for t in study.trials] == [0, 1, 2]
    assert study.trials[0].user_attrs["baseline"] is True

    client = MlflowClient(mlflow_server.uri)
    parent = client.get_run(first["mlflow_parent_run"])
    experiment = parent.info.experiment_id
    children = client.search_runs(
        [experiment], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(r.data.tags["optuna.trial"] for r in children) == ["0", "1", "2"]
    assert "best_dev_ndcg_at_10" in client.get_run(parent.info.run_id).data.metrics
    assert "best_settings.json" in {a.path for a in client.list_artifacts(parent.info.run_id)}


def test_usage_errors_exit_2(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--dataset", str(dataset), "--trials", "0"])
    assert exc.value.code == 2
    missing = tmp_path / "nowhere"
    assert main(["--dataset", str(missing), "--trials", "1", "--no-progress"]) == 2
