"""moto's server on a free loopback port: the harness's stand-in for the AWS
APIs it has no local twin of (S3 when no other is configured, SQS and
EventBridge Scheduler for the functions' scheduling calls)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

__all__ = ["running_moto_server"]


@contextlib.contextmanager
def running_moto_server() -> Iterator[str]:
    """Yield `http://127.0.0.1:PORT` of a fresh moto server; stopped on exit.
    Raises ImportError when moto lacks its server extra."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
