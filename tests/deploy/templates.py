"""Readers for the deployment artefacts: CloudFormation templates and the Dockerfile."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
CFN_DIR = ROOT / "deploy" / "ecs" / "cfn"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
COLLECTOR_CONFIG = ROOT / "deploy" / "ecs" / "otel-collector.yaml"

# Container name -> (settings class path, Dockerfile target of its image).
SETTINGS_CLASSES = {
    "gateway": "services.gateway.config:GatewaySettings",
    "retrieval": "services.retrieval.config:RetrievalSettings",
    "generation": "services.generation.config:GenerationSettings",
    "ingest-api": "services.ingest.config:IngestSettings",
    "ingest-worker": "services.ingest.config:IngestSettings",
    "memory": "services.memory.config:MemorySettings",
    "migrate": "services.common.settings:DatabaseSettings",
}


@cache
def template(name: str) -> dict[str, Any]:
    """A template with short-form tags (!Ref, !Sub, ...) in their long form."""
    return dict(cfn_yaml.loads((CFN_DIR / f"{name}.yaml").read_text()))


def resources(name: str, kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template(name)["Resources"].items() if v["Type"] == kind}


def containers() -> dict[str, dict[str, Any]]:
    """Service container definitions of services.yaml by container name (sidecars left out)."""
    found = {}
    for task in resources("services", "AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            if container["Name"] != "adot-collector":
                found[container["Name"]] = container
    return found


def task_definitions() -> dict[str, dict[str, Any]]:
    """Task definitions by the name of their service container."""
    found = {}
    for task in resources("services", "AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            if container["Name"] != "adot-collector":
                found[container["Name"]] = task
    return found


def environment(container: dict[str, Any]) -> dict[str, Any]:
    return {item["Name"]: item["Value"] for item in container.get("Environment", [])}


def secrets(container: dict[str, Any]) -> dict[str, Any]:
    return {item["Name"]: item["ValueFrom"] for item in container.get("Secrets", [])}


def parameter_default(template_name: str, parameter: str) -> str:
    return str(template(template_name)["Parameters"][parameter]["Default"])


def resolve(value: Any) -> str | None:
    """A services.yaml value as the default deployment sees it, or None if only AWS knows.

    Follows Refs to parameter defaults and ImportValues of the data stack to its outputs.
    """
    if isinstance(value, str | int):
        return str(value)
    if not isinstance(value, dict) or len(value) != 1:
        return None
    (fn, arg), = value.items()
    if fn == "Ref":
        if arg == "AWS::Region":
            return "us-east-1"
        params = template("services")["Parameters"]
        return str(params[arg]["Default"]) if "Default" in params.get(arg, {}) else None
    if fn == "Fn::ImportValue":
        output = template("data")["Outputs"].get(_export(arg), {}).get("Value")
        params = template("data")["Parameters"]
        if isinstance(output, dict) and output.get("Ref") in params:
            return parameter_default("data", output["Ref"])
    return None


def _export(arg: Any) -> str:
    text = arg.get("Fn::Sub", "") if isinstance(arg, dict) else ""
    return text.removeprefix("${DataStackName}-") if isinstance(text, str) else ""


@dataclass
class Stage:
    """One Dockerfile stage with what it inherits from its parent stage."""

    name: str
    parent: str
    env: dict[str, str] = field(default_factory=dict)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    expose: list[int] = field(default_factory=list)
    user: str = ""


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def _exec_form(text: str) -> list[str]:
    return re.findall(r'"([^"]*)"', text) if text.startswith("[") else []


def dockerfile_stages() -> dict[str, Stage]:
    """Every named stage, with ENV, CMD, HEALTHCHECK, EXPOSE and USER inherited."""
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for word, rest in _instructions(DOCKERFILE.read_text()):
        if word == "FROM":
            image, _, name = rest.partition(" AS ")
            parent = stages.get(image.strip())
            current = Stage(name=name.strip(), parent=image.strip())
            if parent is not None:
                current.env = dict(parent.env)
                current.cmd, current.healthcheck = parent.cmd, parent.healthcheck
                current.expose, current.user = list(parent.expose), parent.user
            stages[current.name] = current
        elif current is None:
            continue
        elif word == "ENV":
            current.env.update(re.findall(r"(\w+)=(\S+)", rest))
        elif word == "CMD":
            current.cmd = _exec_form(rest)
        elif word == "HEALTHCHECK":
            current.healthcheck = _exec_form(rest.split(" CMD ", 1)[1])
        elif word == "EXPOSE":
            current.expose += [int(port) for port in rest.split()]
        elif word == "USER":
            current.user = rest
    return stages


def image_target(container: dict[str, Any]) -> str:
    """The Dockerfile target named by a container's image (<repository>/<target>:<tag>)."""
    image = container["Image"]
    if "Fn::If" in image:  # the same repository under either tag
        targets = {image_target({"Image": choice}) for choice in image["Fn::If"][1:]}
        assert len(targets) == 1, f"one container, two images: {targets}"
        return targets.pop()
    image = image["Fn::Sub"]
    match = re.fullmatch(r"\$\{ImageRepository\}/([a-z-]+):\$\{(Migrate)?ImageTag\}", image)
    assert match, f"unexpected image reference {image!r}"
    return match.group(1)
