"""A listening socket for the local shells (the dev server and the AWS
harness), handed to uvicorn already bound."""

from __future__ import annotations

import socket

__all__ = ["BindError", "listen"]


class BindError(RuntimeError):
    pass


def listen(host: str, port: int, what: str = "backend") -> socket.socket:
    """A listening, non-blocking socket on host:port (port 0: a free one)."""
    # proto=IPPROTO_TCP: asyncio turns Nagle off only on sockets that say TCP;
    # with proto 0, kept-alive connections stall 40 ms per response.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise BindError(
            f"cannot listen on {host}:{port} for the {what}: {e.strerror}. Is another "
            "backend running there? Stop it or pass another port."
        ) from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock
