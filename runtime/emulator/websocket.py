"""The WebSocket API: each connection's life as the events API Gateway sends,
and the connections the Management API reaches.

A handshake is a `$connect` invocation (a non-2xx answer refuses it); each
text message is a `$default` one; the close, by either side, a
`$disconnect`. One connection's events are invoked one at a time, in
order (a queue and a task per connection); connections run in parallel,
in the shared `Workers`. A connection is reachable by posts only between a
successful `$connect` and its close, as on AWS (a post during `$connect` or
`$disconnect` is Gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response
from starlette.websockets import WebSocket

from .events import (
    WsConnection,
    api_gateway_id,
    iso_time,
    ws_connect_event,
    ws_disconnect_event,
    ws_message_event,
)
from .functions import LambdaFunction, Workers
from .limits import GatewayLimits

__all__ = ["Gone", "PayloadTooLarge", "WebSocketApi"]

log = logging.getLogger("runtime.emulator")

CLOSE_WAIT_SECONDS = 5.0
"""How long a connection the server closed waits for the client's close frame."""


class Gone(Exception):
    """The connection is not open (never was, or closed): GoneException, 410."""


class PayloadTooLarge(Exception):
    """A post over the message limit: PayloadTooLargeException, 413."""


@dataclass(eq=False)
class _Connection:
    info: WsConnection
    socket: WebSocket
    last_active: float
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closed_by_server: tuple[int, str] | None = None


class WebSocketApi:
    def __init__(
        self,
        function: LambdaFunction | None,
        workers: Workers,
        *,
        api_id: str,
        stage: str,
        limits: GatewayLimits,
        clock: Callable[[], float],
        random_bytes: Callable[[int], bytes],
    ) -> None:
        self._function = function
        self._workers = workers
        self._api_id = api_id
        self._stage = stage
        self._limits = limits
        self._clock = clock
        self._random = random_bytes
        self._live: dict[str, _Connection] = {}
        """Only touched on the event loop's thread."""

    def _new_id(self) -> str:
        return api_gateway_id(self._random(11))

    def live(self) -> list[str]:
        """The ids of the open connections."""
        return list(self._live)

    # ---- one connection ----------------------------------------------------------

    async def serve(self, socket: WebSocket) -> None:
        scope = socket.scope
        now = self._clock()
        host, port = scope.get("server") or ("127.0.0.1", 0)
        client = scope.get("client") or ("127.0.0.1", 0)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        user_agent = next((v for k, v in headers if k.lower() == "user-agent"), "")
        info = WsConnection(
            self._new_id(), int(now * 1000), client[0], user_agent, f"{host}:{port}",
            self._stage, self._api_id,
        )  # fmt: skip
        event = ws_connect_event(
            info,
            headers,
            scope.get("query_string", b"").decode("latin-1"),
            request_id=self._new_id(),
            now=now,
        )
        status, answer_headers = await self._connect(event)
        if not 200 <= status < 300:
            await _deny(socket, status)
            return
        protocol = next(
            (str(v) for k, v in answer_headers.items() if k.lower() == "sec-websocket-protocol"),
            None,
        )
        await socket.accept(subprotocol=protocol)
        conn = _Connection(info, socket, last_active=now)
        self._live[info.connection_id] = conn
        worker = asyncio.create_task(self._deliver(conn))
        code, reason = 1006, ""
        try:
            code, reason = await self._receive(conn)
        finally:
            self._live.pop(info.connection_id, None)
            if conn.closed_by_server is not None:
                code, reason = conn.closed_by_server
            disconnect = ws_disconnect_event(
                info, code, reason, request_id=self._new_id(), now=self._clock()
            )
            conn.queue.put_nowait(disconnect)
            conn.queue.put_nowait(None)
            await worker

    async def _connect(self, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The `$connect` answer's status and headers (no handler: 403)."""
        if self._function is None:
            return 403, {}
        try:
            answer = await self._workers.invoke(self._function, event, self._limits.ws_timeout)
        except TimeoutError:
            log.warning("$connect timed out after %.0f s", self._limits.ws_timeout)
            return 504, {}
        except Exception:
            log.exception("the WebSocket handler failed on $connect")
            return 500, {}
        if not isinstance(answer, dict):
            return 200, {}  # a proxy integration answer without a status is a success
        status = answer.get("statusCode", 200)
        return (status if isinstance(status, int) else 500), dict(answer.get("headers") or {})

    async def _receive(self, conn: _Connection) -> tuple[int, str]:
        """Queue each text message until the close; the close code and reason."""
        limit = self._limits.ws_message_bytes
        while True:
            if conn.closed_by_server is not None:
                try:
                    message = await asyncio.wait_for(conn.socket.receive(), CLOSE_WAIT_SECONDS)
                except TimeoutError:
                    return conn.closed_by_server
            else:
                message = await conn.socket.receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                return int(message.get("code") or 1005), str(message.get("reason") or "")
            if kind != "websocket.receive" or conn.closed_by_server is not None:
                continue
            text = message.get("text")
            if text is None:
                await self._close(conn, 1003, "Binary frames are not supported")
            elif len(text.encode()) > limit:
                await self._close(conn, 1009, f"Message too big (over {limit} bytes)")
            else:
                now = self._clock()
                conn.last_active = now
                event = ws_message_event(
                    conn.info, text, request_id=self._new_id(), message_id=self._new_id(), now=now
                )
                conn.queue.put_nowait(event)

    async def _deliver(self, conn: _Connection) -> None:
        """Invoke the handler with the connection's events, one at a time."""
        while (event := await conn.queue.get()) is not None:
            route = event["requestContext"]["routeKey"]
            if self._function is None:
                continue
            try:
                await self._workers.invoke(self._function, event, self._limits.ws_timeout)
            except TimeoutError:
                log.warning("%s timed out after %.0f s", route, self._limits.ws_timeout)
                await self._notify(conn, "Endpoint request timed out", event)
            except Exception:
                log.exception("the WebSocket handler failed on %s", route)
                await self._notify(conn, "Internal server error", event)

    async def _notify(self, conn: _Connection, message: str, event: dict[str, Any]) -> None:
        """What API Gateway tells a client whose message's integration failed."""
        if event["requestContext"]["routeKey"] != "$default":
            return
        body = {
            "message": message,
            "connectionId": conn.info.connection_id,
            "requestId": event["requestContext"]["requestId"],
        }
        with contextlib.suppress(Gone):
            await self.post(conn.info.connection_id, json.dumps(body).encode())

    async def _close(self, conn: _Connection, code: int, reason: str) -> None:
        if conn.closed_by_server is not None:
            return
        conn.closed_by_server = (code, reason)
        self._live.pop(conn.info.connection_id, None)
        async with conn.send_lock:
            with contextlib.suppress(Exception):  # the client may be gone already
                await conn.socket.close(code, reason)

    # ---- the Management API ------------------------------------------------------

    def _open(self, connection_id: str) -> _Connection:
        conn = self._live.get(connection_id)
        if conn is None or conn.closed_by_server is not None:
            raise Gone(connection_id)
        return conn

    async def post(self, connection_id: str, data: bytes) -> None:
        """Send `data` as one message (text when it is UTF-8, as posts are)."""
        if len(data) > self._limits.ws_message_bytes:
            raise PayloadTooLarge(f"Message too long (over {self._limits.ws_message_bytes} bytes)")
        conn = self._open(connection_id)
        async with conn.send_lock:
            self._open(connection_id)
            try:
                try:
                    await conn.socket.send_text(data.decode())
                except UnicodeDecodeError:
                    await conn.socket.send_bytes(data)
            except Exception as e:  # closed under us
                raise Gone(connection_id) from e
        conn.last_active = self._clock()

    def describe(self, connection_id: str) -> dict[str, Any]:
        """GetConnection's answer."""
        conn = self._open(connection_id)
        return {
            "connectedAt": iso_time(conn.info.connected_at / 1000),
            "identity": {"sourceIp": conn.info.source_ip, "userAgent": conn.info.user_agent},
            "lastActiveAt": iso_time(conn.last_active),
        }

    async def delete(self, connection_id: str) -> None:
        """Close the connection from the server's side (DeleteConnection)."""
        await self._close(self._open(connection_id), 1000, "")


async def _deny(socket: WebSocket, status: int) -> None:
    """Refuse a handshake with `status` (where the server can answer HTTP
    to a WebSocket request; otherwise a close, which it reports as 403)."""
    if "websocket.http.response" in socket.scope.get("extensions", {}):
        await socket.send_denial_response(Response(status_code=status))
    else:
        await socket.close(1008)
