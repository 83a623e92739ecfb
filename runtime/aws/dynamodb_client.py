"""The Lambdas' DynamoDB client: DynamoDB's JSON API over `signed_http`,
called as botocore's low-level client is (`client.query(TableName=...)`,
the same request and response dicts, binary as bytes) and failing as it
does (`botocore.exceptions.ClientError` with the same `response`, the
cancellation reasons of a cancelled transaction included), so the store
cannot tell them apart. It has no waiters or paginators (the store uses
neither).

`from_env()` answers None where the environment needs botocore
(`signed_http.py`); `runtime/aws/backend.py` then builds botocore's client.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from .signed_http import (
    THROTTLING_CODES,
    HttpResponse,
    SignedHttp,
    credentials_from_env,
    endpoint_from_env,
    region_from_env,
)

__all__ = ["DynamoDBClient", "operation_name"]

TARGET_PREFIX = "DynamoDB_20120810."
_HEADERS = {"Content-Type": "application/x-amz-json-1.0"}


def operation_name(method: str) -> str:
    """`transact_write_items` -> `TransactWriteItems` (every DynamoDB operation
    is its snake_case method name in PascalCase)."""
    return "".join(part.capitalize() for part in method.split("_"))


def _encode(value: Any) -> str:
    """json.dumps' fallback: binary attribute values travel as base64."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode()
    raise TypeError(f"a DynamoDB request cannot carry {type(value).__name__}: {value!r}")


def _decode(obj: dict[str, Any]) -> dict[str, Any]:
    """json's object hook: a binary attribute value ({"B": text} or
    {"BS": [text]}, the only dicts of one key whose value is text or a list
    of text) gets its bytes back. A map with one attribute named B or BS
    has a dict (an attribute value) there, never text."""
    if len(obj) == 1:
        if type(b := obj.get("B")) is str:
            return {"B": base64.b64decode(b)}
        if type(bs := obj.get("BS")) is list and all(type(x) is str for x in bs):
            return {"BS": [base64.b64decode(x) for x in bs]}
    return obj


def _error(response: HttpResponse) -> tuple[str, str, dict[str, Any]]:
    """(code, message, the body's fields but its type): botocore puts the
    modeled error's fields (Message, CancellationReasons, Item) beside Error."""
    try:
        body = json.loads(response.body, object_hook=_decode) if response.body else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    kind = str(body.pop("__type", "") or "")
    code = kind.rsplit("#", 1)[-1] or _STATUS_CODES.get(response.status, str(response.status))
    message = str(body.get("message") or body.get("Message") or "")
    return code, message, body


_STATUS_CODES = {500: "InternalServerError", 503: "ServiceUnavailable"}


def _crc_ok(response: HttpResponse) -> bool:
    expected = response.headers.get("x-amz-crc32")
    return expected is None or int(expected) == zlib.crc32(response.body)


def _retry(response: HttpResponse) -> bool:
    """Worth another attempt: a server error, throttling, a torn body."""
    if response.status >= 500:
        return True
    if response.status == 200:
        return not _crc_ok(response)
    code, _, _ = _error(response)
    return code in THROTTLING_CODES


class DynamoDBClient:
    """DynamoDB's operations as botocore's low-level client names them."""

    def __init__(self, http: SignedHttp) -> None:
        self._http = http
        self.meta = SimpleNamespace(endpoint_url=http.endpoint, region_name=http.region)
        self.observers: list[Callable[[str, dict[str, Any]], None]] = []
        """Called with (operation, params) before each call (counting, tests)."""

    @classmethod
    def from_env(cls) -> DynamoDBClient | None:
        """The client the environment describes, or None (botocore's case)."""
        credentials, region = credentials_from_env(), region_from_env()
        if credentials is None or region is None:
            return None
        endpoint = endpoint_from_env("DYNAMODB", "dynamodb", region)
        return cls(SignedHttp(endpoint, region=region, service="dynamodb", credentials=credentials))

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """One operation (`GetItem`, ...): its response, or ClientError."""
        for observe in self.observers:
            observe(operation, params)
        body = json.dumps(params, separators=(",", ":"), default=_encode).encode()
        headers = {**_HEADERS, "X-Amz-Target": TARGET_PREFIX + operation}
        try:
            response = self._http.request("POST", "/", body, headers, retry=_retry)
        except OSError as e:
            from botocore.exceptions import EndpointConnectionError

            raise EndpointConnectionError(endpoint_url=f"{self._http.endpoint} ({e})") from e
        metadata = {
            "HTTPStatusCode": response.status,
            "RequestId": response.headers.get("x-amzn-requestid", ""),
            "RetryAttempts": response.attempts - 1,
        }
        if response.status == 200 and _crc_ok(response):
            parsed: dict[str, Any] = json.loads(response.body, object_hook=_decode)
            parsed["ResponseMetadata"] = metadata
            return parsed
        from botocore.exceptions import ClientError

        rest: dict[str, Any] = {}
        if response.status == 200:
            code, message = "CRC32CheckFailed", "the response's CRC-32 did not match"
        else:
            code, message, rest = _error(response)
        error = {**rest, "Error": {"Code": code, "Message": message}, "ResponseMetadata": metadata}
        raise ClientError(error, operation)  # type: ignore[arg-type]

    def close(self) -> None:
        self._http.close()

    def __getattr__(self, name: str) -> Callable[..., dict[str, Any]]:
        if name.startswith("_") or not name.islower():
            raise AttributeError(name)
        operation = operation_name(name)

        def call(**params: Any) -> dict[str, Any]:
            return self.call(operation, params)

        call.__name__ = name
        return call
