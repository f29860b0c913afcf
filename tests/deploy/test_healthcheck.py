"""The container health probe: exit 0 only for a healthy answer."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devstack.embedded import free_port
from services.common.healthcheck import main


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200 if self.path == "/livez" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_probe_follows_the_status(http_server: str) -> None:
    assert main(["http", f"{http_server}/livez"]) == 0
    assert main(["http", f"{http_server}/health"]) == 1


def test_nothing_listening_is_unhealthy() -> None:
    port = free_port("127.0.0.1")
    assert main(["http", f"http://127.0.0.1:{port}/livez", "--timeout", "1"]) == 1
    assert main(["grpc", f"127.0.0.1:{port}", "--timeout", "1"]) == 1
