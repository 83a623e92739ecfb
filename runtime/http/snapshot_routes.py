"""Admin routes for snapshots (the CLI's `export` and `import`).

    GET  /api/admin/tables              {"tables": [name, ...]}
    POST /api/admin/export/page         {"table", "cursor", "numItems"} ->
                                        {"documents": [...], "cursor", "done"}
    POST /api/admin/import?table=T&mode=create|append|replace&format=jsonl|zip
         body: the file, spooled to a temporary file and read line by line
         with the caps of `runtime.snapshot.format.LineReader`. A file that
         fails validation answers 400 (code IMPORT_INVALID, the message names
         the line) and nothing is written;
         otherwise the answer streams NDJSON progress lines
         {"phase", "done", "total"} and ends with {"result": {...}} or
         {"error": {"code", "message"}} (the import was undone).

Export pages are each one consistent read; the export as a whole is not a
point-in-time snapshot across pages and tables.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from typing import IO, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from runtime.backend import Backend
from runtime.database import Transaction
from runtime.errors import PlatformError
from runtime.limits import IMPORT_BYTES
from runtime.snapshot import (
    ImportMode,
    TableImport,
    apply_import,
    check_import,
    parse_import,
)
from runtime.values import encode_json

from .wire import BadRequest, read_json_object, spool_body

__all__ = ["snapshot_routes"]

_MODES = ("create", "append", "replace")


def snapshot_routes(backend: Backend) -> list[Route]:
    db = backend.database

    async def tables(request: Request) -> Response:
        return JSONResponse({"tables": await run_in_threadpool(db.tables)})

    async def export_page(request: Request) -> Response:
        payload = await read_json_object(request)
        table = payload.get("table")
        if not isinstance(table, str):
            raise BadRequest(400, "BAD_REQUEST", 'the body needs "table"')
        size = payload.get("numItems", 500)
        if not isinstance(size, int) or not 1 <= size <= 5000:
            raise BadRequest(400, "BAD_REQUEST", "numItems is 1..5000")
        cursor = payload.get("cursor")

        def read(tx: Transaction) -> Any:
            return tx.query(table).paginate({"numItems": size, "cursor": cursor})

        page = (await run_in_threadpool(db.query, read)).value
        return JSONResponse(
            {
                "documents": [encode_json(d) for d in page["page"]],
                "cursor": page["continueCursor"],
                "done": page["isDone"],
            }
        )

    async def import_(request: Request) -> Response:
        params = request.query_params
        mode = params.get("mode", "create")
        fmt = params.get("format", "jsonl")
        table = params.get("table") or None
        if mode not in _MODES:
            raise BadRequest(400, "BAD_REQUEST", f"mode is one of {', '.join(_MODES)}")
        if fmt not in ("jsonl", "zip"):
            raise BadRequest(400, "BAD_REQUEST", "format is jsonl or zip")
        if fmt == "jsonl" and table is None:
            raise BadRequest(400, "BAD_REQUEST", "a .jsonl import needs ?table=")
        upload = await spool_body(request, IMPORT_BYTES)

        def prepare() -> list[TableImport]:
            parsed = parse_import(upload, fmt, table)  # type: ignore[arg-type]
            check_import(db, parsed, mode)  # type: ignore[arg-type]
            return parsed

        try:
            parsed = await run_in_threadpool(prepare)
        except BaseException:
            upload.close()
            raise
        # The writes read the documents from the upload again: it stays
        # open until the import is over.
        return StreamingResponse(
            _run_import(backend, parsed, mode, upload),  # type: ignore[arg-type]
            media_type="application/x-ndjson",
        )

    return [
        Route("/api/admin/tables", tables, methods=["GET"]),
        Route("/api/admin/export/page", export_page, methods=["POST"]),
        Route("/api/admin/import", import_, methods=["POST"]),
    ]


async def _run_import(
    backend: Backend, parsed: list[TableImport], mode: ImportMode, upload: IO[bytes]
) -> AsyncIterator[bytes]:
    """Run the import in a thread; yield its progress as NDJSON lines. The
    upload is closed when the import is over."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    last_phase, last_done = "", 0

    def progress(phase: str, done: int, total: int) -> None:
        nonlocal last_phase, last_done
        # At most ~100 lines per phase.
        if phase != last_phase or done == total or done - last_done >= max(1, total // 100):
            last_phase, last_done = phase, done
            loop.call_soon_threadsafe(
                queue.put_nowait, {"phase": phase, "done": done, "total": total}
            )

    def work() -> None:
        try:
            report = apply_import(backend.database, parsed, mode, progress)
            line: dict[str, Any] = {
                "result": {"imported": report.imported, "deleted": report.deleted}
            }
        except PlatformError as e:
            line = {"error": {"code": e.code, "message": e.message}}
        except Exception as e:
            line = {"error": {"code": "IMPORT_FAILED", "message": f"{type(e).__name__}: {e}"}}
        finally:
            upload.close()
        loop.call_soon_threadsafe(queue.put_nowait, line)
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=work, name="import", daemon=True).start()
    while (item := await queue.get()) is not None:
        yield (json.dumps(item) + "\n").encode()
