"""HTTP actions (`functions/http.py`) as a Starlette app: the site port.

Each request is matched against the app's `HttpRouter`; the handler runs
with an action context, `async def` handlers on the server's event loop and
plain ones in a worker thread (with the body read beforehand). Its
print/logging output and outcome go to the call log like any call's.
"""

from __future__ import annotations

import asyncio
import time
import traceback

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from runtime.backend import Backend
from runtime.errors import ConvexError
from runtime.functions.context import ActionCtx, AsyncActionCtx
from runtime.functions.executor import CallResult
from runtime.functions.logs import LogLines, capture
from runtime.limits import HTTP_ACTION_BODY_BYTES

from .wire import BadRequest, read_body

__all__ = ["make_site_app"]

_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]


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
            body = await read_body(request, HTTP_ACTION_BODY_BYTES)
        except BadRequest as e:
            return PlainTextResponse(e.message, status_code=e.status)
        request._body = body  # Starlette's cache: the handler's request.body()/json() read it

        result = CallResult(f"{route.method} {path}", "http")
        lines = LogLines()
        started = time.perf_counter()
        response: Response
        with capture(lines):
            try:
                if route.action.is_async:
                    answer = await asyncio.wait_for(
                        route.action.handler(AsyncActionCtx(executor, None), request),
                        executor.action_timeout,
                    )
                else:
                    answer = await run_in_threadpool(
                        route.action.handler, ActionCtx(executor, None), request
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
            except Exception as e:
                result.error = e
                if isinstance(e, TimeoutError):
                    message = f"the HTTP action did not finish within {executor.action_timeout:g} s"
                elif isinstance(e, ConvexError):
                    message = f"Uncaught ConvexError: {e.data!r}"
                else:
                    message = f"Uncaught {type(e).__name__}: {e}"
                    result.traceback = traceback.format_exc()
                result.logged_message = message
                result.error_message = "Server Error" if backend.prod else message
                response = PlainTextResponse(result.error_message, status_code=500)
        result.duration = time.perf_counter() - started
        result.log_lines = lines.finish()
        if executor.on_call is not None:
            executor.on_call(result)
        return response

    return Starlette(routes=[Route("/{path:path}", handle, methods=_METHODS)])
