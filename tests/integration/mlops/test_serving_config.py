"""Services take their settings from ragchat-rag@champion on a real MLflow server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from mlflow.tracking import MlflowClient
from ragchat.retrieval.v1 import retrieval_pb2, retrieval_pb2_grpc

from devstack.postgres import free_port
from mlops.evaluate_rag.tracking import CONFIG_VERSION_TAG, log_run
from mlops.registry.config import CHAMPION
from mlops.registry.store import register
from services.common.serving_config import resolve
from services.common.tenancy import DEFAULT_TENANT, TENANT_METADATA_KEY
from tests.support.mlflow_server import MlflowServer

URI = "models:/ragchat-rag@champion"


@contextmanager
def process(module: str, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-m", module],
                            env={**os.environ, "HF_HUB_OFFLINE": "1", **env},
                            stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def health_list(port: int, proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    name = health_pb2.HealthCheckResponse.ServingStatus.Name
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                resp = health_pb2_grpc.HealthStub(channel).List(
                    health_pb2.HealthListRequest(), timeout=2)
            statuses = {k: name(v.status) for k, v in resp.statuses.items()}
            if statuses.get("") == "SERVING":
                return statuses
        except grpc.RpcError:
            pass
        time.sleep(0.5)
    raise AssertionError("the service did not become SERVING")


def test_services_and_gateway_serve_the_champion_configuration(
    mlflow_server: MlflowServer, clean_db: str
) -> None:
    version = register({"max_top_k": 3}, {"dev_ndcg_at_10": 0.5}, CHAMPION,
                       uri=mlflow_server.uri).version
    label = f"ragchat-rag/{version}"
    env = {"RAGCHAT_CONFIG_URI": URI, "MLFLOW_TRACKING_URI": mlflow_server.uri}
    grpc_port, http_port = free_port(), free_port()
    with process("services.retrieval", {**env, "RAGCHAT_DATABASE_URL": clean_db,
                                        "RAGCHAT_LISTEN": f"127.0.0.1:{grpc_port}"}) as proc:
        statuses = health_list(grpc_port, proc, 180)
        assert statuses[f"config/{label}"] == "SERVING"
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = retrieval_pb2_grpc.RetrievalServiceStub(channel)
            with pytest.raises(grpc.RpcError) as refused:
                stub.Search(retrieval_pb2.SearchRequest(query="cod", top_k=5), timeout=10,
                            metadata=((TENANT_METADATA_KEY, DEFAULT_TENANT),))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "between 1 and 3" in str(refused.value.details())  # max_top_k took effect

        with process("services.gateway", {**env, "RAGCHAT_HTTP_PORT": str(http_port),
                                          "RAGCHAT_RETRIEVAL_TARGET": f"127.0.0.1:{grpc_port}"}):
            body = _get_health(http_port)
        assert body["config_versions"]["retrieval"] == label
        assert body["config_versions"]["gateway"] == label


def _get_health(port: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).json()
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_an_unreachable_registry_stops_start_up_with_a_clear_error() -> None:
    env = {"RAGCHAT_CONFIG_URI": URI, "RAGCHAT_HTTP_PORT": str(free_port()),
           "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"}
    with process("services.gateway", env) as proc:
        assert proc.wait(60) == 2
        error = proc.stderr.read().decode()  # type: ignore[union-attr]
    assert "MLflow server" in error and "unreachable" in error
    assert "Traceback" not in error


def test_evaluation_runs_are_tagged_with_the_config_version(
    mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = register({}, {"dev_ndcg_at_10": 0.5}, CHAMPION, uri=mlflow_server.uri).version
    monkeypatch.setenv("RAGCHAT_CONFIG_URI", URI)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    resolve.cache_clear()
    run_id = log_run("tagged", "eval", {}, {"ndcg@10": 0.5}, uri=mlflow_server.uri)
    tags = MlflowClient(mlflow_server.uri).get_run(run_id).data.tags
    assert tags[CONFIG_VERSION_TAG] == f"ragchat-rag/{version}"
