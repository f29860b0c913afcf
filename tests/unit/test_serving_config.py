"""RAGCHAT_CONFIG_URI parsing and the config version on every span's resource."""

from __future__ import annotations

import pytest

from services.common.serving_config import ServingConfigError, parse_uri
from services.common.settings import CommonSettings
from services.common.telemetry import ATTR_CONFIG_VERSION, service_resource


@pytest.mark.parametrize(("uri", "expected"), [
    ("models:/ragchat-rag@champion", ("ragchat-rag", "champion", None)),
    ("models:/ragchat-rag/3", ("ragchat-rag", None, "3")),
])
def test_alias_and_version_uris_are_understood(uri: str, expected: tuple[object, ...]) -> None:
    assert parse_uri(uri) == expected


@pytest.mark.parametrize("uri", ["ragchat-rag@champion", "models:/ragchat-rag", "runs:/x/y",
                                 "models:/ragchat-rag@"])
def test_other_uris_are_refused_naming_the_setting(uri: str) -> None:
    with pytest.raises(ServingConfigError, match="RAGCHAT_CONFIG_URI"):
        parse_uri(uri)


def test_spans_carry_the_config_version_or_env() -> None:
    pinned = CommonSettings(config_version="ragchat-rag/7")
    assert service_resource("retrieval", pinned).attributes[ATTR_CONFIG_VERSION] == \
        "ragchat-rag/7"
    assert service_resource("retrieval", CommonSettings()).attributes[ATTR_CONFIG_VERSION] == \
        "env"
