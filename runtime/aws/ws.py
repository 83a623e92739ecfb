"""WebSocket Lambda: API Gateway WebSocket API routes -> the sync protocol.

`$connect` creates the connection's record, `$disconnect` drops it and its
subscriptions, `$default` carries one client message (Connect,
ModifyQuerySet, Mutation, Action, Authenticate, Event). State lives in the
store (`runtime/sync/stored.py`); replies, results and Transitions go out
through the Management API (`connections.py`), whose endpoint is
PYCONVEX_WS_ENDPOINT or, by default, the event's own domain and stage.
"""

from __future__ import annotations

import base64
from typing import Any

from .observe import count, logger, metrics
from .sync import sync_for

__all__ = ["handler"]


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # The event read as a plain dict: Powertools' event classes cost a cold
    # start ~20 ms of imports for five fields.
    request = event["requestContext"]
    route, conn_id = request["routeKey"], request["connectionId"]
    logger.append_keys(connection_id=conn_id, route=route)
    count("ws_messages" if route == "$default" else f"ws{route.replace('$', '_')}")
    sync = sync_for(f"https://{request['domainName']}/{request['stage']}", context.aws_request_id)
    if route == "$connect":
        sync.connect(conn_id)
    elif route == "$disconnect":
        sync.disconnect(conn_id)
    else:
        sync.receive(conn_id, _body(event))
    return {"statusCode": 200}


def _body(event: dict[str, Any]) -> str:
    """The message's text (API Gateway base64-encodes binary frames)."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body).decode()
    return str(body)
