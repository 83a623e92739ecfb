"""Serving the gateway with uvicorn: a bound loopback socket, and a server
in the foreground (the CLI) or in a thread (tests, embedding)."""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn

from runtime.local.listen import BindError, listen

__all__ = ["BindError", "ServerThread", "uvicorn_server"]

SHUTDOWN_SECONDS = 5
"""How long a stopping server waits for open requests and sockets."""


def uvicorn_server(app: Any) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        loop="asyncio",
        log_level="warning",
        lifespan="off",
        access_log=False,
        ws_ping_interval=None,  # API Gateway answers pings, it does not send them
        timeout_graceful_shutdown=SHUTDOWN_SECONDS,
    )
    return uvicorn.Server(config)


class ServerThread:
    """uvicorn serving `app` on a loopback socket from a background thread."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self._sock = listen(host, port, "gateway")
        self.host = host
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://{host}:{self.port}"
        self._server = uvicorn_server(app)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self, timeout: float = 10) -> str:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the server on {self.url} stopped while starting")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server on {self.url} did not start within {timeout} s")
            time.sleep(0.01)
        return self.url

    def stop(self, timeout: float = SHUTDOWN_SECONDS + 5) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._sock.close()
        if self._thread.is_alive():
            raise RuntimeError(f"the server on {self.url} did not stop within {timeout} s")
