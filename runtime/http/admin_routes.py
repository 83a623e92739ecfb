"""Admin routes (need `Authorization: Convex <admin key>`): environment
variables, snapshot export and import. The CLI is their client."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from runtime.backend import Backend
from runtime.errors import PlatformError

from .wire import BadRequest, error_response, read_json_object

__all__ = ["admin_routes"]


def admin_routes(backend: Backend) -> list[Route]:
    def refused(request: Request) -> Response | None:
        if backend.is_admin(request.headers.get("authorization")):
            return None
        return error_response(
            401,
            "ADMIN_KEY_REQUIRED",
            "this route needs 'Authorization: Convex <admin key>' (the dev server keeps "
            "its key in <data>/admin_key)",
        )

    async def env_list(request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        variables = await run_in_threadpool(backend.environment.list)
        return JSONResponse({"variables": variables})

    async def env_update(request: Request) -> Response:
        if (answer := refused(request)) is not None:
            return answer
        try:
            payload = await read_json_object(request)
            changes = payload.get("changes")
            if not isinstance(changes, dict):
                raise BadRequest(
                    400, "BAD_REQUEST", 'the body is {"changes": {"NAME": "value" or null}}'
                )
            variables = await run_in_threadpool(backend.environment.update, changes)
        except BadRequest as e:
            return error_response(e.status, e.code, e.message)
        except PlatformError as e:
            return error_response(400, e.code, e.message)
        return JSONResponse({"variables": variables})

    routes: list[Any] = [
        Route("/api/admin/env", env_list, methods=["GET"]),
        Route("/api/admin/env", env_update, methods=["POST"]),
    ]
    return routes
