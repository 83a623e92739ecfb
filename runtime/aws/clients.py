"""AWS clients made on their first use, once per container.

A botocore client costs a cold start 40-70 ms (its service model read and
parsed), its import ~100 ms more. The Lambdas hold clients they often never
call on a given container (S3 for files, SQS and EventBridge Scheduler for
scheduled jobs), so those are made when first called, not when the
container starts; S3, SQS and Scheduler are the lean ones (`s3_client.py`,
`json_api.py`, `scheduler_client.py`) where the environment allows
(`signed_http.py`), so a container's first file or scheduled job does not
import botocore's client machinery either.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["LazyClient"]


def _lean(service: str) -> Any:
    """The project's own client of `service` from the environment, or None."""
    if service == "sqs":
        from .json_api import sqs_from_env

        return sqs_from_env()
    if service == "scheduler":
        from .scheduler_client import SchedulerClient

        return SchedulerClient.from_env()
    if service == "s3":
        from .s3_client import S3Client

        return S3Client.from_env()
    return None


class LazyClient:
    """Stands for `boto3.client(service)`: every attribute is the real
    client's (the lean one where there is one), which is made (once,
    thread-safely) on the first access."""

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
                    client = _lean(self.service)
                    if client is None:
                        import boto3

                        client = boto3.client(self.service)  # type: ignore[call-overload]
                    self._client = client
                client = self._client
        return getattr(client, name)
