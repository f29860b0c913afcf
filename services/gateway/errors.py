"""gRPC status -> HTTP response, in one place. Callers see a message, never a trace."""

from __future__ import annotations

import functools
import logging
import math
import re

import grpc
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.common.errors import error_info
from services.common.grpc_server import NO_RETRY_KEY
from services.gateway.capacity import Overloaded

logger = logging.getLogger(__name__)

_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 422,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


def error_response(
    status: int,
    code: str,
    message: str,
    reason: str = "",
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The JSON error shape; `reason` defaults to the code in upper case."""
    return JSONResponse(
        status_code=status, content=error_body(code, message, reason), headers=headers
    )


def error_body(code: str, message: str, reason: str = "") -> dict[str, object]:
    return {"error": code, "detail": message, "reason": reason or code.upper()}


# The error code a client sees, where the status name is not the clearest word.
_ERROR_CODES = {grpc.StatusCode.ALREADY_EXISTS: "conflict"}
# Where a service names the reason, it decides the HTTP status (the code alone is
# ambiguous: RESOURCE_EXHAUSTED is a rate limit here, a size limit elsewhere).
_BY_REASON = {
    "RATE_LIMITED": (429, "rate_limited"),
    "PROMPT_TOO_LONG": (422, "prompt_too_long"),
    "LLM_MISCONFIGURED": (502, "llm_misconfigured"),
}
DEFAULT_RETRY_AFTER_S = 5


def _service_reason(exc: grpc.aio.AioRpcError) -> tuple[str, dict[str, str]]:
    """The ErrorInfo (reason, metadata) a ragchat service attached, or ("", {})."""
    if not _answered_by_service(exc):
        return "", {}
    info, _ = error_info(exc.trailing_metadata())
    return (info.reason, dict(info.metadata)) if info is not None else ("", {})


def retry_after(exc: grpc.aio.AioRpcError) -> str | None:
    """The Retry-After header (whole seconds) for a rate-limited call, else None."""
    reason, metadata = _service_reason(exc)
    if reason != "RATE_LIMITED":
        return None
    try:
        seconds = float(metadata.get("retry_after_s") or DEFAULT_RETRY_AFTER_S)
    except ValueError:
        seconds = DEFAULT_RETRY_AFTER_S
    return str(max(1, math.ceil(seconds)))


def grpc_error_parts(exc: grpc.aio.AioRpcError) -> tuple[int, str, str]:
    """(HTTP status, error code, message) for a failed gRPC call."""
    code = exc.code()
    reason, _ = _service_reason(exc)
    if reason in _BY_REASON:
        status, error = _BY_REASON[reason]
        return status, error, exc.details() or error
    status = _HTTP_STATUS.get(code, 502)
    message = exc.details() or code.name.lower()
    if code == grpc.StatusCode.UNAVAILABLE and exc.details() and _answered_by_service(exc):
        message = f"{exc.details()}; try again"  # the service's own words, e.g. its DB is down
    elif code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        # The channel's words (addresses, transport errors) are not for clients.
        message = f"a backend service is unavailable ({code.name.lower()}); try again"
    elif status == 502:
        message = "a backend service failed"
    return status, _ERROR_CODES.get(code, code.name.lower()), message


def grpc_error_reason(exc: grpc.aio.AioRpcError) -> str:
    """The service's ErrorInfo.reason, or the status name when the call carried none."""
    info, _ = error_info(exc.trailing_metadata())
    return info.reason if info is not None and info.reason else exc.code().name


def _answered_by_service(exc: grpc.aio.AioRpcError) -> bool:
    """Whether a service raised the error (its aborts carry the no-retry pushback)."""
    return any(key == NO_RETRY_KEY for key, _ in exc.trailing_metadata() or ())


def stream_error(exc: BaseException) -> dict[str, object]:
    """The JSON error shape for a failure after a stream's 200 was sent."""
    if isinstance(exc, grpc.aio.AioRpcError):
        status, code, message = grpc_error_parts(exc)
        return {**error_body(code, message, grpc_error_reason(exc)), "status": status}
    logger.exception("stream failed", exc_info=exc)
    return {**error_body("internal", "the answer stream failed"), "status": 500}


async def grpc_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, grpc.aio.AioRpcError)
    status, code, message = grpc_error_parts(exc)
    if status >= 500:
        logger.warning("%s %s: downstream %s", request.method, request.url.path, exc.code().name)
    wait = retry_after(exc)
    headers = {"Retry-After": wait} if wait else None
    return error_response(status, code, message, grpc_error_reason(exc), headers)


async def overloaded_handler(request: Request, exc: Exception) -> JSONResponse:
    """429 at once, with Retry-After, when every generation slot and queue place is taken."""
    assert isinstance(exc, Overloaded)
    headers = {"Retry-After": str(exc.retry_after_s)}
    return error_response(429, "overloaded", str(exc), "OVERLOADED", headers)


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Request-body validation failures in the same shape as every other error."""
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ())[1:]) or "body"
        if error.get("type") == "json_invalid":
            where = f"body (at character {where})"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{where}: {message}")
    return error_response(422, "invalid_request", "; ".join(problems))


_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


def allowed_methods(request: Request) -> list[str]:
    """Every method the API documents at this path (HEAD with GET), sorted: the whole
    `Allow` list, whichever route the router happened to try first."""
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        if _template_regex(template).fullmatch(request.url.path):
            methods |= {method.upper() for method in operations}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


@functools.lru_cache(maxsize=256)
def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join(
        "[^/]+" if part.startswith("{") else re.escape(part) for part in parts
    ))


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Framework errors (unknown route, wrong method, unreadable body, 415) as JSON;
    a 405 lists every method of the path, and OPTIONS answers 204 with that list."""
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        given = (exc.headers or {}).get("Allow", "")
        allow = allowed_methods(request) or [m.strip() for m in given.split(",") if m.strip()]
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={"Allow": ", ".join([*allow, "OPTIONS"])})
        headers["Allow"] = ", ".join(allow)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    return error_response(exc.status_code, code, str(exc.detail), headers=headers or None)
