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
from types import TracebackType
from typing import IO

from devstack.postgres import DATABASE, EmbeddedPostgres, free_port, start_postgres

__all__ = [
    "DATABASE",
    "EmbeddedMoto",
    "EmbeddedPostgres",
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


def start_moto(port: int = 0, host: str = "127.0.0.1") -> EmbeddedMoto:
    """Start `python -m moto.server` and wait until it answers HTTP. Port 0 picks one."""
    for attempt in range(1, _START_ATTEMPTS + 1):
        chosen = port or free_port(host)
        log = tempfile.TemporaryFile()  # noqa: SIM115 - owned by EmbeddedMoto
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
        output = log.read().decode(errors="replace")[-2000:]
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


def ensure_bucket_and_queue(endpoint_url: str, bucket: str, queue_name: str,
                            region: str = "us-east-1") -> str:
    """Create the bucket and the queue (with `<queue>-dlq`) if missing; return the queue URL."""
    import boto3  # deferred: only the dev stack and tests need it

    session = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local",
                                    region_name=region)
    s3 = session.client("s3", endpoint_url=endpoint_url)
    sqs = session.client("sqs", endpoint_url=endpoint_url)
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket,
                             CreateBucketConfiguration={"LocationConstraint": region})
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    dlq_url = sqs.create_queue(QueueName=f"{queue_name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    attributes = {
        "VisibilityTimeout": "60",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
    }
    try:
        return str(sqs.create_queue(QueueName=queue_name, Attributes=attributes)["QueueUrl"])
    except sqs.exceptions.QueueNameExists:
        # Exists with other attributes: bring them in line.
        url = str(sqs.get_queue_url(QueueName=queue_name)["QueueUrl"])
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        return url
