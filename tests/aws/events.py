"""API Gateway event shapes, as AWS documents them (HTTP API payload format
2.0), and a Lambda context object for handler tests."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any


def http_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    query: str = "",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event for `$default` routing."""
    raw: str | None
    if body is None:
        raw = None
    elif isinstance(body, bytes):
        raw = base64.b64encode(body).decode()
    elif isinstance(body, str):
        raw = body
    else:
        raw = json.dumps(body)
    request_id = uuid.uuid4().hex
    all_headers = {
        "host": "abc123.execute-api.us-east-1.amazonaws.com",
        "user-agent": "tests",
        **(
            {"content-type": "application/json"}
            if body is not None and not isinstance(body, bytes)
            else {}
        ),
        **(headers or {}),
    }
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": all_headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "tests",
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        **(
            {"body": raw, "isBase64Encoded": isinstance(body, bytes)}
            if raw is not None
            else {"isBase64Encoded": False}
        ),
    }


@dataclass
class LambdaContext:
    """The attributes of the context object Lambda passes to a handler."""

    function_name: str = "pyconvex-http"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:pyconvex-http"
    aws_request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    log_group_name: str = "/aws/lambda/pyconvex-http"
    log_stream_name: str = "2026/11/24/[$LATEST]0000"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000
