"""The Lambdas' DynamoDB client: DynamoDB's JSON API through `json_api`
(called and failing as botocore's low-level client, binary attribute
values as bytes), with DynamoDB's own checks: a body whose CRC-32 does not
match its x-amz-crc32 header is retried, as botocore does.

`from_env()` answers None where the environment needs botocore
(`signed_http.py`); `runtime/aws/backend.py` then builds botocore's client.
"""

from __future__ import annotations

import base64
import zlib
from typing import Any

from .json_api import JsonApiClient
from .signed_http import HttpResponse, SignedHttp, retry_server_errors

__all__ = ["DynamoDBClient"]

TARGET_PREFIX = "DynamoDB_20120810."


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


def _crc_ok(response: HttpResponse) -> bool:
    expected = response.headers.get("x-amz-crc32")
    return expected is None or int(expected) == zlib.crc32(response.body)


def _retry(response: HttpResponse) -> bool:
    """Worth another attempt: a server error, throttling, a torn body."""
    if response.status == 200:
        return not _crc_ok(response)
    return retry_server_errors(response)


class DynamoDBClient(JsonApiClient):
    """DynamoDB's operations as botocore's low-level client names them."""

    def __init__(self, http: SignedHttp) -> None:
        super().__init__(http, TARGET_PREFIX, object_hook=_decode, retry=_retry, intact=_crc_ok)

    @classmethod
    def from_env(cls) -> DynamoDBClient | None:
        """The client the environment describes, or None (botocore's case)."""
        http = SignedHttp.from_env("dynamodb", "DYNAMODB", "dynamodb")
        return None if http is None else cls(http)
