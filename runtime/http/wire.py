"""Request and response plumbing shared by the HTTP routes."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from runtime.limits import ARGUMENTS_BYTES

__all__ = ["BadRequest", "error_response", "json_bytes", "read_body", "read_json_object"]


class BadRequest(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past `limit` bytes (checked on the
    declared length and again while streaming)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(
            413, "REQUEST_TOO_LARGE", f"the request body is {declared} bytes; the limit is {limit}"
        )
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(
                413, "REQUEST_TOO_LARGE", f"the request body exceeds the limit of {limit} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json_object(request: Request) -> dict[str, Any]:
    body = await read_body(request, ARGUMENTS_BYTES)
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadRequest(400, "BAD_JSON_BODY", f"the request body is not valid JSON: {e}") from None
    if not isinstance(payload, dict):
        raise BadRequest(400, "BAD_JSON_BODY", "the request body must be a JSON object")
    return payload


def json_bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
