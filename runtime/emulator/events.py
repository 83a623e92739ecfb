"""Requests in, API Gateway events out, and Lambda responses back: pure
functions, so the shapes are tested without a socket.

HTTP requests become HTTP API events (payload format 2.0, `$default`
route); a Lambda's answer in that format becomes a status, headers and a
body. WebSocket connections become the WebSocket API's `$connect`,
`$default` and `$disconnect` events (Lambda proxy integration).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

__all__ = [
    "BadLambdaResponse",
    "HttpRequest",
    "WsConnection",
    "api_gateway_id",
    "http_event",
    "http_response",
    "iso_time",
    "request_time",
    "ws_connect_event",
    "ws_disconnect_event",
    "ws_message_event",
]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TEXT_TYPES = ("text/", "json", "xml", "javascript", "x-www-form-urlencoded", "graphql")
"""Content types whose bodies reach the Lambda as text; every other body is
base64 (with isBase64Encoded), as HTTP APIs do."""


class BadLambdaResponse(ValueError):
    """The handler answered something API Gateway cannot turn into a response
    (it answers 500 Internal Server Error then)."""


def api_gateway_id(random_bytes: bytes) -> str:
    """A connection, request or message id shaped like API Gateway's
    (`L0SM9cOFvHcCIhw=`: 11 bytes in base64). URL-safe letters, since the id
    travels in Management API paths."""
    if len(random_bytes) != 11:
        raise ValueError("an API Gateway id is made of 11 random bytes")
    return base64.urlsafe_b64encode(random_bytes).decode()


def request_time(now: float) -> str:
    """`12/Mar/2020:19:03:58 +0000`, the requestContext's `time` format."""
    t = time.gmtime(now)
    return f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:" + time.strftime(
        "%H:%M:%S +0000", t
    )


def iso_time(now: float) -> str:
    """ISO 8601 with milliseconds, as the Management API's GetConnection gives."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


@dataclass(frozen=True)
class HttpRequest:
    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"


def _joined(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Repeated names joined by commas, as API Gateway joins repeated headers
    and query parameters in payload 2.0."""
    out: dict[str, str] = {}
    for name, value in pairs:
        out[name] = f"{out[name]},{value}" if name in out else value
    return out


def _is_text(content_type: str) -> bool:
    return any(t in content_type.lower() for t in _TEXT_TYPES)


def http_event(
    request: HttpRequest,
    *,
    account_id: str,
    api_id: str,
    domain: str,
    request_id: str,
    now: float,
) -> dict[str, Any]:
    """The HTTP API (payload 2.0) event of `request`."""
    cookies: list[str] = []
    pairs: list[tuple[str, str]] = []
    for name, value in request.headers:
        if name.lower() == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
        else:
            pairs.append((name.lower(), value))
    headers = _joined(pairs)
    headers.setdefault("x-forwarded-for", request.source_ip)
    headers.setdefault("x-forwarded-proto", "http")
    if ":" in domain:
        headers.setdefault("x-forwarded-port", domain.rsplit(":", 1)[1])
    user_agent = headers.get("user-agent", "")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    query = _joined(parse_qsl(request.raw_query, keep_blank_values=True))
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": account_id,
        "apiId": api_id,
        "domainName": domain,
        "domainPrefix": domain.split(".", 1)[0].split(":", 1)[0],
        "http": {
            "method": request.method,
            "path": request.raw_path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": user_agent,
        },
        "requestId": request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": request_time(now),
        "timeEpoch": int(now * 1000),
    }
    if request.body:
        text: str | None = None
        if _is_text(headers.get("content-type", "")):
            try:
                text = request.body.decode()
            except UnicodeDecodeError:
                text = None
        if text is None:
            event["body"] = base64.b64encode(request.body).decode()
            event["isBase64Encoded"] = True
        else:
            event["body"] = text
            event["isBase64Encoded"] = False
    else:
        event["isBase64Encoded"] = False
    return event


def http_response(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of a Lambda's answer in payload format 2.0.

    An answer without `statusCode` is taken as the body (JSON, or a string as
    it is) of a 200 application/json response, as HTTP APIs do."""
    if not isinstance(result, Mapping) or "statusCode" not in result:
        try:
            text = result if isinstance(result, str) else json.dumps(result)
        except (TypeError, ValueError) as e:
            raise BadLambdaResponse(f"the answer is not JSON: {e}") from None
        return 200, [("content-type", "application/json")], text.encode()
    status = result["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise BadLambdaResponse(f"statusCode must be an HTTP status (int), not {status!r}")
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        headers.append((str(name).lower(), str(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        if not isinstance(values, list):
            raise BadLambdaResponse(f"multiValueHeaders[{name!r}] must be a list")
        headers.extend((str(name).lower(), str(v)) for v in values)
    cookies = result.get("cookies") or []
    if not isinstance(cookies, list):
        raise BadLambdaResponse("cookies must be a list of Set-Cookie values")
    headers.extend(("set-cookie", str(c)) for c in cookies)
    body = result.get("body")
    if body is None:
        raw = b""
    elif not isinstance(body, str):
        raise BadLambdaResponse(f"body must be a string, not {type(body).__name__}")
    elif result.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except ValueError:
            raise BadLambdaResponse("isBase64Encoded is true but body is not base64") from None
    else:
        raw = body.encode()
    return status, headers, raw


@dataclass(frozen=True)
class WsConnection:
    """What every event of one WebSocket connection repeats."""

    connection_id: str
    connected_at: int
    """Milliseconds since the epoch."""
    source_ip: str
    user_agent: str
    domain: str
    stage: str
    api_id: str


def _ws_context(
    conn: WsConnection, route: str, event_type: str, request_id: str, now: float
) -> dict[str, Any]:
    return {
        "routeKey": route,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": request_time(now),
        "messageDirection": "IN",
        "stage": conn.stage,
        "connectedAt": conn.connected_at,
        "requestTimeEpoch": int(now * 1000),
        "identity": {"sourceIp": conn.source_ip, "userAgent": conn.user_agent},
        "requestId": request_id,
        "domainName": conn.domain,
        "connectionId": conn.connection_id,
        "apiId": conn.api_id,
    }


def ws_connect_event(
    conn: WsConnection,
    headers: list[tuple[str, str]],
    raw_query: str,
    *,
    request_id: str,
    now: float,
) -> dict[str, Any]:
    """`$connect`: the handshake's headers (as sent, and as lists) and query."""
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        multi.setdefault(name, []).append(value)
    event: dict[str, Any] = {
        "headers": {name: ",".join(values) for name, values in multi.items()},
        "multiValueHeaders": multi,
    }
    query = parse_qsl(raw_query, keep_blank_values=True)
    if query:
        multi_query: dict[str, list[str]] = {}
        for name, value in query:
            multi_query.setdefault(name, []).append(value)
        event["queryStringParameters"] = {k: v[-1] for k, v in multi_query.items()}
        event["multiValueQueryStringParameters"] = multi_query
    event["requestContext"] = _ws_context(conn, "$connect", "CONNECT", request_id, now)
    event["isBase64Encoded"] = False
    return event


def ws_message_event(
    conn: WsConnection, body: str, *, request_id: str, message_id: str, now: float
) -> dict[str, Any]:
    """`$default`: one text message from the client."""
    context = _ws_context(conn, "$default", "MESSAGE", request_id, now)
    context["messageId"] = message_id
    return {"requestContext": context, "body": body, "isBase64Encoded": False}


def ws_disconnect_event(
    conn: WsConnection, code: int, reason: str, *, request_id: str, now: float
) -> dict[str, Any]:
    """`$disconnect`: after either side closed (code 1006 when the TCP
    connection just went away)."""
    context = _ws_context(conn, "$disconnect", "DISCONNECT", request_id, now)
    context["disconnectStatusCode"] = code
    context["disconnectReason"] = reason
    host = {"Host": conn.domain}
    return {
        "headers": host,
        "multiValueHeaders": {k: [v] for k, v in host.items()},
        "requestContext": context,
        "isBase64Encoded": False,
    }
