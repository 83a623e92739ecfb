"""A fan-out probe light enough not to be what it measures.

`bench/reactivity.py`'s fan-out figure: N WebSocket clients watch one query,
one write lands, and the figure is the time until the last client has the
Transition carrying it. With N `websockets` clients in the bench's own event
loop, parsing frames and JSON for 1,000 clients took longer than the server's
sending. Here each watcher is a raw socket: a hand-made handshake and masked
client frames to subscribe, then, per write, one `recv` per readable socket
and a search for the write's marker in the bytes (the server's frames are
unmasked text, so the marker appears as written). One `selectors` loop in
one thread; loopback only.
"""

from __future__ import annotations

import base64
import json
import os
import selectors
import socket
import struct
import time
from urllib.parse import urlsplit

__all__ = ["RawWatchers"]


def _frame(text: str) -> bytes:
    """A masked client text frame (RFC 6455 requires clients to mask)."""
    payload = text.encode()
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def _open(url: str, timeout: float) -> socket.socket:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    sock = socket.create_connection((host, port), timeout=timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the server closed the connection during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        status = head.split(b"\r\n", 1)[0]
        raise ConnectionError(f"handshake refused: {status!r}")
    return sock


class RawWatchers:
    """`count` raw WebSocket clients, each subscribed to `udf_path(args)`."""

    def __init__(
        self, url: str, count: int, udf_path: str, args: dict[str, object], timeout: float = 60
    ) -> None:
        self.timeout = timeout
        self.socks: list[socket.socket] = []
        subscribe = json.dumps(
            {
                "type": "ModifyQuerySet",
                "baseVersion": 0,
                "newVersion": 1,
                "modifications": [
                    {"type": "Add", "queryId": 0, "udfPath": udf_path, "args": [args]}
                ],
            }
        )
        for i in range(count):
            sock = _open(url, timeout)
            connect = {"type": "Connect", "sessionId": f"raw-{i}", "connectionCount": 0}
            sock.sendall(_frame(json.dumps(connect)) + _frame(subscribe))
            self.socks.append(sock)
        self.wait_for(b'"QueryUpdated"')  # every one has its first result
        for sock in self.socks:
            sock.setblocking(False)

    def wait_for(self, marker: bytes) -> float:
        """Block until every client has received bytes containing `marker`;
        the `perf_counter` time the last one did."""
        pending = {s.fileno(): (s, b"") for s in self.socks}
        sel = selectors.DefaultSelector()
        for s in self.socks:
            sel.register(s, selectors.EVENT_READ)
        deadline = time.perf_counter() + self.timeout
        last = time.perf_counter()
        keep = len(marker) - 1
        try:
            while pending:
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"{len(pending)} clients never received {marker!r}")
                for key, _ in sel.select(timeout=1.0):
                    fd = key.fd
                    if fd not in pending:
                        sel.unregister(key.fileobj)
                        continue
                    sock, tail = pending[fd]
                    try:
                        data = sock.recv(1 << 16)
                    except BlockingIOError:
                        continue
                    if not data:
                        raise ConnectionError("a watcher's connection closed")
                    seen = tail + data
                    if marker in seen:
                        last = time.perf_counter()
                        del pending[fd]
                        sel.unregister(sock)
                    else:
                        pending[fd] = (sock, seen[-keep:] if keep else b"")
        finally:
            sel.close()
        return last

    def send(self, text: str, index: int = 0) -> None:
        """Send one text frame from client `index` (e.g. a mutation)."""
        sock = self.socks[index]
        sock.setblocking(True)
        sock.sendall(_frame(text))
        sock.setblocking(False)

    def close(self) -> None:
        for sock in self.socks:
            sock.close()
