"""Serve only requests addressed to a loopback name (DNS rebinding).

A web page on `evil.example` can point its own name at 127.0.0.1 and have the
visitor's browser call a dev server there: the browser believes it talks to
evil.example, so its same-origin rules allow reading the answers. What gives
that away is the `Host` header, which still says `evil.example`. The dev server
wraps its apps in `LoopbackHostOnly` and answers anything but `localhost`,
`*.localhost`, a 127.x.x.x address or `[::1]` (any port) with 403 and a
message; a WebSocket upgrade is refused the same way.

The AWS shell does not use it: API Gateway sends its own Host.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["LoopbackHostOnly", "is_loopback_host"]


def is_loopback_host(host: str) -> bool:
    """Whether a Host header value (name or address, with an optional port)
    names this machine's loopback interface."""
    host = host.strip().lower()
    if host.startswith("["):  # [v6 address] or [v6 address]:port
        end = host.find("]")
        if end < 0 or not (host[end + 1 :] == "" or _is_port(host[end + 2 :])):
            return False
        name = host[1:end]
    else:
        name, colon, port = host.partition(":")
        if colon and not _is_port(port):
            return False
    name = name.removesuffix(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _is_port(text: str) -> bool:
    return text.isdigit() and text.isascii() and len(text) <= 5


class LoopbackHostOnly:
    """ASGI middleware: 403 for HTTP and WebSocket requests whose Host is
    not a loopback name (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = _header(scope, b"host")
        if host is not None and is_loopback_host(host):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await receive()  # the websocket.connect the server hands every app first
        await _refuse(scope, send, host)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            text: str = value.decode("latin-1")
            return text
    return None


async def _refuse(scope: Scope, send: Send, host: str | None) -> None:
    shown = "no Host header" if host is None else f"Host {host[:100]!r}"
    message = (
        f"this dev server only answers requests for localhost, 127.0.0.1 or [::1] "
        f"({shown} refused, a guard against DNS rebinding). Open it as "
        "http://127.0.0.1:<port>, or deploy to serve other names.\n"
    ).encode()
    prefix = "websocket." if scope["type"] == "websocket" else ""
    if prefix and "websocket.http.response" not in scope.get("extensions", {}):
        # No denial response in this server: closing before accepting is a 403.
        await send({"type": "websocket.close", "code": 1008})
        return
    start: dict[str, Any] = {
        "type": f"{prefix}http.response.start",
        "status": 403,
        "headers": [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(message)).encode()),
        ],
    }
    await send(start)
    await send({"type": f"{prefix}http.response.body", "body": message})
