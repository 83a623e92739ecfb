"""AWS clients made on their first use, once per container.

A botocore client costs a cold start 40-70 ms (its service model read and
parsed). The Lambdas hold clients they often never call on a given
container (S3 for files, SQS and EventBridge Scheduler for scheduled jobs),
so those are made when first called, not when the container starts."""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["LazyClient"]


class LazyClient:
    """Stands for `boto3.client(service)`: every attribute is the real
    client's, which is made (once, thread-safely) on the first access."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def made(self) -> bool:
        """Whether the real client exists yet."""
        return self._client is not None

    def __getattr__(self, name: str) -> Any:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    import boto3

                    self._client = boto3.client(self.service)  # type: ignore[call-overload]
                client = self._client
        return getattr(client, name)
