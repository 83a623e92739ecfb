"""Request and response plumbing shared by the HTTP routes.

Client mistakes are raised, not returned: a route raises `BadRequest` (or
the executor a `RequestError`, the stores and snapshots a `PlatformError`)
and each app maps them to one response with `client_error_handlers`
(Starlette's `exception_handlers`), so no route repeats the translation.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import IO, Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from runtime.errors import PlatformError
from runtime.limits import ARGUMENTS_BYTES
from runtime.values import ClientJsonError, loads_client

__all__ = [
    "BadRequest",
    "client_error_handlers",
    "error_response",
    "json_bytes",
    "read_body",
    "read_json_object",
    "spool_body",
    "valid_unicode",
]


class BadRequest(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> Response:
    return Response(
        json_bytes({"code": code, "message": message}),
        status_code=status,
        media_type="application/json",
    )


Handler = Callable[[Request, Exception], Awaitable[Response]]


def client_error_handlers(*, plain_text: bool = False) -> dict[Any, Handler]:
    """Starlette `exception_handlers`: `BadRequest` answers its status,
    a `PlatformError` (a `RequestError` from the executor, an invalid
    environment variable or import) its class's `status`, else 400, as
    `{"code", "message"}` JSON (or the message as plain text: the site port,
    whose clients are browsers and curl)."""

    async def respond(request: Request, exc: Exception) -> Response:
        if isinstance(exc, BadRequest):
            status, code, message = exc.status, exc.code, exc.message
        elif isinstance(exc, PlatformError):
            status, code, message = getattr(exc, "status", 400), exc.code, exc.message
        else:  # only the classes below are registered
            raise exc
        if plain_text:
            return PlainTextResponse(valid_unicode(message), status_code=status)
        return error_response(status, code, message)

    return {BadRequest: respond, PlatformError: respond}


def _check_declared_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if (
        declared is not None
        and declared.isdigit()
        and (len(declared) > 18 or int(declared) > limit)
    ):
        raise BadRequest(
            413, "REQUEST_TOO_LARGE", f"the request body is {declared} bytes; the limit is {limit}"
        )


async def _body_chunks(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The request body's chunks, refused with 413 past `limit` bytes
    (checked on the declared length and again while streaming)."""
    _check_declared_length(request, limit)
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(
                413, "REQUEST_TOO_LARGE", f"the request body exceeds the limit of {limit} bytes"
            )
        yield chunk


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past `limit` bytes."""
    return b"".join([chunk async for chunk in _body_chunks(request, limit)])


SPOOL_MEMORY_BYTES = 8 << 20
"""An upload larger than this goes to a temporary file, not memory."""


async def spool_body(request: Request, limit: int) -> IO[bytes]:
    """The request body in a temporary file (in memory up to
    SPOOL_MEMORY_BYTES), positioned at its start; 413 past `limit` bytes.
    The caller closes it (it is a context manager)."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115 - returned
    try:
        async for chunk in _body_chunks(request, limit):
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


async def read_json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object, parsed by `loads_client` (depth, integer
    digits and lone surrogates refused with 400)."""
    body = await read_body(request, ARGUMENTS_BYTES)
    try:
        payload = loads_client(body)
    except ClientJsonError as e:
        raise BadRequest(400, "BAD_JSON_BODY", f"the request body is refused: {e}") from None
    if not isinstance(payload, dict):
        raise BadRequest(400, "BAD_JSON_BODY", "the request body must be a JSON object")
    return payload


_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_unicode(text: str) -> str:
    """`text` with lone surrogates (from a function's message or log line)
    shown as U+FFFD, so it encodes as UTF-8."""
    return _SURROGATE.sub("\ufffd", text)


def json_bytes(body: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON. Values were checked (no lone surrogates), but
    error messages and log lines are any text a function made: a lone
    surrogate there is shown as U+FFFD rather than failing the answer."""
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return valid_unicode(text).encode()
