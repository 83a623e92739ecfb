"""EventBridge Scheduler's CreateSchedule (REST-JSON: `POST /schedules/{Name}`)
over `signed_http`, called and failing as botocore's client does: the one
operation a Lambda makes (a job due past SQS's 15-minute delay). The deploy
(`cron_sync.py`) lists, updates and deletes schedules with boto3.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

from .signed_http import (
    SignedHttp,
    client_error,
    connection_error,
    metadata,
    retry_server_errors,
)

__all__ = ["SchedulerClient"]


class SchedulerClient:
    def __init__(self, http: SignedHttp) -> None:
        self._http = http

    @classmethod
    def from_env(cls) -> SchedulerClient | None:
        """The client the environment describes (AWS_ENDPOINT_URL_SCHEDULER,
        ...), or None where botocore's is needed (`signed_http.py`)."""
        http = SignedHttp.from_env("scheduler", "SCHEDULER", "scheduler")
        return None if http is None else cls(http)

    def create_schedule(self, *, Name: str, **params: Any) -> dict[str, Any]:
        """botocore's `create_schedule`: the other members go in the body,
        ClientToken filled in (idempotent retries) unless given."""
        body = json.dumps({"ClientToken": str(uuid.uuid4()), **params}).encode()
        path = "/schedules/" + quote(Name, safe="-._~")
        headers = {"Content-Type": "application/json"}
        try:
            response = self._http.request("POST", path, body, headers, retry=retry_server_errors)
        except OSError as e:
            raise connection_error(self._http.endpoint, e) from e
        if response.status != 200:
            raise client_error("CreateSchedule", response)
        parsed: dict[str, Any] = json.loads(response.body) if response.body else {}
        parsed["ResponseMetadata"] = metadata(response)
        return parsed

    def close(self) -> None:
        self._http.close()
