"""The file routes of the HTTP API: uploads to upload URLs, and file URLs.

    POST /api/storage/upload?token=...   the body is the file, its
                                         `Content-Type` the file's type, an
                                         optional `Digest: sha-256=<b64>`
                                         its checksum -> 200 {"storageId"}
    GET|HEAD /api/storage/{key}          the file's bytes (`get_url`'s URL);
                                         single byte ranges answer 206

This is the flow of Convex's clients unchanged: a mutation hands out an
upload URL, the browser POSTs the file to it, a mutation saves the id.

An upload's token is checked before a byte of the body is read, and a
declared `Content-Length` past the limit is refused at once (413). The body
then streams into `FileStorage.accept_upload`, which runs in a worker thread,
through a memory stream of a few chunks: a 200 MB upload holds a few chunks
in memory, and a body that grows past the limit mid-stream stops there
(413). A refused, failed or interrupted upload stores nothing.

A file URL needs no credentials: the unguessable key is the capability, so
`<img src>` works from any origin. The blob is streamed in BLOB_READ_CHUNK
pieces, read in a worker thread.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import BinaryIO, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from runtime.backend import Backend
from runtime.files.storage import FileMeta, FileStorage, FileTooLarge, storage_id_of
from runtime.limits import BLOB_READ_CHUNK, FILE_BYTES, UPLOAD_QUEUE_CHUNKS

from .wire import BadRequest, json_bytes

__all__ = ["UploadLimit", "byte_range", "sha256_of_digest", "storage_routes"]

UploadLimit = tuple[int, str]
"""The most bytes one upload may hold, and the limit's name for messages."""

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
T = TypeVar("T")


def _files(backend: Backend) -> FileStorage:
    if backend.files is None:
        raise BadRequest(
            404,
            "FILE_STORAGE_NOT_CONFIGURED",
            "this deployment has no file storage (on AWS the stack's bucket is named by "
            "PYCONVEX_FILES_BUCKET)",
        )
    return backend.files


def _too_large(declared: int, limit: UploadLimit) -> FileTooLarge:
    size, name = limit
    return FileTooLarge(
        f"the file is {declared:,} bytes; this deployment takes at most {size:,} bytes in one "
        f"upload ({name}). Upload a smaller file",
        limit=name,
    )


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The [start, end) of a single `Range: bytes=...` request on a file of
    `size` bytes; None to serve the whole file (no header, several ranges,
    or one that is malformed: RFC 9110 lets a server ignore those).
    Raises ValueError for a well-formed range the file cannot satisfy."""
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise ValueError("unsatisfiable")
        return max(0, size - suffix), size
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise ValueError("unsatisfiable")
    end = size if not last else min(int(last) + 1, size)
    return start, end


def sha256_of_digest(header: str | None) -> str | None:
    """The SHA-256 (base64) an upload's `Digest: sha-256=<base64>` header
    names (RFC 3230, as Convex's upload URLs take it); None without one.
    A header that names other algorithms only is ignored; a malformed
    sha-256 value is refused."""
    if not header:
        return None
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() != "sha-256":
            continue
        value = value.strip()
        try:
            ok = len(base64.b64decode(value, validate=True)) == 32
        except (binascii.Error, ValueError):
            ok = False
        if not ok:
            raise BadRequest(
                400,
                "BAD_DIGEST",
                f"the Digest header's sha-256 must be the base64 of a SHA-256 digest, "
                f"got {value[:80]!r}",
            )
        return value
    return None


def storage_routes(backend: Backend, upload_limit: UploadLimit | None = None) -> list[Route]:
    limit: UploadLimit = upload_limit or (FILE_BYTES, "FILE_BYTES")

    async def upload(request: Request) -> Response:
        files = _files(backend)
        ticket = await anyio.to_thread.run_sync(
            files.check_upload, request.query_params.get("token")
        )
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit[0]:
            raise _too_large(int(declared), limit)
        content_type = request.headers.get("content-type") or None
        sha256 = sha256_of_digest(request.headers.get("digest"))

        def accept(chunks: Iterator[bytes]) -> str:
            return files.accept_upload(
                ticket,
                chunks,
                content_type,
                max_bytes=limit[0],
                limit_name=limit[1],
                sha256=sha256,
            )

        storage_id = await _consume_body(request, accept)
        return Response(json_bytes({"storageId": storage_id}), media_type="application/json")

    async def serve(request: Request) -> Response:
        files = _files(backend)
        found = await _lookup(files, request.path_params["key"])
        etag = f'"{found.sha256}"'
        headers = {
            "Content-Type": found.content_type or "application/octet-stream",
            "Accept-Ranges": "bytes",
            "ETag": etag,
            "Digest": f"sha-256={found.sha256}",  # Convex's file URLs send it too
            # Served as the uploader declared it, never as a browser guesses
            # (an "image" that sniffs as HTML would run in the API's origin).
            "X-Content-Type-Options": "nosniff",
        }
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        try:
            window = byte_range(request.headers.get("range"), found.size)
        except ValueError:
            return Response(
                status_code=416,
                headers={"Content-Range": f"bytes */{found.size}", "Accept-Ranges": "bytes"},
            )
        start, end = window if window is not None else (0, found.size)
        headers["Content-Length"] = str(end - start)
        status = 200
        if window is not None:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{found.size}"
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers)
        stream = await anyio.to_thread.run_sync(files.open, found, start, end)
        if stream is None:  # the blob went after its document was read (a delete)
            raise _not_found()
        return StreamingResponse(_chunks(stream), status_code=status, headers=headers)

    return [
        Route("/api/storage/upload", upload, methods=["POST"]),
        Route("/api/storage/{key}", serve, methods=["GET", "HEAD"]),
    ]


def _not_found() -> BadRequest:
    return BadRequest(
        404, "FILE_NOT_FOUND", "there is no file at this URL (it was deleted, or never stored)"
    )


async def _lookup(files: FileStorage, key: str) -> FileMeta:
    try:
        storage_id_of(key)  # the key's shape: 32 hex characters
    except ValueError:
        raise _not_found() from None
    found = await anyio.to_thread.run_sync(files.meta, key)
    if found is None:
        raise _not_found()
    return found


async def _consume_body(request: Request, consume: Callable[[Iterator[bytes]], T]) -> T:
    """`consume(chunks)` in a worker thread, fed the request's body through a
    memory stream of UPLOAD_QUEUE_CHUNKS chunks (the reader waits while it is
    full). If `consume` stops early (raises), the rest of the body is not
    read; if the body ends early (the client went away), `consume` sees a
    BadRequest from its chunks instead of a short body."""
    send, receive = anyio.create_memory_object_stream[bytes](UPLOAD_QUEUE_CHUNKS)
    interrupted: list[BaseException] = []

    async def pump() -> None:
        """The body into the stream; stops when the consuming side stops."""
        try:
            async for chunk in request.stream():
                if chunk:
                    await send.send(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the consuming side gave up (too large, used URL): stop reading
        except BaseException as e:  # a client that went away, a cancellation
            interrupted.append(e)  # seen by `chunks` before the stream ends
            if not isinstance(e, Exception):
                raise
        finally:
            send.close()

    async def take() -> bytes:
        """The next chunk and those queued behind it, joined: one hop to the
        event loop (and one write) for several chunks when the body arrives
        faster than it is consumed."""
        parts = [await receive.receive()]
        while len(parts) < UPLOAD_QUEUE_CHUNKS:
            try:
                parts.append(receive.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream):
                break
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def chunks() -> Iterator[bytes]:
        while True:
            try:
                yield anyio.from_thread.run(take)
            except anyio.EndOfStream:
                if interrupted:
                    raise BadRequest(
                        400, "UPLOAD_INTERRUPTED", "the upload's body ended early"
                    ) from None
                return

    def run() -> T | Exception:
        try:
            return consume(chunks())
        except Exception as e:
            return e
        finally:
            anyio.from_thread.run_sync(receive.close)

    async with anyio.create_task_group() as group:
        group.start_soon(pump)
        outcome = await anyio.to_thread.run_sync(run)
        # Refused midway (too large): stop reading a body that is not wanted,
        # even if the client is slow to send the next chunk.
        group.cancel_scope.cancel()
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


async def _chunks(stream: BinaryIO) -> AsyncIterator[bytes]:
    """The blob's bytes, BLOB_READ_CHUNK at a time, each read in a worker thread."""
    try:
        while chunk := await anyio.to_thread.run_sync(stream.read, BLOB_READ_CHUNK):
            yield chunk
    finally:
        await anyio.to_thread.run_sync(stream.close)
