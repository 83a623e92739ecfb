"""HTTP Lambda: API Gateway HTTP API (payload v2) -> mangum -> the Starlette apps.

Requests under `/api/` (and `/version`) go to the Convex HTTP API; every
other path is an HTTP action (`functions/http.py`), as on the dev server's
two ports. Logs are structured (Powertools, with the request id); each
call is also a metric (EMF): calls and errors by kind, duration.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from mangum import Mangum

from runtime.functions.executor import CallResult

from .backend import lambda_backend

__all__ = ["handler"]

logger = Logger(service="pyconvex-http")
metrics = Metrics(namespace="pyconvex", service="http")

_app: Mangum | None = None
_loop: asyncio.AbstractEventLoop | None = None
"""The container's event loop: mangum runs every request on the current
loop, so the handler keeps one and makes it current on each invocation."""


def _log_call(result: CallResult) -> None:
    fields = {"function": result.path, "kind": result.kind, "ms": round(result.duration * 1000, 3)}
    if result.ok:
        logger.info("call", extra=fields)
    else:
        logger.warning("call failed", extra={**fields, "error": result.logged_message})
    metrics.add_metric(name=f"{result.kind}_calls", unit=MetricUnit.Count, value=1)
    if not result.ok:
        metrics.add_metric(name=f"{result.kind}_errors", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="call_ms", unit=MetricUnit.Milliseconds, value=result.duration * 1000)


class _ByPath:
    """ASGI app: `/api/...` and `/version` to the HTTP API, the rest to HTTP actions."""

    def __init__(self, api: Any, site: Any) -> None:
        self._api = api
        self._site = site

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        app = self._api if path.startswith("/api/") or path == "/version" else self._site
        await app(scope, receive, send)


def _build() -> Mangum:
    from runtime.http.api import make_api_app
    from runtime.http.site import make_site_app

    backend, _ = lambda_backend(on_call=_log_call)
    return Mangum(_ByPath(make_api_app(backend), make_site_app(backend)), lifespan="off")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _app, _loop
    metrics.add_metric(name="invocations", unit=MetricUnit.Count, value=1)
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    asyncio.set_event_loop(_loop)
    if _app is None:
        _app = _build()
    else:
        lambda_backend()  # refreshes the environment variables when due
    response: dict[str, Any] = _app(event, context)
    return response


def reset() -> None:
    """Drop the container's app and loop (tests that change the settings)."""
    global _app, _loop
    _app = None
    if _loop is not None:
        asyncio.set_event_loop(None)
        _loop.close()
        _loop = None
