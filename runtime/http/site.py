"""HTTP actions (`functions/http.py`) as a Starlette app: the site port.

Each request is matched against the app's `HttpRouter`; the handler runs
with an action context, `async def` handlers on the server's event loop and
plain ones in a worker thread (with the body read beforehand). Its
print/logging output and outcome go to the call log like any call's. A
handler that raises answers 500 with Convex's JSON body (`{"code":
"[Request ID: x] Server Error: Uncaught ...", "trace": ...}`, a ConvexError's
`data` too; in production only the code's first part and the data). A `Bearer` token's
identity reaches `ctx.auth`; a refused one answers 401 (`auth_header.py`).
"""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from runtime.backend import Backend
from runtime.functions.context import ActionCtx, AsyncActionCtx
from runtime.functions.executor import CallResult, action_timeout
from runtime.functions.failure import http_error_body
from runtime.limits import HTTP_ACTION_BODY_BYTES
from runtime.values import UNDEFINED, encode_json

from .auth_header import caller_of
from .wire import BadRequest, client_error_handlers, error_response, json_bytes, read_body

__all__ = ["make_site_app"]

_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]


def _failed(result: CallResult, *, prod: bool) -> Response:
    has_data = result.error_data is not UNDEFINED
    data = (
        encode_json(result.error_data) if has_data else None
    )  # Convex-encoded, as Convex sends it
    body = http_error_body(result.request_id, result.rendered, data, prod=prod, has_data=has_data)
    return Response(json_bytes(body), status_code=500, media_type="application/json")


def make_site_app(backend: Backend) -> Starlette:
    executor = backend.executor

    async def handle(request: Request) -> Response:
        router = backend.registry.http
        path = request.url.path
        method = "GET" if request.method == "HEAD" else request.method
        route = router.lookup(method, path) if router is not None else None
        if route is None:
            allowed = router.methods_for(path) if router is not None else []
            if allowed:
                return PlainTextResponse(
                    f"{request.method} is not routed for {path}",
                    status_code=405,
                    headers={"Allow": ", ".join(allowed)},
                )
            return PlainTextResponse("No matching routes found", status_code=404)
        try:
            _, identity = await caller_of(backend, request.headers.get("authorization"), site=True)
        except BadRequest as e:  # a refused token: JSON, as the HTTP API answers it
            return error_response(e.status, e.code, e.message)
        body = await read_body(request, HTTP_ACTION_BODY_BYTES)  # 413: client_error_handlers
        request._body = body  # Starlette's cache: the handler's request.body()/json() read it

        result = CallResult(f"{route.method} {path}", "http")
        response: Response | None = None
        with executor.observe(result):
            if route.action.is_async:
                try:
                    answer = await asyncio.wait_for(
                        route.action.handler(AsyncActionCtx(executor, identity), request),
                        executor.action_timeout,
                    )
                except TimeoutError:
                    raise action_timeout(executor.action_timeout) from None
            else:
                answer = await run_in_threadpool(
                    route.action.handler, ActionCtx(executor, identity), request
                )
            if not isinstance(answer, Response):
                raise TypeError(
                    f"an HTTP action must return a starlette Response, not {type(answer).__name__}"
                )
            body_size = len(getattr(answer, "body", b""))
            if body_size > HTTP_ACTION_BODY_BYTES:
                raise ValueError(
                    f"the response body is {body_size} bytes; the limit is "
                    f"{HTTP_ACTION_BODY_BYTES} (serve big payloads as stored files)"
                )
            response = answer
        if response is None:
            response = _failed(result, prod=backend.prod)
        return response

    return Starlette(
        routes=[Route("/{path:path}", handle, methods=_METHODS)],
        exception_handlers=client_error_handlers(plain_text=True),
    )
