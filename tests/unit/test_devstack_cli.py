"""`python -m devstack` ports: a second local instance is one command line away."""

from __future__ import annotations

import pytest

from devstack.__main__ import build_config
from devstack.launcher import DEFAULT_PORTS


def test_defaults_are_the_services_own_ports() -> None:
    config = build_config([], environ={})
    assert config.grpc_ports == DEFAULT_PORTS
    assert config.http_port == 8000


def test_port_base_moves_every_grpc_port_for_a_second_instance() -> None:
    config = build_config(["--port", "8100", "--grpc-port-base", "50151",
                           "--data-dir", "data2"], environ={})
    assert config.http_port == 8100
    assert config.grpc_ports == {"retrieval": 50151, "generation": 50152, "ingest": 50153,
                                 "memory": 50154, "ingest-worker": 50155}
    assert config.data_dir.name == "data2"


def test_environment_sets_the_ports_and_flags_override_one_service() -> None:
    config = build_config(["--grpc-port", "memory=6000"],
                          environ={"RAGCHAT_GRPC_PORT_BASE": "51000",
                                   "RAGCHAT_HTTP_PORT": "9000"})
    assert config.http_port == 9000
    assert config.grpc_ports["retrieval"] == 51000
    assert config.grpc_ports["memory"] == 6000


def test_port_base_zero_picks_free_ports() -> None:
    assert set(build_config(["--grpc-port-base", "0"], environ={}).grpc_ports.values()) == {0}


@pytest.mark.parametrize("argv, message", [
    (["--grpc-port", "search=1"], "NAME=PORT"),
    (["--grpc-port", "memory=70000"], "is not a port"),
    (["--grpc-port-base", "65533"], "leaves no room"),
    (["--grpc-port", "memory=50051"], "share a port"),
    (["--port", "50052"], "share a port"),
    (["--port", "0"], "fixed port"),
])
def test_bad_ports_are_usage_errors(argv: list[str], message: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_config(argv, environ={})
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_make_run_starts_mlflow_on_5000_unless_told_not_to() -> None:
    config = build_config([], environ={})
    assert config.mlflow and config.mlflow_port == 5000
    assert not build_config(["--no-mlflow"], environ={}).mlflow
    assert build_config([], environ={"RAGCHAT_MLFLOW_PORT": "5100"}).mlflow_port == 5100
    with pytest.raises(SystemExit):
        build_config(["--mlflow-port", "8000"], environ={})  # the gateway's port
