"""Admin routes for snapshots (the CLI's `export` and `import`).

    GET  /api/admin/tables              {"tables": [name, ...]} (the app's)
    POST /api/admin/export/page         {"table", "cursor", "numItems"} ->
                                        {"documents": [...], "cursor", "done"}
    POST /api/admin/export/files        {"cursor", "numItems"} -> {"files":
                                        [_storage/documents.jsonl lines],
                                        "cursor", "done"}
    GET  /api/admin/export/file/{id}    a file's bytes, streamed (404: gone)
    POST /api/admin/import?table=T&mode=create|append|replace&format=jsonl|zip
         body: the file, spooled to a temporary file and read line by line
         with the caps of `runtime.snapshot.format.LineReader` (a zip with
         files may be up to IMPORT_ARCHIVE_BYTES; its files are streamed from
         the spooled zip into the blob store). A file that fails validation
         answers 400 (code IMPORT_INVALID, the message names the line) and
         nothing is written;
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
from collections.abc import AsyncIterator, Iterator
from typing import IO, Any, BinaryIO

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from runtime.backend import Backend
from runtime.database import Transaction
from runtime.errors import PlatformError
from runtime.files.storage import STORAGE_TABLE, FileStorage
from runtime.limits import BLOB_READ_CHUNK, IMPORT_ARCHIVE_BYTES, IMPORT_BYTES
from runtime.snapshot import (
    FilesImport,
    ImportMode,
    TableImport,
    apply_import,
    check_files,
    check_import,
    import_with_files,
    parse_import,
    read_zip_files,
    user_tables,
)
from runtime.snapshot.files import metadata_line
from runtime.values import encode_json, is_id_for

from .wire import BadRequest, read_json_object, spool_body

__all__ = ["snapshot_routes"]

_MODES = ("create", "append", "replace")


def snapshot_routes(backend: Backend) -> list[Route]:
    db = backend.database

    async def tables(request: Request) -> Response:
        return JSONResponse({"tables": await run_in_threadpool(user_tables, db)})

    def file_storage() -> FileStorage:
        if backend.files is None:
            raise BadRequest(400, "NO_FILE_STORAGE", "this backend has no file storage")
        return backend.files

    async def export_files(request: Request) -> Response:
        payload = await read_json_object(request)
        file_storage()
        size = payload.get("numItems", 500)
        if not isinstance(size, int) or not 1 <= size <= 5000:
            raise BadRequest(400, "BAD_REQUEST", "numItems is 1..5000")
        cursor = payload.get("cursor")

        def read(tx: Transaction) -> Any:
            q = tx.query(STORAGE_TABLE, system=True)
            return q.paginate({"numItems": size, "cursor": cursor})

        page = (await run_in_threadpool(db.query, read)).value
        return JSONResponse(
            {
                "files": [metadata_line(d) for d in page["page"]],
                "cursor": page["continueCursor"],
                "done": page["isDone"],
            }
        )

    async def export_file(request: Request) -> Response:
        files = file_storage()
        storage_id = request.path_params["id"]
        if not is_id_for(STORAGE_TABLE, storage_id):
            raise BadRequest(
                400, "INVALID_ID", f"{storage_id!r} is not a storage id (an id of _storage)"
            )
        found = await run_in_threadpool(files.meta, storage_id)
        stream = None if found is None else await run_in_threadpool(files.open, found)
        if found is None or stream is None:
            raise BadRequest(404, "FILE_NOT_FOUND", f"there is no file {storage_id}")
        return StreamingResponse(
            _read_chunks(stream),
            media_type="application/octet-stream",
            headers={"Content-Length": str(found.size)},
        )

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
        upload = await spool_body(request, IMPORT_ARCHIVE_BYTES if fmt == "zip" else IMPORT_BYTES)

        def prepare() -> tuple[list[TableImport], FilesImport | None]:
            parsed = parse_import(upload, fmt, table)  # type: ignore[arg-type]
            found = read_zip_files(upload) if fmt == "zip" and table is None else None
            if found is not None:
                file_storage()
            check_import(db, [*parsed, *([found.table] if found else [])], mode)  # type: ignore[arg-type]
            if found is not None:
                check_files(db, found, mode)  # type: ignore[arg-type]
            return parsed, found

        try:
            parsed, found = await run_in_threadpool(prepare)
        except BaseException:
            upload.close()
            raise
        # The writes read the documents from the upload again: it stays
        # open until the import is over.
        return StreamingResponse(
            _run_import(backend, parsed, found, mode, upload),  # type: ignore[arg-type]
            media_type="application/x-ndjson",
        )

    return [
        Route("/api/admin/tables", tables, methods=["GET"]),
        Route("/api/admin/export/page", export_page, methods=["POST"]),
        Route("/api/admin/export/files", export_files, methods=["POST"]),
        Route("/api/admin/export/file/{id}", export_file, methods=["GET"]),
        Route("/api/admin/import", import_, methods=["POST"]),
    ]


def _read_chunks(stream: BinaryIO) -> Iterator[bytes]:
    """A blob in chunks (Starlette reads a plain iterator in a thread)."""
    with stream:
        while chunk := stream.read(BLOB_READ_CHUNK):
            yield chunk


async def _run_import(
    backend: Backend,
    parsed: list[TableImport],
    found: FilesImport | None,
    mode: ImportMode,
    upload: IO[bytes],
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
            if found is not None and backend.files is not None:
                report = import_with_files(
                    backend.database, backend.files, upload, parsed, found, mode, progress
                )
            else:
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
