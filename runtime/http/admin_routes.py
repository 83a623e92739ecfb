"""Admin routes (need `Authorization: Convex <admin key>`): environment
variables, snapshot export and import, the functions with their
validators, and the call log. The CLI and the dashboard are their clients.

    GET /api/admin/functions   {"functions": [{"path", "kind", "visibility",
                               "args", "returns"}], "http": [{"method", "path"}]}
                               (validators as Convex's validator JSON, or null)
    GET /api/admin/logs?after=SEQ&wait=SECONDS
                               {"entries": [...], "next": SEQ}: the calls after
                               SEQ (`CallHistory`), waiting up to `wait` seconds
                               for one; without `after`, the last ones. Refusals
are raised (`BadRequest`, `PlatformError`) and answered by the app's
`client_error_handlers`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from runtime.backend import Backend
from runtime.functions import FunctionRegistry

from .snapshot_routes import snapshot_routes
from .wire import BadRequest, read_json_object

__all__ = ["admin_only", "admin_routes", "function_listing"]

Endpoint = Callable[[Request], Awaitable[Response]]


def admin_only(backend: Backend, routes: list[Route]) -> list[Route]:
    """The routes, each refusing a request without the admin key (401)."""

    def guard(endpoint: Endpoint) -> Endpoint:
        async def guarded(request: Request) -> Response:
            if not backend.is_admin(request.headers.get("authorization")):
                raise BadRequest(
                    401,
                    "ADMIN_KEY_REQUIRED",
                    "this route needs 'Authorization: Convex <admin key>' (the dev server "
                    "keeps its key in <data>/admin_key)",
                )
            return await endpoint(request)

        return guarded

    return [Route(r.path, guard(r.endpoint), methods=r.methods) for r in routes]


def admin_routes(backend: Backend) -> list[Route]:
    async def env_list(request: Request) -> Response:
        variables = await run_in_threadpool(backend.environment.list)
        return JSONResponse({"variables": variables})

    async def env_update(request: Request) -> Response:
        payload = await read_json_object(request)
        changes = payload.get("changes")
        if not isinstance(changes, dict):
            raise BadRequest(
                400, "BAD_REQUEST", 'the body is {"changes": {"NAME": "value" or null}}'
            )
        variables = await run_in_threadpool(backend.environment.update, changes)
        return JSONResponse({"variables": variables})

    async def functions(request: Request) -> Response:
        return JSONResponse(function_listing(backend.registry))

    async def logs(request: Request) -> Response:
        after = _number(request, "after", int)
        wait = _number(request, "wait", float) or 0.0
        entries, last = await backend.history.wait_after(after, wait)
        return JSONResponse({"entries": entries, "next": last})

    routes = [
        Route("/api/admin/functions", functions, methods=["GET"]),
        Route("/api/admin/logs", logs, methods=["GET"]),
        Route("/api/admin/env", env_list, methods=["GET"]),
        Route("/api/admin/env", env_update, methods=["POST"]),
        *snapshot_routes(backend),
    ]
    return admin_only(backend, routes)


def function_listing(registry: FunctionRegistry) -> dict[str, Any]:
    """The loaded functions, sorted by path, with their validators' JSON."""
    return {
        "functions": [
            {
                "path": path,
                "kind": definition.kind,
                "visibility": "internal" if definition.internal else "public",
                "args": definition.args.to_json() if definition.args is not None else None,
                "returns": definition.returns.to_json() if definition.returns is not None else None,
            }
            for path, definition in sorted(registry.functions.items())
        ],
        "http": sorted(
            (
                {"method": r.method, "path": r.path + ("*" if r.prefix else "")}
                for r in (registry.http.routes if registry.http is not None else [])
            ),
            key=lambda r: (r["path"], r["method"]),
        ),
    }


def _number(request: Request, name: str, kind: type[int] | type[float]) -> Any:
    text = request.query_params.get(name)
    if text is None:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise BadRequest(400, "BAD_REQUEST", f"?{name}= must be a number, not {text!r}") from None
    if value < 0:
        raise BadRequest(400, "BAD_REQUEST", f"?{name}= must not be negative")
    return value
