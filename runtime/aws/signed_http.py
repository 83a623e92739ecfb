"""Signed HTTP requests to one AWS endpoint: credentials from the
environment, kept-alive connections, retries. The transport of the
Lambdas' lean clients (`json_api.py`, `dynamodb_client.py`,
`scheduler_client.py`, `connections.py`).

Why not botocore: importing it and building one client (service model,
endpoint rule set, event hooks) was ~150 ms of every cold start, more than
the rest of the container's start together. A Lambda's needs are narrow:
credentials the runtime puts in the environment (the access key variables,
or, with SnapStart, the container credentials endpoint), the region it
names, the endpoint AWS_ENDPOINT_URL* name or the regional default. Where
the environment asks for more (a profile, FIPS or dual-stack endpoints, no
region), `SignedHttp.from_env` answers None and the caller uses botocore.

Retries follow botocore's for these services: connection errors, 5xx,
throttling (and, for DynamoDB, a body whose CRC-32 does not match) are retried with
jittered exponential backoff; a kept-alive connection the server closed
is replaced at once, without counting as an attempt.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from .sigv4 import Credentials, sign

__all__ = [
    "THROTTLING_CODES",
    "ContainerCredentials",
    "CredentialSource",
    "HttpResponse",
    "SignedHttp",
    "StaticCredentials",
    "StreamedBody",
    "client_error",
    "connection_error",
    "credentials_from_env",
    "endpoint_from_env",
    "error_of",
    "region_from_env",
    "retry_server_errors",
]

TIMEOUT_SECONDS = 60.0
"""Connect and read timeout (botocore's defaults)."""

IDLE_CONNECTIONS = 10
"""Connections kept alive per endpoint (botocore's max_pool_connections)."""

REFRESH_BEFORE_SECONDS = 600
"""Container credentials are fetched again this long before they expire."""

_NEEDS_BOTOCORE = ("AWS_PROFILE", "AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT")
"""Settings only botocore honours: with any of them set, no lean client."""

THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "LimitExceededException",
        "SlowDown",
    }
)
"""Error codes botocore retries as throttling (its standard and legacy modes)."""


class CredentialSource(Protocol):
    def get(self) -> Credentials: ...


class StaticCredentials:
    """Credentials that do not change (the access key variables)."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    def get(self) -> Credentials:
        return self._credentials


class ContainerCredentials:
    """The container credentials endpoint (Lambda with SnapStart, ECS):
    fetched on first use and again REFRESH_BEFORE_SECONDS before they
    expire; a failed refresh keeps credentials that have not expired yet."""

    def __init__(self, url: str, token: Callable[[], str | None]) -> None:
        self.url = url
        self._token = token
        self._lock = threading.Lock()
        self._credentials: Credentials | None = None
        self._expires = 0.0

    def get(self) -> Credentials:
        now = time.time()
        if self._credentials is not None and now < self._expires - REFRESH_BEFORE_SECONDS:
            return self._credentials
        with self._lock:
            if self._credentials is None or time.time() >= self._expires - REFRESH_BEFORE_SECONDS:
                try:
                    self._credentials, self._expires = self._fetch()
                except (OSError, ValueError, KeyError) as e:
                    if self._credentials is None or time.time() >= self._expires:
                        raise OSError(f"container credentials from {self.url}: {e}") from e
            return self._credentials

    def _fetch(self) -> tuple[Credentials, float]:
        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=2.0)
        headers = {"Accept": "application/json"}
        token = self._token()
        if token:
            headers["Authorization"] = token
        try:
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            conn.request("GET", path or "/", headers=headers)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        if response.status != 200:
            raise ValueError(f"HTTP {response.status}: {data[:200]!r}")
        got = json.loads(data)
        credentials = Credentials(got["AccessKeyId"], got["SecretAccessKey"], got.get("Token"))
        expires = got.get("Expiration")
        when = datetime.fromisoformat(expires).timestamp() if expires else time.time() + 3600
        return credentials, when


def _container_token() -> str | None:
    path = os.environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
    if path:
        with open(path) as f:
            return f.read().strip()
    return os.environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")


def credentials_from_env() -> StaticCredentials | ContainerCredentials | None:
    """The credentials the environment names (the access key variables,
    else the container endpoint), or None: botocore's chain must find them."""
    if any(os.environ.get(name) for name in _NEEDS_BOTOCORE):
        return None
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return StaticCredentials(Credentials(key, secret, os.environ.get("AWS_SESSION_TOKEN")))
    full = os.environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    relative = os.environ.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
    if full:
        return ContainerCredentials(full, _container_token)
    if relative:
        return ContainerCredentials(f"http://169.254.170.2{relative}", _container_token)
    return None


def region_from_env() -> str | None:
    """AWS_DEFAULT_REGION, as botocore reads it, else AWS_REGION (Lambda sets both)."""
    return os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or None


def endpoint_from_env(service_env: str, host_prefix: str, region: str) -> str:
    """The endpoint botocore would use: AWS_ENDPOINT_URL_<SERVICE>, else
    AWS_ENDPOINT_URL (unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS), else
    https://<host_prefix>.<region>.amazonaws.com (.com.cn in China)."""
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() != "true":
        configured = os.environ.get(f"AWS_ENDPOINT_URL_{service_env}") or os.environ.get(
            "AWS_ENDPOINT_URL"
        )
        if configured:
            return configured.rstrip("/")
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{host_prefix}.{region}.{suffix}"


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    """Header names in lower case."""
    body: bytes
    attempts: int
    stream: StreamedBody | None = None
    """The body still unread (a 2xx answer to `request(..., stream=True)`,
    `body` then empty): read it, then close it."""


class StreamedBody(io.RawIOBase):
    """A response's body read from its connection as the reader asks; closing
    it gives the connection back for another request if the body was read
    to its end (else the connection is closed: its unread rest is garbage)."""

    def __init__(
        self,
        response: http.client.HTTPResponse,
        conn: http.client.HTTPConnection,
        give_back: Callable[[http.client.HTTPConnection], None],
    ) -> None:
        super().__init__()
        self._response = response
        self._conn: http.client.HTTPConnection | None = conn
        self._give_back = give_back

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._response.readinto(buffer)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self._response.read()
        return self._response.read(size)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            if self._response.isclosed() and not self._response.will_close:
                self._give_back(conn)  # read to its end: the connection is clean
            else:
                conn.close()
        super().close()


_ssl_context: Any = None
_ssl_lock = threading.Lock()


def _tls() -> Any:
    """One TLS context per process, made on the first HTTPS connection
    (AWS_CA_BUNDLE, else certifi's bundle as botocore uses, else the system's)."""
    global _ssl_context
    with _ssl_lock:
        if _ssl_context is None:
            import ssl

            bundle = os.environ.get("AWS_CA_BUNDLE")
            if not bundle:
                try:
                    import certifi

                    bundle = certifi.where()
                except ImportError:
                    bundle = None
            _ssl_context = ssl.create_default_context(cafile=bundle)
        return _ssl_context


class SignedHttp:
    """Signed requests to `endpoint` for `service` in `region`, over
    kept-alive connections (any thread)."""

    def __init__(
        self,
        endpoint: str,
        *,
        region: str,
        service: str,
        credentials: CredentialSource,
        max_attempts: int = 10,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
        user_agent: str = "pyconvex",
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) endpoint: {endpoint!r}")
        self.endpoint = endpoint
        self.region = region
        self.service = service
        self.credentials = credentials
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.user_agent = user_agent
        self._https = parts.scheme == "https"
        self._hostname = parts.hostname
        self._port = parts.port
        default_port = 443 if self._https else 80
        self.host = parts.netloc if parts.port not in (None, default_port) else parts.hostname
        self.base_path = parts.path.rstrip("/")
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, service: str, endpoint_name: str, host_prefix: str) -> SignedHttp | None:
        """The transport to `service` the environment describes (credentials,
        region, AWS_ENDPOINT_URL_<endpoint_name> or the regional endpoint),
        or None where botocore's client is needed."""
        credentials, region = credentials_from_env(), region_from_env()
        if credentials is None or region is None:
            return None
        endpoint = endpoint_from_env(endpoint_name, host_prefix, region)
        return cls(endpoint, region=region, service=service, credentials=credentials)

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """(a connection, whether it was kept alive from an earlier request)."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        if self._https:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                self._hostname, self._port, timeout=TIMEOUT_SECONDS, context=_tls()
            )
        else:
            conn = http.client.HTTPConnection(self._hostname, self._port, timeout=TIMEOUT_SECONDS)
        return conn, False

    def _give_back(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < IDLE_CONNECTIONS:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _once(
        self,
        method: str,
        path: str,
        body: bytes,
        headers: dict[str, str],
        query: str,
        payload_hash: str | None,
        stream: bool,
    ) -> HttpResponse:
        """One request; a kept-alive connection the server had closed is
        replaced once (not an attempt). OSError: the request failed."""
        for _ in range(2):
            conn, reused = self._connection()
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            signed = sign(
                method=method,
                host=self.host,
                path=path,
                headers=headers,
                body=body,
                credentials=self.credentials.get(),
                region=self.region,
                service=self.service,
                amz_date=stamp,
                query=query,
                payload_hash=payload_hash,
            )
            signed["User-Agent"] = self.user_agent
            try:
                conn.request(
                    method, f"{path}?{query}" if query else path, body=body, headers=signed
                )
                response = conn.getresponse()
                got = {k.lower(): v for k, v in response.getheaders()}
                if stream and 200 <= response.status < 300:
                    body_stream = StreamedBody(response, conn, self._give_back)
                    return HttpResponse(response.status, got, b"", 0, body_stream)
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                if reused:  # the server closed it while idle: so, likely, the others
                    self.close()
                    continue
                raise
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                raise OSError(f"{method} {self.endpoint}{path}: {e}") from e
            if response.will_close:
                conn.close()
            else:
                self._give_back(conn)
            return HttpResponse(response.status, got, data, 0)
        raise AssertionError("unreachable")

    def request(
        self,
        method: str,
        path: str,
        body: bytes,
        headers: dict[str, str],
        *,
        retry: Callable[[HttpResponse], bool],
        query: str = "",
        payload_hash: str | None = None,
        stream: bool = False,
    ) -> HttpResponse:
        """The response of the first attempt that `retry` does not want
        again (up to max_attempts); OSError when the last attempt's
        connection failed. `path` is relative to the endpoint's own path;
        `query` and `payload_hash` are `sign`'s. With `stream`, a 2xx
        answer's body is left unread (`HttpResponse.stream`, never retried)."""
        full = self.base_path + path
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self._once(method, full, body, headers, query, payload_hash, stream)
            except OSError:  # timeouts too
                if attempt == self.max_attempts:
                    raise
            else:
                response = replace(response, attempts=attempt)
                if response.stream or attempt == self.max_attempts or not retry(response):
                    return response
            ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
            time.sleep(random.uniform(0, ceiling))
        raise AssertionError("unreachable")


_STATUS_CODES = {500: "InternalServerError", 503: "ServiceUnavailable"}


def error_of(
    response: HttpResponse, object_hook: Callable[[dict[str, Any]], Any] | None = None
) -> tuple[str, str, dict[str, Any]]:
    """(code, message, the body's other fields) of an AWS JSON error (JSON
    1.0 and REST-JSON alike): the code from the x-amzn-ErrorType header or
    the body's `__type` (namespace and detail cut off), else the status."""
    try:
        body = json.loads(response.body, object_hook=object_hook) if response.body else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    typed = str(body.pop("__type", "") or "")
    kind = response.headers.get("x-amzn-errortype") or typed
    code = kind.split(":", 1)[0].rsplit("#", 1)[-1]
    code = code or _STATUS_CODES.get(response.status, str(response.status))
    message = str(body.get("message") or body.get("Message") or "")
    return code, message, body


def retry_server_errors(response: HttpResponse) -> bool:
    """Worth another attempt: a server error or throttling."""
    if response.status >= 500:
        return True
    return response.status >= 400 and error_of(response)[0] in THROTTLING_CODES


def metadata(response: HttpResponse) -> dict[str, Any]:
    """botocore's ResponseMetadata for `response`."""
    return {
        "HTTPStatusCode": response.status,
        "RequestId": response.headers.get("x-amzn-requestid", ""),
        "RetryAttempts": response.attempts - 1,
    }


def client_error(
    operation: str,
    response: HttpResponse,
    error: tuple[str, str, dict[str, Any]] | None = None,
) -> Exception:
    """botocore's ClientError for a refused call, shaped as botocore shapes
    it: the modeled error's fields (Message, CancellationReasons, Item)
    beside Error and ResponseMetadata."""
    from botocore.exceptions import ClientError

    code, message, rest = error if error is not None else error_of(response)
    shaped = {
        **rest,
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": metadata(response),
    }
    return ClientError(shaped, operation)  # type: ignore[arg-type]


def connection_error(endpoint: str, e: OSError) -> Exception:
    """botocore's EndpointConnectionError: the request never got an answer."""
    from botocore.exceptions import EndpointConnectionError

    return EndpointConnectionError(endpoint_url=f"{endpoint} ({e})")
