"""Pushing to WebSocket clients through API Gateway's Management API
(`post_to_connection`): the `Poster` of the store-backed sync.

A post to a connection that is gone answers 410 (`GoneException`): the
caller forgets the connection. The client is built once per endpoint and
container; `AWS_ENDPOINT_URL` is not used for it (that points at DynamoDB
Local or LocalStack), only the endpoint given.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from runtime.sync.wire_text import message_text

__all__ = ["ManagementApiPoster"]

_clients: dict[str, Any] = {}
_lock = threading.Lock()


def _client(endpoint: str) -> Any:
    with _lock:
        client = _clients.get(endpoint)
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.session.Session().client(
                "apigatewaymanagementapi",
                endpoint_url=endpoint,
                config=Config(retries={"max_attempts": 3, "mode": "standard"}),
            )
            _clients[endpoint] = client
        return client


class ManagementApiPoster:
    def __init__(self, endpoint: str, client: Any = None) -> None:
        self.endpoint = endpoint
        self._given = client
        self.posted = 0
        self.gone = 0

    @property
    def _client(self) -> Any:
        """The Management API client, made on the first post (a cold start
        that posts nothing, e.g. `$connect`, makes none: ~50 ms)."""
        return self._given if self._given is not None else _client(self.endpoint)

    def post(self, connection_id: str, message: dict[str, Any]) -> bool:
        data = message_text(message).encode()
        try:
            self._client.post_to_connection(ConnectionId=connection_id, Data=data)
        except self._client.exceptions.GoneException:
            self.gone += 1
            return False
        self.posted += 1
        return True

    def close(self, connection_id: str) -> None:
        with contextlib.suppress(self._client.exceptions.GoneException):
            self._client.delete_connection(ConnectionId=connection_id)
