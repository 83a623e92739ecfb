"""A scripted HTTP/1.1 server on 127.0.0.1 for the lean AWS clients' tests:
canned answers served in order, the requests it saw, the client ports they
came from (to tell kept-alive connections from new ones)."""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Script:
    """Canned answers (status, body, headers) served in order; the requests
    seen as (method-less path with query, headers, body)."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, bytes, dict[str, str]]] = []
        self.seen: list[tuple[str, dict[str, str], bytes]] = []
        self.methods: list[str] = []
        self.ports: list[int] = []
        self.close_after_each = False
        self.crc32 = True
        """Add DynamoDB's x-amz-crc32 header to answers without one."""

    def answer(self, status: int, body: Any, **headers: str) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.answers.append((status, data, headers))


@contextmanager
def scripted_server() -> Iterator[tuple[Script, str]]:
    """(the script, its http://127.0.0.1:<port> endpoint), stopped on exit."""
    s = Script()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length", "0"))
            s.seen.append((self.path, dict(self.headers), self.rfile.read(n)))
            s.methods.append(self.command)
            s.ports.append(self.client_address[1])
            status, data, headers = s.answers.pop(0) if s.answers else (200, b"{}", {})
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            if s.crc32 and not any(k.lower() == "x-amz-crc32" for k in headers):
                headers["x-amz-crc32"] = str(zlib.crc32(data))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            self.wfile.flush()
            if s.close_after_each:  # kept alive as far as the client knows
                self.close_connection = True

        do_GET = do_DELETE = do_PUT = do_HEAD = do_POST

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield s, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
