"""One backend per Lambda container, built on its first invocation.

The schema is served as the store has it (`push_schema=False`): pushing it
(building indexes) is the deploy's job, done once, not every cold start's.

The admin key is read here, once per container (settings.py: from Secrets
Manager). A function given none (the WebSocket and stream functions serve no
admin route, and their roles may not read the secret) has no admin access.

Files' bytes go to the S3 bucket the settings name, as objects
`api/storage/<key>` (FILES_PREFIX): CloudFront serves `/api/storage/<key>`
straight from the bucket, so the object's name is the file URL's path.

Search: the store gets the OpenSearch engine the settings name as
`store.search` (`search.py`), before the functions load, so every
function's queries can search; None when the stack has no endpoint.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from runtime.backend import Backend
from runtime.files.port import BlobStore
from runtime.files.s3 import S3BlobStore
from runtime.functions import logs
from runtime.functions.executor import CallResult
from runtime.store.dynamodb import DynamoDBStore

from .clients import LazyClient
from .search import engine_for
from .settings import Settings

__all__ = ["FILES_PREFIX", "lambda_backend", "reset"]

FILES_PREFIX = "api/storage/"

_lock = threading.Lock()
_backend: Backend | None = None
_settings: Settings | None = None
_client: Any = None


def lambda_backend(
    on_call: Callable[[CallResult], None] | None = None,
) -> tuple[Backend, Settings]:
    global _backend, _settings, _client
    with _lock:
        if _backend is None or _settings is None:
            settings = Settings.from_env()
            logs.install()
            blobs = _blobs(settings)
            client = _dynamodb_client()
            store = DynamoDBStore(settings.table, client=client)
            store.search = engine_for(
                settings.opensearch_endpoint,
                settings.search_prefix,
                sigv4=settings.opensearch_sigv4,
            )
            backend = Backend(
                store,
                settings.functions,
                admin_key=settings.admin_key,
                prod=settings.prod,
                on_call=on_call,
                blobs=blobs,
                files_url=settings.files_url if blobs is not None else None,
            )
            report = backend.reload(push_schema=False)
            if not report.ok:
                backend.close()
                client.close()
                raise RuntimeError(f"the app's functions failed to load: {report.message}")
            _backend, _settings, _client = backend, settings, client
        _backend.environment.refresh(_settings.env_max_age)
        return _backend, _settings


def _dynamodb_client() -> Any:
    """The store's DynamoDB client: the lean one (`dynamodb_client.py`: a
    cold start without botocore's import and client build, ~150 ms) where
    the environment gives credentials and a region, as Lambda's does; else
    botocore's own (boto3 adds nothing to a client but its import)."""
    from .dynamodb_client import DynamoDBClient

    lean = DynamoDBClient.from_env()
    if lean is not None:
        return lean
    import botocore.session

    return botocore.session.get_session().create_client("dynamodb")


def _blobs(settings: Settings) -> BlobStore | None:
    """The files bucket's blob store, or None when the function has no bucket."""
    if settings.files_bucket is None:
        return None
    # The S3 client is made on the first file operation (clients.py).
    return S3BlobStore(LazyClient("s3"), settings.files_bucket, prefix=FILES_PREFIX)


def reset() -> None:
    """Forget the container's backend and its connections (tests that
    change the settings)."""
    global _backend, _settings, _client
    from .connections import reset as forget_transports

    forget_transports()
    with _lock:
        if _backend is not None:
            _backend.close()
        if _client is not None:
            _client.close()  # its kept-alive connections
        _backend = _settings = _client = None
