"""python -m devstack: run and supervise the whole platform on embedded defaults (`make run`)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

from devstack.launcher import DEFAULT_PORTS, Stack, StackConfig

# The order of --grpc-port-base: retrieval base, generation base+1, ... worker base+4.
PORT_ORDER = ("retrieval", "generation", "ingest", "memory", "ingest-worker")
assert set(PORT_ORDER) == set(DEFAULT_PORTS)
MAX_PORT = 65535


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0..{MAX_PORT}; 0 = any free)")
    return port


def _named_port(text: str) -> tuple[str, int]:
    name, sep, port = text.partition("=")
    if not sep or name not in DEFAULT_PORTS:
        raise argparse.ArgumentTypeError(
            f"expected NAME=PORT with NAME one of {', '.join(PORT_ORDER)}, got {text!r}")
    return name, _port(port)


def build_config(argv: Sequence[str] | None = None,
                 environ: Mapping[str, str] = os.environ) -> StackConfig:
    """The stack the command line (and RAGCHAT_HTTP_PORT / RAGCHAT_GRPC_PORT_BASE) asks for;
    a usage error exits 2 with a message."""
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path("data"),
                        help="where PostgreSQL, Chroma and logs persist (default ./data)")
    parser.add_argument("--port", type=_port, default=environ.get("RAGCHAT_HTTP_PORT", "8000"),
                        help="gateway HTTP port (default $RAGCHAT_HTTP_PORT or 8000)")
    parser.add_argument(
        "--grpc-port-base", type=_port, default=environ.get("RAGCHAT_GRPC_PORT_BASE", "50051"),
        help="gRPC ports: retrieval BASE, generation +1, ingest +2, memory +3, ingest "
             "worker +4 (default $RAGCHAT_GRPC_PORT_BASE or 50051; 0 = free ports)")
    parser.add_argument("--grpc-port", type=_named_port, action="append", default=[],
                        metavar="NAME=PORT", help="one service's gRPC port (repeatable)")
    parser.add_argument("--mlflow-port", type=_port,
                        default=environ.get("RAGCHAT_MLFLOW_PORT", "5000"),
                        help="MLflow tracking server port (default $RAGCHAT_MLFLOW_PORT or "
                             "5000; 0 = any free)")
    parser.add_argument("--no-mlflow", action="store_true",
                        help="start no MLflow tracking server")
    args = parser.parse_args(argv)
    if args.port == 0:
        parser.error("--port must be a fixed port (1..65535)")
    base = args.grpc_port_base
    if base + len(PORT_ORDER) - 1 > MAX_PORT:
        parser.error(f"--grpc-port-base {base} leaves no room for {len(PORT_ORDER)} ports")
    ports = {name: base + i if base else 0 for i, name in enumerate(PORT_ORDER)}
    ports.update(args.grpc_port)
    fixed = [p for p in [*ports.values(), args.port,
                         0 if args.no_mlflow else args.mlflow_port] if p]
    if len(fixed) != len(set(fixed)):
        parser.error(f"two services would share a port: {ports}, HTTP {args.port}")
    return StackConfig(data_dir=args.data_dir.resolve(), http_port=args.port, grpc_ports=ports,
                       mlflow=not args.no_mlflow, mlflow_port=args.mlflow_port)


def main() -> int:
    config = build_config()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s devstack %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    log = logging.getLogger("devstack")

    stopping = threading.Event()
    started = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        first = not stopping.is_set()
        stopping.set()
        if first and not started.is_set():
            raise KeyboardInterrupt  # interrupts start-up; a second signal waits for the stop

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stack = Stack(config)
    log.info("starting PostgreSQL, moto, %s4 services, the ingest worker and the gateway "
             "(models load first)...", "MLflow, " if config.mlflow else "")
    try:
        stack.start()
        started.set()
    except KeyboardInterrupt:
        stack.stop()  # start() has stopped what it started, unless it had just returned
        log.info("stopped during start-up")
        return 0
    except Exception as exc:  # noqa: BLE001 - reported, then exit non-zero
        log.error("start-up failed: %s", exc)
        return 1
    log.info("ready: %s  (OpenAPI at %s/docs; crashed processes are restarted; Ctrl-C stops)",
             stack.base_url, stack.base_url)
    log.info("gRPC: %s", ", ".join(f"{name} 127.0.0.1:{port}"
                                   for name, port in config.grpc_ports.items()))
    if stack.mlflow_uri:
        log.info("MLflow UI: %s  (for the mlops CLIs: export MLFLOW_TRACKING_URI=%s)",
                 stack.mlflow_uri, stack.mlflow_uri)
    while not stopping.wait(0.5):
        pass  # the supervisor thread does the work
    log.info("stopping...")
    stack.stop()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
