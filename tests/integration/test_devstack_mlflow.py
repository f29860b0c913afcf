"""The MLflow tracking server `make run` starts: job execution off, data under its root."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from devstack.mlflow import MlflowChild


def test_the_devstack_mlflow_server_keeps_its_data_under_its_root(tmp_path: Path) -> None:
    child = MlflowChild(tmp_path / "mlflow")
    child.start()
    try:
        child.wait_ready()
        client = MlflowClient(child.uri)
        experiment = client.create_experiment("kept")
        run = client.create_run(experiment)
        client.log_text(run.info.run_id, "hello", "note.txt")  # proxied artifact upload
        assert child.exit_status() is None
    finally:
        assert child.stop() is not None
    assert (tmp_path / "mlflow" / "mlflow.db").stat().st_size > 0
    assert list((tmp_path / "mlflow" / "artifacts").rglob("note.txt"))
    log = (tmp_path / "mlflow" / "server.log").read_text()
    assert "Job executor backend" not in log  # job execution is disabled
