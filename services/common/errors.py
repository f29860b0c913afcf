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
