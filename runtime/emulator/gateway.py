"""API Gateway on loopback: the HTTP API, the WebSocket API and its
Management API on one port, in front of in-process Lambda handlers.

Each HTTP request becomes the HTTP API's payload-2.0 event and the HTTP
Lambda's answer becomes the response (the idea of Chalice's local mode: the
same handler Lambda runs, fed the events API Gateway sends). WebSockets at
`/api/sync` and `/api/{version}/sync` (the paths the Convex clients open)
go to the WebSocket Lambda (`websocket.py`). `/@connections/{id}` (also
under a `/{stage}` prefix) is the Management API that `boto3`'s
`apigatewaymanagementapi` client reaches with `endpoint_url` set to this
server; its signatures are not checked.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from .events import BadLambdaResponse, HttpRequest, api_gateway_id, http_event, http_response
from .functions import ACCOUNT_ID, LambdaFunction, Workers
from .limits import GatewayLimits
from .websocket import Gone, PayloadTooLarge, WebSocketApi

__all__ = ["GatewayConfig", "LocalGateway"]

log = logging.getLogger("runtime.emulator")

SYNC_PATH = re.compile(r"/api(?:/[^/]+)?/sync")
CONNECTIONS_PATH = re.compile(r"(?:/[^/@]+)?/@connections/([^/]+)")


@dataclass(frozen=True)
class GatewayConfig:
    api_id: str = "pyconvexlocal"
    ws_stage: str = "local"
    """The WebSocket API's stage (WebSocket APIs have no `$default` stage;
    the HTTP API's events say `$default`)."""
    account_id: str = ACCOUNT_ID
    limits: GatewayLimits = field(default_factory=GatewayLimits)


class LocalGateway:
    """The ASGI app. `close()` after the server stopped: it joins the workers."""

    def __init__(
        self,
        http: LambdaFunction | None,
        ws: LambdaFunction | None,
        *,
        config: GatewayConfig | None = None,
        workers: int = 64,
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.config = config or GatewayConfig()
        self._http = http
        self._workers = Workers(workers)
        self._clock = clock
        self._random = random_bytes
        self.websockets = WebSocketApi(
            ws,
            self._workers,
            api_id=self.config.api_id,
            stage=self.config.ws_stage,
            limits=self.config.limits,
            clock=clock,
            random_bytes=random_bytes,
        )

    def close(self, grace: float | None = None) -> list[tuple[str, float]]:
        """Stop the handlers' threads (see `Workers.close`); the calls still
        running after `grace` seconds, as (function, seconds running)."""
        return self._workers.close(grace)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            socket = WebSocket(scope, receive, send)
            if SYNC_PATH.fullmatch(scope["path"]):
                await self.websockets.serve(socket)
            else:
                await socket.close(1008)  # refused before the handshake: HTTP 403
        elif scope["type"] == "http":
            managed = CONNECTIONS_PATH.fullmatch(scope["path"])
            try:
                if managed:
                    await self._management(scope, receive, send, managed.group(1))
                else:
                    await self._proxy(scope, receive, send)
            except ClientDisconnect:
                pass  # nobody to answer

    # ---- the HTTP API ------------------------------------------------------------

    async def _proxy(self, scope: Scope, receive: Receive, send: Send) -> None:
        limits = self.config.limits
        request_id = api_gateway_id(self._random(11))
        body = await _read_body(Request(scope, receive), limits.http_payload_bytes)
        if body is None:
            await _send(send, 413, {"message": "Request Entity Too Large"}, request_id)
            return
        if self._http is None:
            await _send(send, 404, {"message": "Not Found"}, request_id)
            return
        host, port = scope.get("server") or ("127.0.0.1", 0)
        request = HttpRequest(
            method=scope["method"],
            raw_path=(scope.get("raw_path") or scope["path"].encode()).decode("latin-1"),
            raw_query=scope.get("query_string", b"").decode("latin-1"),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
            body=body,
            source_ip=(scope.get("client") or ("127.0.0.1", 0))[0],
            protocol=f"HTTP/{scope.get('http_version', '1.1')}",
        )
        event = http_event(
            request,
            account_id=self.config.account_id,
            api_id=self.config.api_id,
            domain=f"{host}:{port}",
            request_id=request_id,
            now=self._clock(),
        )
        if len(json.dumps(event)) > limits.lambda_payload_bytes:
            log.warning("request over Lambda's %d-byte event limit", limits.lambda_payload_bytes)
            await _send(send, 413, {"message": "Request Entity Too Large"}, request_id)
            return
        try:
            answer = await self._workers.invoke(self._http, event, limits.http_timeout)
            if len(json.dumps(answer, default=str)) > limits.lambda_payload_bytes:
                raise BadLambdaResponse(
                    f"the response is over Lambda's {limits.lambda_payload_bytes}-byte limit"
                )
            status, headers, content = http_response(answer)
        except TimeoutError:
            log.warning("%s %s timed out after %.0f s", request.method, request.raw_path,
                        limits.http_timeout)  # fmt: skip
            await _send(send, 503, {"message": "Service Unavailable"}, request_id)
            return
        except BadLambdaResponse as e:
            log.error("%s %s: bad Lambda response: %s", request.method, request.raw_path, e)
            await _send(send, 500, {"message": "Internal Server Error"}, request_id)
            return
        except Exception:
            log.exception("the HTTP handler failed on %s %s", request.method, request.raw_path)
            await _send(send, 500, {"message": "Internal Server Error"}, request_id)
            return
        await _send_raw(send, status, headers, content, request_id)

    # ---- the Management API ------------------------------------------------------

    async def _management(self, scope: Scope, receive: Receive, send: Send, conn_id: str) -> None:
        method = scope["method"]
        request_id = api_gateway_id(self._random(11))
        ids = [("x-amzn-requestid", request_id)]
        api = self.websockets
        try:
            if method == "POST":
                data = await _read_body(
                    Request(scope, receive), self.config.limits.ws_message_bytes
                )
                if data is None:
                    raise PayloadTooLarge("Message too long")
                await api.post(conn_id, data)
                await _send_raw(send, 200, ids, b"", request_id)
            elif method == "GET":
                await _send(send, 200, api.describe(conn_id), request_id, ids)
            elif method == "DELETE":
                await api.delete(conn_id)
                await _send_raw(send, 204, ids, b"", request_id)
            else:
                message = {"message": f"{method} is not a Management API operation"}
                await _send(send, 405, message, request_id, ids)
        except Gone:
            # What API Gateway answers: the type in x-amzn-ErrorType and no
            # body (SDKs report an empty or null message for it).
            gone = [*ids, ("x-amzn-errortype", "GoneException")]
            await _send_raw(send, 410, gone, b"", request_id)
        except PayloadTooLarge as e:
            too_large = [*ids, ("x-amzn-errortype", "PayloadTooLargeException")]
            await _send(send, 413, {"message": str(e)}, request_id, too_large)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None past `limit` bytes (read no further)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _send(
    send: Send,
    status: int,
    payload: Any,
    request_id: str,
    headers: list[tuple[str, str]] | None = None,
) -> None:
    body = json.dumps(payload).encode()
    await _send_raw(send, status, headers or [], body, request_id, "application/json")


_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})


async def _send_raw(
    send: Send,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    request_id: str,
    content_type: str | None = None,
) -> None:
    raw = [(k.encode(), v.encode()) for k, v in headers if k.lower() not in _HOP_BY_HOP]
    if content_type is not None:
        raw.append((b"content-type", content_type.encode()))
    raw.append((b"content-length", str(len(body)).encode()))
    raw.append((b"apigw-requestid", request_id.encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
