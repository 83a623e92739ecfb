"""Admin routes (need `Authorization: Convex <admin key>`): environment
variables, snapshot export and import. The CLI is their client. Refusals
are raised (`BadRequest`, `PlatformError`) and answered by the app's
`client_error_handlers`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from runtime.backend import Backend

from .snapshot_routes import snapshot_routes
from .wire import BadRequest, read_json_object

__all__ = ["admin_only", "admin_routes"]

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

    routes = [
        Route("/api/admin/env", env_list, methods=["GET"]),
        Route("/api/admin/env", env_update, methods=["POST"]),
        *snapshot_routes(backend),
    ]
    return admin_only(backend, routes)
