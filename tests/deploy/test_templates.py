"""The deployment templates agree with the code: settings, ports, health, secrets, queues."""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from services.generation.config import DEFAULT_PORT as GENERATION_PORT
from services.ingest.config import DEFAULT_PORT as INGEST_PORT
from services.ingest.config import WORKER_PORT, IngestSettings
from services.memory.config import DEFAULT_PORT as MEMORY_PORT
from services.retrieval.config import DEFAULT_PORT as RETRIEVAL_PORT
from tests.deploy.templates import (
    COLLECTOR_CONFIG,
    SETTINGS_CLASSES,
    containers,
    dockerfile_stages,
    environment,
    image_target,
    parameter_default,
    resolve,
    resources,
    secrets,
    task_definitions,
    template,
)

GATEWAY_PORT = 8000
PORTS = {
    "retrieval": RETRIEVAL_PORT,
    "generation": GENERATION_PORT,
    "ingest-api": INGEST_PORT,
    "ingest-worker": WORKER_PORT,
    "memory": MEMORY_PORT,
    "gateway": GATEWAY_PORT,
}
SERVICES = sorted(PORTS)


def settings_class(container: str) -> Any:
    module, _, name = SETTINGS_CLASSES[container].partition(":")
    return getattr(importlib.import_module(module), name)


def test_every_deployable_has_a_task_definition() -> None:
    assert set(containers()) == {*SERVICES, "migrate"}


@pytest.mark.parametrize("name", [*SERVICES, "migrate"])
def test_every_ragchat_variable_is_a_setting_of_its_service(name: str) -> None:
    container = containers()[name]
    fields = settings_class(name).model_fields
    stage = dockerfile_stages()[image_target(container)]
    names = [*environment(container), *secrets(container), *stage.env]
    unknown = [n for n in names if n.startswith("RAGCHAT_") and n[8:].lower() not in fields]
    assert unknown == [], f"{name} sets variables its settings do not read"


@pytest.mark.parametrize("name", SERVICES)
def test_ports_and_health_checks_match_the_service_defaults(name: str) -> None:
    container, port = containers()[name], PORTS[name]
    (mapping,) = container["PortMappings"]
    assert mapping["ContainerPort"] == port
    env = environment(container)
    health = container["HealthCheck"]["Command"]
    if name == "gateway":
        assert (mapping["AppProtocol"], env["RAGCHAT_HTTP_PORT"]) == ("http", str(port))
        assert settings_class(name)().http_port == port
        assert health[-2:] == ["http", f"http://127.0.0.1:{port}/livez"]
    else:
        assert (mapping["Name"], mapping["AppProtocol"]) == ("grpc", "grpc")
        assert env["RAGCHAT_LISTEN"] == f"0.0.0.0:{port}"
        assert health[-2:] == ["grpc", f"127.0.0.1:{port}"]
    assert health[:4] == ["CMD", "python", "-m", "services.common.healthcheck"]


@pytest.mark.parametrize("name", [*SERVICES, "migrate"])
def test_task_command_and_health_check_are_the_images(name: str) -> None:
    container = containers()[name]
    stage = dockerfile_stages()[image_target(container)]
    assert re.fullmatch(r"\d+(:\d+)?", stage.user) and not stage.user.startswith("0")
    if name == "migrate":  # the memory image, another command
        assert container["Command"] == ["python", "-m", "services.common.migrate"]
        return
    assert container["Command"] == stage.cmd
    assert ["CMD", *stage.healthcheck] == container["HealthCheck"]["Command"]
    assert stage.expose == [PORTS[name]]


def test_the_gateway_is_reached_through_liveness_and_the_services_by_their_names() -> None:
    (group,) = resources("services", "AWS::ElasticLoadBalancingV2::TargetGroup").values()
    # /livez, not /health: one backend down must not take every gateway task out.
    assert (group["Properties"]["HealthCheckPath"], group["Properties"]["Port"]) == (
        "/livez", GATEWAY_PORT)
    aliases = {}
    for service in resources("services", "AWS::ECS::Service").values():
        for entry in service["Properties"]["ServiceConnectConfiguration"].get("Services", []):
            (alias,) = entry["ClientAliases"]
            aliases[entry["DiscoveryName"]] = f"{alias['DnsName']}:{alias['Port']}"
    assert aliases == {n: f"{n}:{p}" for n, p in PORTS.items() if n != "gateway"}
    gateway = environment(containers()["gateway"])
    for target, service in [("RETRIEVAL", "retrieval"), ("GENERATION", "generation"),
                            ("INGEST", "ingest-api"), ("MEMORY", "memory"),
                            ("INGEST_WORKER", "ingest-worker")]:
        assert gateway[f"RAGCHAT_{target}_TARGET"] == aliases[service]


@pytest.mark.parametrize("name", [*SERVICES, "migrate"])
def test_production_secrets_are_injected_and_never_plain(name: str) -> None:
    container = containers()[name]
    env, injected = environment(container), secrets(container)
    assert not [n for n in env if re.search(r"PASSWORD|SECRET|API_KEY|TOKEN", n)]
    assert resolve(env["RAGCHAT_ENVIRONMENT"]) == "production"
    fields = settings_class(name).model_fields
    for secret in injected:
        assert fields[secret[8:].lower()].annotation is SecretStr
    if "database_url" in fields:
        assert "RAGCHAT_DATABASE_PASSWORD" in injected
        assert "@" in str(env["RAGCHAT_DATABASE_URL"]) and ":${" not in str(
            env["RAGCHAT_DATABASE_URL"]).split("@")[0]
    if name == "generation" and resolve(env["RAGCHAT_LLM_PROVIDER"]) == "openai":
        assert "RAGCHAT_OPENAI_API_KEY" in injected


def test_dlq_receive_count_is_the_workers_max_attempts() -> None:
    queue = template("data")["Resources"]["IngestQueue"]["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == {"Ref": "MaxAttempts"}
    worker = environment(containers()["ingest-worker"])
    assert resolve(worker["RAGCHAT_MAX_ATTEMPTS"]) == parameter_default("data", "MaxAttempts")
    assert parameter_default("data", "MaxAttempts") == str(IngestSettings().max_attempts)
    # The queue's visibility timeout starts where the worker's heartbeat expects it.
    visibility = parameter_default("data", "QueueVisibilityTimeout")
    assert visibility == str(IngestSettings().visibility_timeout_s)


def _allowed_actions(role: dict[str, Any]) -> list[str]:
    actions = []
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            listed = statement["Action"]
            actions += [listed] if isinstance(listed, str) else listed
    return actions


def test_task_roles_are_least_privilege() -> None:
    roles = resources("services", "AWS::IAM::Role")
    policies = resources("services", "AWS::IAM::ManagedPolicy")
    every = [a for r in roles.values() for a in _allowed_actions(r)]
    every += [a for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]
              for a in s["Action"]]
    assert not [a for a in every if a == "*" or a.endswith(":*")]
    for name, task in task_definitions().items():
        role = roles[task["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]]
        data_actions = [a for a in _allowed_actions(role) if a.startswith(("s3:", "sqs:"))]
        if name in ("ingest-api", "ingest-worker"):
            assert {"s3:PutObject", "s3:GetObject", "s3:DeleteObject", "sqs:SendMessage",
                    "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes"} == set(data_actions)
            (s3,) = [s for p in role["Properties"]["Policies"]
                     for s in p["PolicyDocument"]["Statement"] if s["Sid"] == "RawDocuments"]
            assert s3["Resource"]["Fn::Sub"][0] == "${Bucket}/documents/*"
        else:
            assert data_actions == [], f"{name} needs no S3 or SQS access"


@pytest.mark.parametrize("name", [*SERVICES, "migrate"])
def test_every_task_traces_through_its_collector_sidecar(name: str) -> None:
    task = task_definitions()[name]["Properties"]["ContainerDefinitions"]
    sidecar = next(c for c in task if c["Name"] == "adot-collector")
    assert sidecar["Essential"] is False
    assert list(secrets(sidecar)) == ["AOT_CONFIG_CONTENT"]
    env = environment(containers()[name])
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://localhost:4317"
    assert (env["RAGCHAT_OTEL_EXPORTER"], env["RAGCHAT_LOG_FORMAT"]) == ("otlp", "json")


def test_collector_sends_traces_to_xray_and_metrics_to_emf() -> None:
    config = yaml.safe_load(COLLECTOR_CONFIG.read_text())
    pipelines = config["service"]["pipelines"]
    assert (pipelines["traces"]["receivers"], pipelines["traces"]["exporters"]) == (
        ["otlp"], ["awsxray"])
    assert (pipelines["metrics"]["receivers"], pipelines["metrics"]["exporters"]) == (
        ["otlp"], ["awsemf"])
    assert config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")
    embedded = template("services")["Resources"]["AdotConfig"]["Properties"]["Value"]
    assert yaml.safe_load(embedded) == config, "services.yaml embeds a stale collector config"


def test_services_roll_back_a_failed_deployment_and_keep_their_logs() -> None:
    for service in resources("services", "AWS::ECS::Service").values():
        breaker = service["Properties"]["DeploymentConfiguration"]["DeploymentCircuitBreaker"]
        assert breaker == {"Enable": True, "Rollback": True}
    for group in resources("services", "AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_scaling_follows_requests_cpu_and_queue_backlog() -> None:
    policies = {
        p["Properties"]["ScalingTargetId"]["Ref"]: p["Properties"][
            "TargetTrackingScalingPolicyConfiguration"]
        for p in resources("services", "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    }
    kind = {t: c.get("PredefinedMetricSpecification", {}).get("PredefinedMetricType")
            for t, c in policies.items()}
    assert kind["GatewayScalableTarget"] == "ALBRequestCountPerTarget"
    assert kind["RetrievalScalableTarget"] == kind["GenerationScalableTarget"] == (
        "ECSServiceAverageCPUUtilization")
    metrics = policies["IngestWorkerScalableTarget"]["CustomizedMetricSpecification"]["Metrics"]
    names = {m["Id"]: m.get("MetricStat", {}).get("Metric", {}).get("MetricName") for m in metrics}
    assert names["visible"] == "ApproximateNumberOfMessagesVisible"
    assert names["tasks"] == "RunningTaskCount"
    assert [m["Expression"] for m in metrics if m["ReturnData"]] == ["visible / tasks"]
    target = resources("services", "AWS::ApplicationAutoScaling::ScalableTarget")[
        "IngestWorkerScalableTarget"]
    minimum = target["Properties"]["MinCapacity"]["Ref"]
    assert template("services")["Parameters"][minimum]["MinValue"] >= 1


def test_data_at_rest_is_encrypted_and_kept() -> None:
    data = template("data")["Resources"]
    db = data["Database"]
    assert (db["DeletionPolicy"], db["UpdateReplacePolicy"]) == ("Snapshot", "Snapshot")
    assert db["Properties"]["StorageEncrypted"] is True
    assert db["Properties"]["ManageMasterUserPassword"] is True
    assert str(db["Properties"]["EngineVersion"]).startswith("16")
    bucket = data["DocumentBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    (statement,) = data["DocumentBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
