"""Client channels to the services, with tracing, retries, keepalive and the tenant."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors

from services.common.tenancy import TENANT_METADATA_KEY, tenant_or_none

# Retry only what is safe to retry: the call never reached a healthy server.
_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)


# grpc.aio files an interceptor under the first kind it is an instance of, so each kind
# of call gets a class of its own.
class _TenantUnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        return await continuation(with_tenant(details), request)


class _TenantUnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        return await continuation(with_tenant(details), request)


class _TenantStreamUnary(grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await continuation(with_tenant(details), request_iterator)


class _TenantStreamStream(grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await continuation(with_tenant(details), request_iterator)


def tenant_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """Interceptors adding the calling code's tenant (``tenant_scope``) to every call's
    metadata; outside any scope nothing is added, and the service rejects the call."""
    return [_TenantUnaryUnary(), _TenantUnaryStream(), _TenantStreamUnary(),
            _TenantStreamStream()]


def with_tenant(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    """The call's details with the current tenant in its metadata (unless one is set)."""
    tenant = tenant_or_none()
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    if tenant is None or TENANT_METADATA_KEY in metadata:
        return details
    metadata.add(TENANT_METADATA_KEY, tenant)
    return details._replace(metadata=metadata)


def open_channel(target: str, max_message_mb: int = 64) -> grpc.aio.Channel:
    """An insecure channel for in-VPC traffic (TLS terminates at the load balancer)."""
    limit = max_message_mb * 1024 * 1024
    return grpc.aio.insecure_channel(
        target,
        options=[
            ("grpc.service_config", _SERVICE_CONFIG),
            ("grpc.enable_retries", 1),
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
            ("grpc.keepalive_time_ms", 30_000),
        ],
        interceptors=[*aio_client_interceptors(), *tenant_interceptors()],
    )
