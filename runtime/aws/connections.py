"""Pushing to WebSocket clients through API Gateway's Management API
(`POST /@connections/{id}`): the `Poster` of the store-backed sync.

A post to a connection that is gone answers 410 (GoneException): the
caller forgets the connection. Requests go through `signed_http` (no
botocore client: a stream Lambda's cold start that pushes would otherwise
build one, ~150 ms), one transport per endpoint and container, signed for
`execute-api` in the Lambda's region. Credentials and region come from the
environment as Lambda sets it, else from botocore's chain.
`AWS_ENDPOINT_URL` is not used here (that points at DynamoDB Local or
LocalStack), only the endpoint given.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import quote

from runtime.sync.wire_text import message_text

from .signed_http import (
    CredentialSource,
    SignedHttp,
    credentials_from_env,
    error_of,
    region_from_env,
    retry_server_errors,
)
from .sigv4 import Credentials

__all__ = ["ManagementApiError", "ManagementApiPoster", "reset"]

MAX_ATTEMPTS = 3
"""A post is tried at most this often (server errors, throttling, a lost connection)."""

_transports: dict[str, SignedHttp] = {}
_lock = threading.Lock()


class ManagementApiError(Exception):
    """A post or delete the Management API refused (other than 410 Gone)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"Management API answered {status} {code}: {message}")
        self.status, self.code = status, code


class _BotocoreChain:
    """Credentials from botocore's default chain (profiles, SSO, instance
    roles): where the environment names none."""

    def __init__(self) -> None:
        import botocore.session

        self._session = botocore.session.get_session()

    def get(self) -> Credentials:
        found = self._session.get_credentials()
        if found is None:
            raise ManagementApiError(0, "NoCredentials", "no AWS credentials found to sign with")
        frozen = found.get_frozen_credentials()
        return Credentials(str(frozen.access_key), str(frozen.secret_key), frozen.token)

    def region(self) -> str | None:
        region = self._session.get_config_variable("region")
        return str(region) if region else None


def _transport(endpoint: str) -> SignedHttp:
    with _lock:
        transport = _transports.get(endpoint)
        if transport is None:
            credentials: CredentialSource | None
            credentials, region = credentials_from_env(), region_from_env()
            if credentials is None or region is None:
                chain = _BotocoreChain()
                credentials, region = credentials or chain, region or chain.region()
            if region is None:
                raise ManagementApiError(
                    0, "NoRegion", "set AWS_REGION to sign Management API calls"
                )
            transport = SignedHttp(
                endpoint,
                region=region,
                service="execute-api",
                credentials=credentials,
                max_attempts=MAX_ATTEMPTS,
            )
            _transports[endpoint] = transport
        return transport


def reset() -> None:
    """Close and forget every endpoint's transport (tests; a container keeps them)."""
    with _lock:
        transports = list(_transports.values())
        _transports.clear()
    for transport in transports:
        transport.close()


class ManagementApiPoster:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.posted = 0
        self.gone = 0

    def _send(self, method: str, connection_id: str, data: bytes) -> bool:
        """True when done, False when the connection is gone."""
        path = "/@connections/" + quote(connection_id, safe="-._~")
        transport = _transport(self.endpoint)
        response = transport.request(method, path, data, {}, retry=retry_server_errors)
        if response.status == 410:
            return False
        if response.status >= 300:
            code, message, _ = error_of(response)
            raise ManagementApiError(response.status, code, message)
        return True

    def post(self, connection_id: str, message: dict[str, Any]) -> bool:
        if not self._send("POST", connection_id, message_text(message).encode()):
            self.gone += 1
            return False
        self.posted += 1
        return True

    def close(self, connection_id: str) -> None:
        self._send("DELETE", connection_id, b"")
