"""Domain errors, mapped to gRPC status codes in one place."""

from __future__ import annotations

import grpc

REASON_KEY = "ragchat-reason"
RETRY_AFTER_KEY = "ragchat-retry-after-s"


class RagchatError(Exception):
    """Base class; its message is safe to show to a caller."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    # A machine-readable cause sent as trailing metadata (REASON_KEY), where the
    # status code alone does not say what a caller should do.
    reason: str = ""

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Trailing metadata that tells the caller the reason (and when to retry)."""
        return ((REASON_KEY, self.reason),) if self.reason else ()


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


class RateLimited(RagchatError):
    """Too many requests for now (e.g. the upstream LLM's rate limit): retry later."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RATE_LIMITED"

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def metadata(self) -> tuple[tuple[str, str], ...]:
        if self.retry_after_s is None:
            return super().metadata()
        return (*super().metadata(), (RETRY_AFTER_KEY, f"{self.retry_after_s:g}"))


class PromptTooLong(RagchatError):
    """The prompt does not fit the LLM's context window."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "PROMPT_TOO_LONG"


class LLMMisconfigured(RagchatError):
    """The LLM provider refuses the configured key, model or request: retrying won't help."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "LLM_MISCONFIGURED"
