"""Real local infrastructure the project starts itself: PostgreSQL+pgvector and moto.

Used by `make run` (devstack.launcher) and by the test fixtures, so both run the same code.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from devstack.postgres import DATABASE, EmbeddedPostgres, free_port, start_postgres

__all__ = [
    "DATABASE",
    "BucketAndQueue",
    "EmbeddedMoto",
    "EmbeddedPostgres",
    "Queues",
    "ensure_bucket_and_queue",
    "free_port",
    "start_moto",
    "start_postgres",
]

logger = logging.getLogger(__name__)

_START_ATTEMPTS = 3


class EmbeddedMoto:
    """moto's S3/SQS server in a subprocess; stop() or use as a context manager."""

    def __init__(self, process: subprocess.Popen[bytes], host: str, port: int,
                 log: IO[bytes]) -> None:
        self.process = process
        self.port = port
        self.endpoint_url = f"http://{host}:{port}"
        self._log = log

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def __enter__(self) -> EmbeddedMoto:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def start_moto(port: int = 0, host: str = "127.0.0.1",
               log_path: Path | None = None) -> EmbeddedMoto:
    """Start `python -m moto.server` and wait until it answers HTTP. Port 0 picks one.

    Its output goes to `log_path` (appended) when given, otherwise to a temporary file.
    """
    for attempt in range(1, _START_ATTEMPTS + 1):
        chosen = port or free_port(host)
        # Owned by EmbeddedMoto, closed by stop().
        log = open(log_path, "ab+") if log_path else tempfile.TemporaryFile()  # noqa: SIM115
        # Own session: Ctrl-C in a terminal must not kill it before the services stop.
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", host, "-p", str(chosen)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        server = EmbeddedMoto(proc, host, chosen, log)
        if _wait_for_http(server.endpoint_url + "/moto-api/", proc, timeout=30):
            logger.info("moto ready on %s", server.endpoint_url)
            return server
        log.seek(0)
        output = log.read().decode(errors="replace")[-2000:]  # whole file: keep the tail
        server.stop()
        if port or attempt == _START_ATTEMPTS:
            raise RuntimeError(f"moto did not start on port {chosen}:\n{output}")
    raise AssertionError("unreachable")


def _wait_for_http(url: str, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # it answered
        except OSError:
            time.sleep(0.1)
    return False


@dataclass(frozen=True)
class Queues:
    url: str
    dlq_url: str


class BucketAndQueue:
    """The bucket, the queue and its `<queue>-dlq` on one S3/SQS endpoint, (re)created on demand.

    The names fix the URLs, so a queue re-created after a moto restart keeps its URL.
    """

    def __init__(self, endpoint_url: str, bucket: str, queue_name: str,
                 region: str = "us-east-1", max_receive_count: int = 5,
                 visibility_timeout_s: int = 60) -> None:
        import boto3  # deferred: only the dev stack and tests need it
        from botocore.config import Config

        session = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local",
                                        region_name=region)
        # Short timeouts, no retries: the supervisor asks again on its next tick.
        config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1})
        self._s3 = session.client("s3", endpoint_url=endpoint_url, config=config)
        self._sqs = session.client("sqs", endpoint_url=endpoint_url, config=config)
        self.bucket, self.queue_name, self.region = bucket, queue_name, region
        self.max_receive_count = max_receive_count
        self.visibility_timeout_s = visibility_timeout_s

    def ensure(self) -> Queues:
        """Create whatever is missing (logging it); return the queue URLs."""
        if not self._bucket_exists():
            self._create_bucket()
            logger.info("created bucket %s", self.bucket)
        dlq_url = self._queue_url(f"{self.queue_name}-dlq")
        if dlq_url is None:
            dlq_url = str(self._sqs.create_queue(QueueName=f"{self.queue_name}-dlq")["QueueUrl"])
            logger.info("created queue %s-dlq", self.queue_name)
        url = self._queue_url(self.queue_name)
        attributes = self._attributes(dlq_url)
        if url is None:
            url = str(self._sqs.create_queue(QueueName=self.queue_name,
                                             Attributes=attributes)["QueueUrl"])
            logger.info("created queue %s (maxReceiveCount %d)", self.queue_name,
                        self.max_receive_count)
        else:
            self._sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        return Queues(url, dlq_url)

    def _bucket_exists(self) -> bool:
        try:
            self._s3.head_bucket(Bucket=self.bucket)
        except self._s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket"):
                return False
            raise
        return True

    def _create_bucket(self) -> None:
        try:
            if self.region == "us-east-1":
                self._s3.create_bucket(Bucket=self.bucket)
            else:
                self._s3.create_bucket(
                    Bucket=self.bucket,
                    CreateBucketConfiguration={"LocationConstraint": self.region})
        except self._s3.exceptions.BucketAlreadyOwnedByYou:
            pass  # created concurrently

    def _queue_url(self, name: str) -> str | None:
        try:
            return str(self._sqs.get_queue_url(QueueName=name)["QueueUrl"])
        except self._sqs.exceptions.QueueDoesNotExist:
            return None

    def _attributes(self, dlq_url: str) -> dict[str, str]:
        dlq_arn = self._sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(self.max_receive_count)}
        return {"VisibilityTimeout": str(self.visibility_timeout_s),
                "RedrivePolicy": json.dumps(redrive)}


def ensure_bucket_and_queue(endpoint_url: str, bucket: str, queue_name: str,
                            region: str = "us-east-1", max_receive_count: int = 5) -> str:
    """Create the bucket and the queue (with `<queue>-dlq`) if missing; return the queue URL."""
    resources = BucketAndQueue(endpoint_url, bucket, queue_name, region, max_receive_count)
    return resources.ensure().url
