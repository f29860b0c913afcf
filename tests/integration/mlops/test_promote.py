"""python -m mlops.promote against a real MLflow server: first promotion, a better
challenger promoted, a worse one refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from mlops.promote import main
from mlops.registry.config import CHALLENGER, CHAMPION, MODEL_NAME
from mlops.registry.store import register
from tests.support.mlflow_server import MlflowServer

# Dense search with a cosine floor nothing reaches: every query finds nothing.
BLIND = {"search_mode": "dense", "default_min_score": 0.99}



def test_promotion_accepts_the_first_and_a_better_challenger_and_refuses_a_worse_one(
    dataset: Path, tmp_path: Path, mlflow_server: MlflowServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = MlflowClient(mlflow_server.uri)
    uri = mlflow_server.uri
    for alias in (CHAMPION, CHALLENGER):  # other tests of the session may have set them
        try:
            client.delete_registered_model_alias(MODEL_NAME, alias)
        except Exception:  # noqa: BLE001 - no model or alias yet
            pass
    args = ["--dataset", str(dataset), "--mlflow-uri", uri, "--work-dir", str(tmp_path / "w"),
            "--cache-dir", str(tmp_path / "cache"), "--no-progress"]

    blind = register(BLIND, {"dev_ndcg_at_10": 0.0}, CHALLENGER, uri=uri)
    assert main(args) == 0  # no champion yet: accepted as is
    assert "first champion" in capsys.readouterr().out
    assert client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version == blind.version

    good = register({}, {"dev_ndcg_at_10": 1.0}, CHALLENGER, uri=uri)
    assert main([*args, "--answers-dataset", str(dataset), "--answers-sample", "1"]) == 0
    out = capsys.readouterr().out
    assert f"promoted: {MODEL_NAME}/{good.version} is champion" in out
    assert "answer token F1" in out and "dev nDCG@10" in out
    assert client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version == good.version

    worse = register(BLIND, {"dev_ndcg_at_10": 0.0}, CHALLENGER, uri=uri)
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "refused: nDCG@10 lift -1.0000" in out
    assert client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version == good.version
    assert worse.version != good.version
