"""boto3 clients built from settings: the same code talks to AWS and to moto."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from services.common.settings import AwsSettings


def _client(service: str, settings: AwsSettings, endpoint_url: str) -> Any:
    # Credentials come from the standard chain (env, ECS task role); never from settings.
    return boto3.session.Session().client(
        service,
        region_name=settings.aws_region,
        endpoint_url=endpoint_url or None,
        # Short connect timeout and few retries: an outage shows in seconds. The read
        # timeout outlasts SQS's longest long-poll (20 s).
        config=Config(
            retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=2, read_timeout=25
        ),
    )


def s3_client(settings: AwsSettings) -> Any:
    return _client("s3", settings, settings.s3_endpoint_url)


def sqs_client(settings: AwsSettings) -> Any:
    return _client("sqs", settings, settings.sqs_endpoint_url)
