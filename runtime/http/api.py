"""The Convex HTTP API (PROTOCOL.md, "HTTP API") as a Starlette app.

    POST /api/query | /api/mutation | /api/action   {"path", "args", "format"}
    POST /api/run/{module path}/{export}             {"args", "format"}
    POST /api/function                               any kind (the CLI's `run`,
                                                     the JS client's `function`)
    POST /api/query_ts, /api/query_at_ts             queries at one timestamp
                                                     across calls (consistent.py)
    POST /api/debug_event                            the JS client's analytics
    POST /api/storage/upload, GET /api/storage/{key} upload URLs and file URLs
                                                     (storage_routes.py)
    /_dashboard, /api/dashboard/...                  the dashboard (admin key;
                                                     dashboard_routes.py)
    GET /...                                         with `static`: a web app's
                                                     files, at the API's origin

`args` is an object or a one-element array of one. A function that ran
answers 200 with `{"status": "success" | "error", ...}`; a request refused
before running answers 4xx with `{"code", "message"}` (raised as `BadRequest`
or `RequestError`, answered by `wire.client_error_handlers`). `Authorization:
Convex <admin key>` may call internal functions and the admin routes
(`admin_routes.py`); `Bearer <jwt>` calls as a user (`auth_header.py`). The same app serves the dev server and, through
mangum, the AWS shell.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from runtime.backend import Backend
from runtime.functions.executor import CallResult, RequestError
from runtime.functions.registry import Kind
from runtime.limits import RETURN_VALUE_BYTES
from runtime.sync.calls import call_async
from runtime.values import UNDEFINED, InvalidValueError, decode_json, encode_json, encode_plain_json

from .admin_routes import admin_routes
from .auth_header import caller_of
from .consistent import consistent_routes, run_query_at_ts
from .dashboard_routes import dashboard_routes
from .inline import InlineCalls
from .storage_routes import UploadLimit, storage_routes
from .wire import BadRequest, client_error_handlers, json_bytes, read_json_object

if TYPE_CHECKING:  # the Lambdas serve no sync socket: they never import the hub
    from runtime.sync.hub import SyncHub

__all__ = ["make_api_app", "result_body"]

FORMATS = ("json", "convex_encoded_json")
DASHBOARD = Path(__file__).resolve().parent.parent / "dashboard"
"""The dashboard's page: static files shipped in the package (runtime/dashboard)."""


def _call_args(payload: dict[str, Any]) -> tuple[Any, str]:
    fmt = payload.get("format", "json")
    if fmt not in FORMATS:
        raise BadRequest(
            400, "BAD_FORMAT", f"format must be one of {', '.join(FORMATS)}, not {fmt!r}"
        )
    args = payload.get("args", {})
    if isinstance(args, list):
        if len(args) != 1:
            raise BadRequest(
                400, "ARGUMENTS_INVALID", "args given as an array must hold exactly one object"
            )
        args = args[0]
    try:
        return decode_json(args), fmt
    except InvalidValueError as e:
        raise BadRequest(400, "ARGUMENTS_INVALID", f"args are not Convex values: {e}") from None


def result_body(result: CallResult, fmt: str, *, prod: bool) -> dict[str, Any]:
    encode = encode_json if fmt == "convex_encoded_json" else encode_plain_json
    lines = [] if prod else result.log_lines
    if result.ok:
        return {"status": "success", "value": encode(result.value), "logLines": lines}
    body: dict[str, Any] = {
        "status": "error",
        "errorMessage": result.error_message,
        "logLines": lines,
    }
    if result.error_data is not UNDEFINED:
        body["errorData"] = encode(result.error_data)
    return body


def _sync_routes(hub: SyncHub) -> list[Any]:
    from .sync_ws import sync_routes

    return list(sync_routes(hub))


def make_api_app(
    backend: Backend,
    hub: SyncHub | None = None,
    *,
    upload_limit: UploadLimit | None = None,
    static: Path | None = None,
    inline: InlineCalls | None = None,
) -> Starlette:
    """`upload_limit`: the largest upload and its limit's name (default
    FILE_BYTES; the AWS shell passes its Lambda's payload cap). `static`: a
    folder served below every other route (`index.html` for a folder), so a
    web app and the API share one origin (the dev server's `--static`).
    `inline`: short queries and mutations run on the event loop (inline.py;
    the dev server); None: every call in a worker thread."""

    async def run_call(
        path: str, args: Any, kind: Kind | None, admin: bool, identity: dict[str, Any] | None
    ) -> CallResult:
        executor = backend.executor
        if inline is not None:
            try:
                _, defn = executor.resolve(path, kind=kind, public_only=not admin)
            except RequestError:  # `call` refuses it again (call_async), reporting it
                pass
            else:
                if defn.kind != "action":
                    go = functools.partial(
                        executor.call,
                        path,
                        args,
                        kind=kind,
                        public_only=not admin,
                        identity=identity,
                    )
                    if inline.on_loop(defn.handler):
                        return inline.run_on_loop(defn.handler, go)
                    return await anyio.to_thread.run_sync(inline.run_in_worker, defn.handler, go)
        return await call_async(  # actions in a pool of their own (runtime/sync/calls.py)
            executor, path, args, kind=kind, public_only=not admin, identity=identity
        )

    async def call(
        request: Request, path: str | None, kind: Kind | None, *, at_ts: bool = False
    ) -> Response:
        payload = await read_json_object(request)
        if path is None:
            path = payload.get("path")
            if not isinstance(path, str) or not path:
                raise BadRequest(400, "BAD_REQUEST", 'the body needs "path": "module:function"')
        args, fmt = _call_args(payload)
        admin, identity = await caller_of(backend, request.headers.get("authorization"))
        if at_ts:  # /api/query_at_ts: a public query at a past timestamp (consistent.py)
            result = await anyio.to_thread.run_sync(
                run_query_at_ts, backend, path, args, payload.get("ts"), identity
            )
        else:
            result = await run_call(path, args, kind, admin, identity)
        data = json_bytes(result_body(result, fmt, prod=backend.prod))
        if len(data) > RETURN_VALUE_BYTES:
            data = json_bytes(
                {
                    "status": "error",
                    "errorMessage": f"the result is {len(data)} bytes; the limit is "
                    f"{RETURN_VALUE_BYTES} (return less, or paginate)",
                    "logLines": [],
                }
            )
        return Response(data, media_type="application/json")

    def endpoint(kind: Kind | None, *, at_ts: bool = False) -> Any:
        async def handle(request: Request) -> Response:
            return await call(request, None, kind, at_ts=at_ts)

        return handle

    async def run(request: Request) -> Response:
        module, _, export = request.path_params["fn"].rpartition("/")
        if not module:
            raise BadRequest(
                404, "FUNCTION_NOT_FOUND", "use /api/run/<module path>/<function name>"
            )
        return await call(request, f"{module}:{export}", None)

    async def version(request: Request) -> Response:
        return Response("pyconvex dev backend\n", media_type="text/plain")

    routes = [
        Route("/api/query", endpoint("query"), methods=["POST"]),
        Route("/api/mutation", endpoint("mutation"), methods=["POST"]),
        Route("/api/action", endpoint("action"), methods=["POST"]),
        Route("/api/function", endpoint(None), methods=["POST"]),
        Route("/api/query_at_ts", endpoint("query", at_ts=True), methods=["POST"]),
        *consistent_routes(backend),
        Route("/api/run/{fn:path}", run, methods=["POST"]),
        Route("/version", version, methods=["GET"]),
        *admin_routes(backend),
        *storage_routes(backend, upload_limit),
        *(_sync_routes(hub) if hub is not None else []),
        *dashboard_routes(backend, hub),
        Mount("/_dashboard", app=StaticFiles(directory=DASHBOARD, html=True)),
    ]
    if static is not None:
        routes.append(Mount("/", app=StaticFiles(directory=static, html=True)))
    # Browsers call the API from the app's own origin (the JS ConvexHttpClient),
    # POST files to upload URLs and read file URLs (ranges, with their headers).
    cors = Middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "HEAD", "POST", "OPTIONS"],
        allow_headers=["Content-Type", "Authorization", "Convex-Client", "Range"],
        expose_headers=["Content-Range", "Accept-Ranges", "ETag", "Content-Length"],
        max_age=3600,
    )
    return Starlette(routes=routes, middleware=[cors], exception_handlers=client_error_handlers())
