"""AWS's JSON 1.0 protocol (DynamoDB, SQS) over `signed_http`, called as
botocore's low-level clients are (`client.send_message(QueueUrl=...)`: the
same request and response dicts) and failing as they do
(`botocore.exceptions.ClientError` with the same `response`;
EndpointConnectionError when no answer came), so the code using one cannot
tell them apart. It has no waiters or paginators (the Lambdas use neither).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from .signed_http import (
    HttpResponse,
    SignedHttp,
    client_error,
    connection_error,
    error_of,
    metadata,
    retry_server_errors,
)

__all__ = ["JsonApiClient", "operation_name", "sqs_from_env"]

_CONTENT_TYPE = "application/x-amz-json-1.0"


def operation_name(method: str) -> str:
    """`transact_write_items` -> `TransactWriteItems` (every operation of
    these APIs is its snake_case method name in PascalCase)."""
    return "".join(part.capitalize() for part in method.split("_"))


def _encode(value: Any) -> str:
    """json.dumps' fallback: blobs travel as base64 (the protocol's rule)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode()
    raise TypeError(f"an AWS JSON request cannot carry {type(value).__name__}: {value!r}")


class JsonApiClient:
    """One JSON 1.0 API at one endpoint: operations as botocore names them."""

    def __init__(
        self,
        http: SignedHttp,
        target_prefix: str,
        *,
        object_hook: Callable[[dict[str, Any]], Any] | None = None,
        retry: Callable[[HttpResponse], bool] = retry_server_errors,
        intact: Callable[[HttpResponse], bool] = lambda _: True,
    ) -> None:
        """`target_prefix`: X-Amz-Target before the operation
        (`DynamoDB_20120810.`); `object_hook`: turns the response's blobs
        back into bytes (they are shape-specific); `retry`: whether an
        answer is worth another attempt; `intact`: whether a 200's body
        arrived whole (else ClientError)."""
        self._http = http
        self._target = target_prefix
        self._hook = object_hook
        self._retry = retry
        self._intact = intact
        self.meta = SimpleNamespace(endpoint_url=http.endpoint, region_name=http.region)
        self.observers: list[Callable[[str, dict[str, Any]], None]] = []
        """Called with (operation, params) before each call (counting, tests)."""

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """One operation (`GetItem`, `SendMessage`, ...): its response, or ClientError."""
        for observe in self.observers:
            observe(operation, params)
        body = json.dumps(params, separators=(",", ":"), default=_encode).encode()
        headers = {"Content-Type": _CONTENT_TYPE, "X-Amz-Target": self._target + operation}
        try:
            response = self._http.request("POST", "/", body, headers, retry=self._retry)
        except OSError as e:
            raise connection_error(self._http.endpoint, e) from e
        if response.status == 200 and self._intact(response):
            parsed: dict[str, Any] = (
                json.loads(response.body, object_hook=self._hook) if response.body else {}
            )
            parsed["ResponseMetadata"] = metadata(response)
            return parsed
        if response.status == 200:
            torn: tuple[str, str, dict[str, Any]] = (
                "CRC32CheckFailed",
                "the response's CRC-32 did not match",
                {},
            )
            raise client_error(operation, response, torn)
        raise client_error(operation, response, error_of(response, self._hook))

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


def sqs_from_env() -> JsonApiClient | None:
    """SQS's client as the environment describes it (AWS_ENDPOINT_URL_SQS,
    ...), or None where botocore's is needed (`signed_http.py`)."""
    http = SignedHttp.from_env("sqs", "SQS", "sqs")
    return None if http is None else JsonApiClient(http, "AmazonSQS.")
