"""The FastAPI application: REST in front, gRPC behind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway import capacity, documents, health, openai_api, query, search, sessions
from services.gateway.clients import ServiceClients
from services.gateway.config import GatewaySettings
from services.gateway.errors import (
    error_response,
    grpc_error_handler,
    overloaded_handler,
    validation_error_handler,
)
from services.gateway.tenant import DefaultTenant
from services.gateway.webui import install as install_webui

# Multipart framing around the file; a body larger than limit + this is refused unread.
_MULTIPART_SLACK = 64 * 1024


class BodyLimit:
    """Refuses request bodies whose declared size exceeds the upload limit (413)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length")
            if length and length.isdigit() and int(length) > self.limit:
                response = error_response(
                    413, "too_large", f"request body exceeds the {self.limit}-byte limit"
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(settings: GatewaySettings, clients: ServiceClients | None = None) -> FastAPI:
    """Build the app; `clients` defaults to channels opened from the settings."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.clients = clients or ServiceClients.connect(settings)
        yield
        await app.state.clients.close()

    app = FastAPI(
        title="ragchat",
        version="0.1.0",
        description="Retrieval-augmented chat over your documents, with citations.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(documents.router)
    app.include_router(query.router)
    app.include_router(search.router)
    app.include_router(sessions.router)
    app.include_router(health.router)
    app.include_router(openai_api.router)
    install_webui(app)
    capacity.install(
        app,
        settings.max_concurrent_generations,
        settings.generation_queue,
        settings.overload_retry_after_s,
    )
    app.add_exception_handler(grpc.aio.AioRpcError, grpc_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(capacity.Overloaded, overloaded_handler)

    @app.exception_handler(documents.UploadRejected)
    async def _rejected(request: Request, exc: documents.UploadRejected) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    app.add_middleware(DefaultTenant)
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes + _MULTIPART_SLACK)
    FastAPIInstrumentor.instrument_app(app, excluded_urls="health,livez")
    return app
