"""Domain errors, mapped to gRPC status codes in one place."""

from __future__ import annotations

import grpc


class RagchatError(Exception):
    """Base class; its message is safe to show to a caller."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL


class InvalidArgument(RagchatError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(RagchatError):
    code = grpc.StatusCode.NOT_FOUND


class TooLarge(RagchatError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unsupported(RagchatError):
    """A well-formed request for something the service cannot handle (e.g. file type)."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class Unavailable(RagchatError):
    code = grpc.StatusCode.UNAVAILABLE


class Conflict(RagchatError):
    """The request clashes with an earlier one (e.g. an idempotency key reused)."""

    code = grpc.StatusCode.ALREADY_EXISTS


class DocumentSuperseded(RagchatError):
    """A write for a document version older than the document's current one."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class DocumentDeleted(RagchatError):
    """A write for a document that was deleted meanwhile."""

    code = grpc.StatusCode.NOT_FOUND
