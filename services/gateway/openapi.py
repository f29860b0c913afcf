"""The error responses each route documents in the OpenAPI document, defined once.

Every REST error body is `ErrorBody`; /v1 errors are OpenAI's shape (`OpenAIErrorBody`).
401/403 come from the auth middleware and 429 from rate limits and generation
capacity, so every route that is not public documents them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException
from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    """The JSON body of every REST error."""

    error: str = Field(description='short code, e.g. "invalid_request", "not_found"')
    detail: str = Field(description="a human-readable message; for 422, each problem as "
                        "`field: message`, joined by `; `")
    reason: str = Field(description="stable machine-readable cause, e.g. SESSION_NOT_FOUND")


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorBody(BaseModel):
    """The body of every /v1 error, as OpenAI sends it."""

    error: OpenAIErrorDetail


_DESCRIPTIONS = {
    400: "The body could not be read (malformed JSON, bad UTF-8, nesting too deep)",
    401: "Missing or invalid API key",
    403: "The key may not do this",
    404: "No such resource",
    405: "Method not allowed (see the Allow header)",
    409: "Idempotency-Key reused for a different request",
    413: "Body or file over the upload limit",
    415: "Content-Type not accepted (or an unsupported file type)",
    422: "A field is invalid; `detail` names it",
    429: "Rate-limited or overloaded; retry after `Retry-After` seconds",
    502: "The upstream LLM rejected the configured key or model",
    503: "A backend service or one of its dependencies is unavailable",
    504: "A backend service took too long",
}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}}}

# Every non-public route: auth, rate limits and backend availability.
COMMON = (401, 403, 429, 503, 504)
# Routes with a JSON body.
JSON_BODY = (*COMMON, 400, 413, 415, 422)


def errors(*codes: int, model: type[BaseModel] = ErrorBody) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that can answer each of `codes` with an error body."""
    documented: dict[int | str, dict[str, Any]] = {}
    for code in sorted(set(codes)):
        entry: dict[str, Any] = {"model": model, "description": _DESCRIPTIONS[code]}
        if code == 429:
            entry["headers"] = _RETRY_AFTER
        if code == 405:
            entry["headers"] = {"Allow": {"description": "the allowed methods",
                                          "schema": {"type": "string"}}}
        documented[code] = entry
    return documented


def event_stream(description: str, events: tuple[str, ...] = ()) -> dict[int | str, dict[str, Any]]:
    """The 200 of a server-sent-events route; the schema describes one event (OpenAPI
    3.1 reads a text/event-stream schema per event), `data` being JSON text."""
    event: dict[str, Any] = {
        "type": "object",
        "properties": {"data": {"type": "string", "description": "JSON, or [DONE]"}},
        "required": ["data"],
    }
    if events:
        event["properties"]["event"] = {"type": "string", "enum": list(events)}
        event["required"] = ["event", "data"]
    return {200: {"description": description,
                  "content": {"text/event-stream": {"schema": event}}}}


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def json_body(request: Request) -> None:
    """Dependency: 415 unless the body is sent as JSON."""
    media = _media_type(request)
    if media != "application/json" and not media.endswith("+json"):
        raise HTTPException(415, f"send the body as application/json, not {media or 'nothing'}")


def multipart_body(request: Request) -> None:
    """Dependency: 415 unless the body is multipart/form-data."""
    media = _media_type(request)
    if media != "multipart/form-data":
        raise HTTPException(415, f"send the file as multipart/form-data, not {media or 'nothing'}")


def install(app: FastAPI) -> None:
    """Drop FastAPI's default 422 (`HTTPValidationError`, never sent: validation errors
    are ErrorBody, or OpenAI's 400 on /v1) from the generated document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            for operation in _operations(document):
                refs = str(operation.get("responses", {}).get("422", ""))
                if "HTTPValidationError" in refs:
                    del operation["responses"]["422"]
            schemas = document.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for ops in document.get("paths", {}).values() for op in ops.values()
            if isinstance(op, dict)]
