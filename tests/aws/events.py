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


def websocket_event(
    route: str, connection_id: str, body: str | None = None, *, stage: str = "prod"
) -> dict[str, Any]:
    """A WebSocket API event for `$connect`, `$disconnect` or `$default`, in
    the shape API Gateway's documentation gives (Lambda proxy integration)."""
    now = int(time.time() * 1000)
    domain = "abcd1234.execute-api.us-east-1.amazonaws.com"
    event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
    context: dict[str, Any] = {
        "routeKey": route,
        "eventType": event_type,
        "extendedRequestId": uuid.uuid4().hex[:16] + "=",
        "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
        "messageDirection": "IN",
        "stage": stage,
        "connectedAt": now - 5,
        "requestTimeEpoch": now,
        "identity": {"sourceIp": "192.0.2.1", "userAgent": "tests"},
        "requestId": uuid.uuid4().hex[:16] + "=",
        "domainName": domain,
        "connectionId": connection_id,
        "apiId": "abcd1234",
    }
    event: dict[str, Any] = {"requestContext": context, "isBase64Encoded": False}
    if route == "$connect":
        headers = {
            "Host": domain,
            "Sec-WebSocket-Key": base64.b64encode(uuid.uuid4().bytes).decode(),
            "Sec-WebSocket-Version": "13",
            "X-Forwarded-For": "192.0.2.1",
            "X-Forwarded-Port": "443",
            "X-Forwarded-Proto": "https",
        }
        event["headers"] = headers
        event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    elif route == "$disconnect":
        context.update(disconnectStatusCode=1005, disconnectReason="")
        event["headers"] = {"Host": domain}
        event["multiValueHeaders"] = {"Host": [domain]}
    else:
        context["messageId"] = uuid.uuid4().hex[:16] + "="
        event["body"] = body
    return event


def stream_event(records: list[dict[str, Any]], stream_arn: str) -> dict[str, Any]:
    """A DynamoDB Streams event for Lambda from records read with boto3's
    GetRecords (as the event source mapping delivers them)."""
    from runtime.aws.stream_records import to_lambda_event

    return to_lambda_event(records, stream_arn)
