"""WebSocket Lambda: API Gateway WebSocket API routes -> the sync protocol.

`$connect` creates the connection's record, `$disconnect` drops it and its
subscriptions, `$default` carries one client message (Connect,
ModifyQuerySet, Mutation, Action, Authenticate, Event). State lives in the
store (`runtime/sync/stored.py`); replies, results and Transitions go out
through the Management API (`connections.py`), whose endpoint is
PYCONVEX_WS_ENDPOINT or, by default, the event's own domain and stage.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import APIGatewayWebSocketEvent

from .observe import count, logger, metrics
from .sync import sync_for

__all__ = ["handler"]


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ws = APIGatewayWebSocketEvent(event)
    request = ws.request_context
    route, conn_id = request.route_key, request.connection_id
    logger.append_keys(connection_id=conn_id, route=route)
    count("ws_messages" if route == "$default" else f"ws{route.replace('$', '_')}")
    sync = sync_for(f"https://{request.domain_name}/{request.stage}", context.aws_request_id)
    if route == "$connect":
        sync.connect(conn_id)
    elif route == "$disconnect":
        sync.disconnect(conn_id)
    else:
        sync.receive(conn_id, ws.decoded_body or "")
    return {"statusCode": 200}
