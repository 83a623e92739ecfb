"""The dashboard's data (runtime/dashboard/ is its page), behind the admin key.

    GET  /api/dashboard/tables             the tables, each with its indexes,
                                           search indexes and document validator
    POST /api/dashboard/documents          {"table", "numItems", "cursor",
                                           "order", "filter": {"field": value}}
                                           one page, newest first by default
    POST /api/dashboard/documents/update   {"id", "fields"}: replace a document
                                           (the schema validates it)
    POST /api/dashboard/documents/delete   {"ids": [...]}
    GET  /api/dashboard/scheduled          the latest scheduled functions
    POST /api/dashboard/scheduled/cancel   {"id"}
    GET  /api/dashboard/crons              the cron jobs of crons.py
    GET  /api/dashboard/files              the latest stored files, with URLs
    POST /api/dashboard/files/delete       {"id"}

Values travel as convex_encoded_json. Writes are transactions of their own,
as a mutation's are: refused whole when the schema refuses the result; live
queries see them like any commit. The functions, the call log and the
environment variables come from the admin routes (`admin_routes.py`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from runtime.backend import Backend
from runtime.codegen import SYSTEM_TABLES
from runtime.database import Transaction
from runtime.errors import PlatformError, ValidationError
from runtime.files.storage import STORAGE_TABLE
from runtime.functions.scheduler import JOBS_TABLE
from runtime.functions.scheduler import cancel as cancel_job
from runtime.snapshot.export import user_tables
from runtime.values import InvalidValueError, decode_json, encode_json

from .admin_routes import admin_only
from .wire import BadRequest, read_json_object

if TYPE_CHECKING:
    from runtime.sync.hub import SyncHub

__all__ = ["dashboard_routes"]

PAGE_LIMIT = 200
"""The most documents one page of the dashboard asks for."""


def _refused(e: Exception) -> BadRequest:
    message = e.message if isinstance(e, PlatformError) else str(e)
    code = e.code if isinstance(e, PlatformError) else "INVALID"
    return BadRequest(400, code, message)


def dashboard_routes(backend: Backend, hub: SyncHub | None = None) -> list[Route]:
    db = backend.database

    def committed() -> None:
        if hub is not None:  # the dev server's live queries read the new commit
            hub.wake()

    def write(fn: Any) -> Any:
        try:
            value = db.mutation(fn).value
        except (PlatformError, ValidationError, InvalidValueError, ValueError) as e:
            raise _refused(e) from None
        committed()
        return value

    async def tables(request: Request) -> Response:
        def read() -> dict[str, Any]:
            schema = backend.registry.schema
            names = user_tables(db)
            out = []
            for name in names:
                table = schema.table(name) if schema is not None else None
                out.append(
                    {
                        "name": name,
                        "validator": table.validator.to_json() if table is not None else None,
                        "indexes": dict(table.indexes) if table is not None else {},
                        "searchIndexes": {
                            i: {
                                "searchField": s.search_field,
                                "filterFields": list(s.filter_fields),
                            }
                            for i, s in (table.search_indexes.items() if table else [])
                        },
                    }
                )
            return {"tables": out, "system": list(SYSTEM_TABLES)}

        return JSONResponse(await run_in_threadpool(read))

    async def documents(request: Request) -> Response:
        payload = await read_json_object(request)
        table = payload.get("table")
        if not isinstance(table, str) or not table:
            raise BadRequest(400, "BAD_REQUEST", 'the body needs "table"')
        size = payload.get("numItems", 50)
        if not isinstance(size, int) or not 1 <= size <= PAGE_LIMIT:
            raise BadRequest(400, "BAD_REQUEST", f"numItems is 1..{PAGE_LIMIT}")
        order = payload.get("order", "desc")
        if order not in ("asc", "desc"):
            raise BadRequest(400, "BAD_REQUEST", 'order is "asc" or "desc"')
        raw_filter = payload.get("filter") or {}
        if not isinstance(raw_filter, dict):
            raise BadRequest(400, "BAD_REQUEST", 'filter is {"field": value, ...}')
        try:
            wanted = {k: decode_json(v) for k, v in raw_filter.items()}
        except InvalidValueError as e:
            raise BadRequest(400, "BAD_REQUEST", f"filter values: {e}") from None
        cursor = payload.get("cursor")

        def read(tx: Transaction) -> Any:
            q = tx.query(table, system=table in SYSTEM_TABLES).order(order)
            if wanted:
                q = q.filter(lambda f: f.and_(*(f.eq(f.field(k), v) for k, v in wanted.items())))
            return q.paginate({"numItems": size, "cursor": cursor})

        try:
            page = (await run_in_threadpool(db.query, read)).value
        except (PlatformError, ValidationError, ValueError) as e:
            raise _refused(e) from None
        return JSONResponse(
            {
                "documents": [encode_json(d) for d in page["page"]],
                "cursor": page["continueCursor"],
                "done": page["isDone"],
            }
        )

    async def update(request: Request) -> Response:
        payload = await read_json_object(request)
        doc_id, fields = payload.get("id"), payload.get("fields")
        if not isinstance(doc_id, str) or not isinstance(fields, dict):
            raise BadRequest(400, "BAD_REQUEST", 'the body is {"id": "...", "fields": {...}}')
        try:
            value = decode_json(fields)
        except InvalidValueError as e:
            raise BadRequest(400, "BAD_REQUEST", f"fields: {e}") from None
        value = {k: v for k, v in value.items() if k not in ("_id", "_creationTime")}

        def replace(tx: Transaction) -> Any:
            if tx.get(doc_id) is None:
                raise BadRequest(404, "NOT_FOUND", f"there is no document {doc_id}")
            tx.replace(doc_id, value)
            return encode_json(tx.get(doc_id))

        return JSONResponse({"document": await run_in_threadpool(write, replace)})

    async def delete(request: Request) -> Response:
        payload = await read_json_object(request)
        ids = payload.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or not ids:
            raise BadRequest(400, "BAD_REQUEST", 'the body is {"ids": ["...", ...]}')

        def remove(tx: Transaction) -> int:
            gone = 0
            for doc_id in ids:
                if tx.get(doc_id) is not None:
                    tx.delete(doc_id)
                    gone += 1
            return gone

        return JSONResponse({"deleted": await run_in_threadpool(write, remove)})

    async def scheduled(request: Request) -> Response:
        def read(tx: Transaction) -> Any:
            return tx.query(JOBS_TABLE, system=True).order("desc").take(100)

        jobs = (await run_in_threadpool(db.query, read)).value
        return JSONResponse({"jobs": [encode_json(j) for j in jobs]})

    async def cancel(request: Request) -> Response:
        payload = await read_json_object(request)
        job_id = payload.get("id")
        await run_in_threadpool(write, lambda tx: cancel_job(tx, job_id, time.time() * 1000))
        return JSONResponse({"canceled": job_id})

    async def crons(request: Request) -> Response:
        jobs = backend.registry.crons
        return JSONResponse(
            {
                "crons": [
                    {
                        "name": c.name,
                        "schedule": _describe(c.schedule),
                        "function": c.path,
                        "args": encode_json(c.args),
                    }
                    for c in jobs
                ]
            }
        )

    async def files(request: Request) -> Response:
        storage = backend.files
        if storage is None:
            return JSONResponse({"files": [], "enabled": False})

        def read(tx: Transaction) -> Any:
            docs = tx.query(STORAGE_TABLE, system=True).order("desc").take(100)
            return [{**encode_json(d), "url": storage.url_in(tx, d["_id"])} for d in docs]

        listed = (await run_in_threadpool(db.query, read)).value
        return JSONResponse({"files": listed, "enabled": True})

    async def delete_file(request: Request) -> Response:
        payload = await read_json_object(request)
        storage = backend.files
        if storage is None:
            raise BadRequest(400, "NO_FILE_STORAGE", "this backend has no file storage")
        try:
            await run_in_threadpool(storage.delete, payload.get("id"))
        except (PlatformError, ValueError) as e:
            raise _refused(e) from None
        committed()
        return JSONResponse({"deleted": payload.get("id")})

    return admin_only(
        backend,
        [
            Route("/api/dashboard/tables", tables, methods=["GET"]),
            Route("/api/dashboard/documents", documents, methods=["POST"]),
            Route("/api/dashboard/documents/update", update, methods=["POST"]),
            Route("/api/dashboard/documents/delete", delete, methods=["POST"]),
            Route("/api/dashboard/scheduled", scheduled, methods=["GET"]),
            Route("/api/dashboard/scheduled/cancel", cancel, methods=["POST"]),
            Route("/api/dashboard/crons", crons, methods=["GET"]),
            Route("/api/dashboard/files", files, methods=["GET"]),
            Route("/api/dashboard/files/delete", delete_file, methods=["POST"]),
        ],
    )


def _describe(schedule: Any) -> str:
    """`cron 0 * * * *` or `every 30 s` (cron_schedule's Interval and CronSpec)."""
    if hasattr(schedule, "text"):
        return f"cron {schedule.text}"
    return f"every {schedule.ms / 1000:g} s"
