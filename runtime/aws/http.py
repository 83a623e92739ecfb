"""HTTP Lambda: API Gateway HTTP API (payload v2) -> mangum -> the Starlette apps.

Requests under `/api/` (and `/version`, and the dashboard's page under
`/_dashboard`) go to the Convex HTTP API; every other path is an HTTP action
(`functions/http.py`), as on the dev server's two ports. Logs are structured
(Powertools, with the request id); each call is also a metric (EMF): calls
and errors by kind, duration.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from mangum import Mangum

from .backend import lambda_backend
from .observe import count, log_call, logger, metrics

__all__ = ["handler"]

_app: Mangum | None = None
_build_lock = threading.Lock()
_local = threading.local()
"""Each thread's event loop: mangum runs a request on the current loop, so
the handler keeps one per thread (Lambda has one; the local harness calls
handlers from several threads) and makes it current on each invocation."""
_loops: list[asyncio.AbstractEventLoop] = []


class _ByPath:
    """ASGI app: `/api/...`, `/version` and `/_dashboard...` to the HTTP API,
    the rest to HTTP actions (the dev server has two ports; here one origin)."""

    def __init__(self, api: Any, site: Any) -> None:
        self._api = api
        self._site = site

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        to_api = path.startswith(("/api/", "/_dashboard/")) or path in ("/version", "/_dashboard")
        app = self._api if to_api else self._site
        await app(scope, receive, send)


def _build() -> Mangum:
    from runtime.http.api import make_api_app
    from runtime.http.site import make_site_app
    from runtime.limits import FILE_UPLOAD_LAMBDA_BYTES

    backend, _ = lambda_backend(on_call=log_call)
    # An upload arrives whole in the Lambda's event: its payload cap is the limit.
    api = make_api_app(backend, upload_limit=(FILE_UPLOAD_LAMBDA_BYTES, "FILE_UPLOAD_LAMBDA_BYTES"))
    return Mangum(_ByPath(api, make_site_app(backend)), lifespan="off")


def _thread_loop() -> asyncio.AbstractEventLoop:
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = _local.loop = asyncio.new_event_loop()
        with _build_lock:
            _loops.append(loop)
    return loop


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _app
    count("http_invocations")
    asyncio.set_event_loop(_thread_loop())
    with _build_lock:
        if _app is None:
            _app = _build()
            app = _app
        else:
            app = _app
            lambda_backend()  # refreshes the environment variables when due
    response: dict[str, Any] = app(event, context)
    return response


def reset() -> None:
    """Drop the container's app and loops (tests that change the settings)."""
    global _app
    _app = None
    asyncio.set_event_loop(None)
    with _build_lock:
        for loop in _loops:
            loop.close()
        _loops.clear()
    _local.__dict__.clear()
