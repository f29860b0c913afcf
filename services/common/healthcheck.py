"""Container health probe: exit 0 when healthy, 1 when not (stdlib + grpcio only).

    python -m services.common.healthcheck grpc 127.0.0.1:50051 [--service NAME]
    python -m services.common.healthcheck http http://127.0.0.1:8000/livez

Used by Docker HEALTHCHECK and ECS container health checks, so it must start fast:
it imports nothing from the services.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request


def grpc_healthy(target: str, service: str = "", timeout: float = 3.0) -> bool:
    """True when the gRPC health service at `target` reports SERVING for `service`."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    except grpc.RpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def http_healthy(url: str, timeout: float = 3.0) -> bool:
    """True when `url` answers a 2xx status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.common.healthcheck")
    parser.add_argument("kind", choices=["grpc", "http"])
    parser.add_argument("target", help="host:port for grpc, a URL for http")
    parser.add_argument("--service", default="", help="gRPC service name (default: server)")
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    if args.kind == "grpc":
        healthy = grpc_healthy(args.target, args.service, args.timeout)
    else:
        healthy = http_healthy(args.target, args.timeout)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
