"""python -m devstack: run and supervise the whole platform on embedded defaults (`make run`)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from devstack.launcher import Stack, StackConfig


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path("data"),
                        help="where PostgreSQL, Chroma and logs persist (default ./data)")
    parser.add_argument("--port", type=int, default=8000, help="gateway HTTP port")
    args = parser.parse_args()
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
    stack = Stack(StackConfig(data_dir=args.data_dir.resolve(), http_port=args.port))
    log.info("starting PostgreSQL, moto, 4 services, the ingest worker and the gateway "
             "(models load first)...")
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
    while not stopping.wait(0.5):
        pass  # the supervisor thread does the work
    log.info("stopping...")
    stack.stop()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
