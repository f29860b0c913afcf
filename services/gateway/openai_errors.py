"""Errors on /v1 in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from services.gateway.capacity import Overloaded
from services.gateway.errors import grpc_error_parts, retry_after

logger = logging.getLogger(__name__)

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


class OpenAIError(Exception):
    """An error the /v1 routes answer in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.headers = headers

    def body(self) -> dict[str, Any]:
        kind = _TYPES.get(self.status, "server_error" if self.status >= 500 else "api_error")
        return {
            "error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}
        }

    def response(self) -> JSONResponse:
        return JSONResponse(status_code=self.status, content=self.body(), headers=self.headers)


def as_openai_error(exc: BaseException) -> OpenAIError:
    """Any failure of a /v1 request as an OpenAIError (messages safe to show)."""
    if isinstance(exc, OpenAIError):
        return exc
    if isinstance(exc, RequestValidationError | ValidationError):
        return _invalid(exc.errors())
    if isinstance(exc, HTTPException):  # unreadable body, wrong Content-Type
        return OpenAIError(exc.status_code, str(exc.detail), "invalid_request", headers=exc.headers)
    if isinstance(exc, Overloaded):
        headers = {"Retry-After": str(exc.retry_after_s)}
        return OpenAIError(429, str(exc), "overloaded", headers=headers)
    if isinstance(exc, grpc.aio.AioRpcError):
        status, code, message = grpc_error_parts(exc)
        if status == 422 and code == "invalid_argument":
            status = 400  # OpenAI's status for a bad request
        wait = retry_after(exc)
        return OpenAIError(status, message, code, headers={"Retry-After": wait} if wait else None)
    logger.exception("/v1 request failed", exc_info=exc)
    return OpenAIError(500, "the request failed", "internal")


def _invalid(errors: Any) -> OpenAIError:
    problems, param = [], None
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        param = param or where
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return OpenAIError(400, "; ".join(problems), "invalid_request", param)


class OpenAIRoute(APIRoute):
    """A route whose every failure (bad body included) is answered in OpenAI's shape."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # noqa: BLE001 - every failure gets the OpenAI shape
                return as_openai_error(exc).response()

        return guarded
