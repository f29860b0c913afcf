"""Domain errors, mapped to gRPC status codes (with google.rpc details) in one place."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

# The trailing-metadata key of google.rpc.Status (what grpcio-status reads and writes).
GRPC_DETAILS_METADATA_KEY = "grpc-status-details-bin"

# ErrorInfo.domain of every error a ragchat service raises.
ERROR_DOMAIN = "ragchat.dev"


class RagchatError(Exception):
    """Base class; its message is safe to show to a caller.

    `reason` (UPPER_SNAKE_CASE, stable) and `metadata` travel as google.rpc.ErrorInfo;
    `field` names the request field at fault (sent as a google.rpc.BadRequest).
    """

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str = "",
        field: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        if reason:
            self.reason = reason
        self.field = field
        self.metadata = dict(metadata or {})


class InvalidArgument(RagchatError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"


class NotFound(RagchatError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class TenantRequired(RagchatError):
    """A call without a valid tenant in its metadata (see services.common.tenancy)."""

    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "TENANT_MISSING"


class TooLarge(RagchatError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "TOO_LARGE"


class Unsupported(RagchatError):
    """A well-formed request for something the service cannot handle (e.g. file type)."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "UNSUPPORTED_TYPE"


class Unavailable(RagchatError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "DEPENDENCY_UNAVAILABLE"


class Conflict(RagchatError):
    """The request clashes with an earlier one (e.g. an idempotency key reused)."""

    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "REQUEST_ID_REUSED"


class DocumentSuperseded(RagchatError):
    """A write for a document version older than the document's current one."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "DOCUMENT_SUPERSEDED"


class DocumentDeleted(RagchatError):
    """A write for a document that was deleted meanwhile."""

    code = grpc.StatusCode.NOT_FOUND
    reason = "DOCUMENT_DELETED"


def rich_status(exc: RagchatError) -> status_pb2.Status:
    """The google.rpc.Status for an error: ErrorInfo always, BadRequest for a bad field."""
    status = status_pb2.Status(code=exc.code.value[0], message=str(exc))
    info = error_details_pb2.ErrorInfo(
        reason=exc.reason, domain=ERROR_DOMAIN, metadata=exc.metadata
    )
    status.details.add().Pack(info)
    if exc.code == grpc.StatusCode.INVALID_ARGUMENT:
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=exc.field, description=str(exc)
        )
        status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    return status


def status_metadata(exc: RagchatError) -> tuple[tuple[str, bytes], ...]:
    """Trailing metadata that carries the error's google.rpc.Status."""
    return tuple(rpc_status.to_status(rich_status(exc)).trailing_metadata)


def error_info(
    metadata: Iterable[tuple[str, str | bytes]] | None,
) -> tuple[error_details_pb2.ErrorInfo | None, error_details_pb2.BadRequest | None]:
    """The ErrorInfo and BadRequest details in a failed call's trailing metadata."""
    info = bad = None
    for key, value in metadata or ():
        if key != GRPC_DETAILS_METADATA_KEY or not isinstance(value, bytes):
            continue
        for detail in status_pb2.Status.FromString(value).details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
    return info, bad


class RateLimited(RagchatError):
    """Too many requests for now (e.g. the upstream LLM's rate limit): retry later."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RATE_LIMITED"

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        metadata = {} if retry_after_s is None else {"retry_after_s": f"{retry_after_s:g}"}
        super().__init__(message, metadata=metadata)
        self.retry_after_s = retry_after_s


class PromptTooLong(RagchatError):
    """The prompt does not fit the LLM's context window."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "PROMPT_TOO_LONG"


class LLMMisconfigured(RagchatError):
    """The LLM provider refuses the configured key, model or request: retrying won't help."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "LLM_MISCONFIGURED"
