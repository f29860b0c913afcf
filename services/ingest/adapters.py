"""Blob store and job queue interfaces, with their S3 and SQS implementations."""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from services.common.errors import NotFound, Unavailable
from services.common.telemetry import inject_message_attributes

logger = logging.getLogger(__name__)


class BlobStore(ABC):
    """Raw uploaded files."""

    @abstractmethod
    def check(self) -> None:
        """Raise unless the store is reachable and the bucket exists (health probe)."""

    @abstractmethod
    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    @abstractmethod
    def get(self, key: str) -> bytes: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    def discard(self, key: str) -> None:
        """Delete, best effort: a raw file left behind harms no reader, so a failure is
        logged rather than raised (failed uploads, replaced versions, deleted documents)."""
        try:
            self.delete(key)
        except Exception:  # noqa: BLE001 - see docstring
            logger.warning("could not delete raw file %s; it is left behind", key)


@dataclass(frozen=True)
class QueueMessage:
    body: dict[str, Any]
    receipt: str
    attributes: dict[str, Any]
    receive_count: int


class JobQueue(ABC):
    """At-least-once delivery of indexing jobs."""

    @abstractmethod
    def check(self) -> None:
        """Raise unless the queue is reachable and exists (health probe)."""

    @abstractmethod
    def send(self, body: dict[str, Any]) -> None:
        """Enqueue, carrying the current trace context."""

    @abstractmethod
    def receive(self, max_messages: int, wait_s: int) -> list[QueueMessage]: ...

    @abstractmethod
    def ack(self, message: QueueMessage) -> None:
        """Delete the message; call only after its work is committed."""

    @abstractmethod
    def extend(self, message: QueueMessage, timeout_s: int) -> None:
        """Keep the message invisible to other workers for timeout_s more seconds."""


class _FailFast:
    """An adapter's health flag: its probe sets it, and calls fail fast (Unavailable, no
    network call) while it says down."""

    _name = "the service"
    healthy = True

    def _probe(self, call: Callable[[], object]) -> None:
        try:
            call()
        except Exception:
            self.healthy = False
            raise
        self.healthy = True

    def _ensure_healthy(self) -> None:
        if not self.healthy:
            raise Unavailable(f"{self._name} is unavailable")


class S3BlobStore(_FailFast, BlobStore):
    _name = "the file store"

    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    def check(self) -> None:
        self._probe(lambda: self._s3.head_bucket(Bucket=self._bucket))

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self._ensure_healthy()
        try:
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=data, ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise Unavailable(f"could not store the file: {_reason(exc)}") from exc

    def get(self, key: str) -> bytes:
        self._ensure_healthy()
        try:
            return bytes(self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise NotFound(f"raw file {key!r} is missing from the bucket") from exc
            raise Unavailable(f"could not read the file: {_reason(exc)}") from exc
        except BotoCoreError as exc:
            raise Unavailable(f"could not read the file: {_reason(exc)}") from exc

    def delete(self, key: str) -> None:
        try:
            self._s3.delete_object(Bucket=self._bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise Unavailable(f"could not delete the file: {_reason(exc)}") from exc


class SqsJobQueue(_FailFast, JobQueue):
    _name = "the job queue"

    def __init__(self, client: Any, queue_url: str) -> None:
        self._sqs = client
        self._url = queue_url

    def check(self) -> None:
        self._probe(
            lambda: self._sqs.get_queue_attributes(QueueUrl=self._url,
                                                   AttributeNames=["QueueArn"])
        )

    def send(self, body: dict[str, Any]) -> None:
        self._ensure_healthy()
        try:
            self._sqs.send_message(
                QueueUrl=self._url,
                MessageBody=json.dumps(body),
                MessageAttributes=inject_message_attributes({}),
            )
        except (BotoCoreError, ClientError) as exc:
            raise Unavailable(f"could not queue the job: {_reason(exc)}") from exc

    def receive(self, max_messages: int, wait_s: int) -> list[QueueMessage]:
        resp = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_s,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        out = []
        for msg in resp.get("Messages", []):
            try:
                body = json.loads(msg["Body"])
            except ValueError:
                body = {}
            out.append(
                QueueMessage(
                    body=body if isinstance(body, dict) else {},
                    receipt=msg["ReceiptHandle"],
                    attributes=msg.get("MessageAttributes", {}),
                    receive_count=int(msg.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
                )
            )
        return out

    def ack(self, message: QueueMessage) -> None:
        self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message.receipt)

    def extend(self, message: QueueMessage, timeout_s: int) -> None:
        self._sqs.change_message_visibility(
            QueueUrl=self._url, ReceiptHandle=message.receipt, VisibilityTimeout=timeout_s
        )


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "error"))
    return type(exc).__name__
