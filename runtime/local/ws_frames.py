"""The dev server's WebSocket protocol: uvicorn's, plus a direct text write.

Sending one message through ASGI costs a task step, Starlette's and the
server's state checks, and a frame object built and serialized by the
websockets library: about as much Python as the socket write itself, paid
once per socket. One write watched by a thousand sockets pays it a thousand
times. This protocol offers the sync endpoint (`runtime/http/sync_ws.py`) an
ASGI extension, `pyconvex.write_text`: a plain function that frames the text
by hand and writes it to the transport at once, or returns False when it
cannot (handshake not done, closing, closed, the transport's buffer past its
high-water mark, an extension such as compression negotiated). On False the
caller sends through ASGI as before, so what it wrote and what ASGI writes
stay in order.
"""

from __future__ import annotations

import struct
from typing import cast

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

from runtime.http.sync_ws import DIRECT_TEXT

__all__ = ["DirectTextProtocol", "text_frame"]


def text_frame(data: bytes) -> bytes:
    """One unfragmented, unmasked text frame (RFC 6455 §5.2): a server's."""
    size = len(data)
    if size < 126:
        return bytes((0x81, size)) + data
    if size < 65536:
        return struct.pack("!BBH", 0x81, 126, size) + data
    return struct.pack("!BBQ", 0x81, 127, size) + data


class DirectTextProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O websockets protocol with `pyconvex.write_text`
    in each connection's scope extensions."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if self.handshake_initiated and not self.close_sent:  # accepted: the scope exists
            extensions = cast("dict[str, object]", self.scope["extensions"])
            extensions[DIRECT_TEXT] = self.write_text

    def write_text(self, data: bytes) -> bool:
        """Write `data` (UTF-8 text) as one frame now; False if this
        connection cannot take a direct write (send through ASGI)."""
        if (
            not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or self.initial_response is not None
            or not self.writable.is_set()
            or self.conn.state is not State.OPEN
            or self.conn.extensions
            or self.transport.is_closing()
        ):
            return False
        self.transport.write(text_frame(data))
        return True
