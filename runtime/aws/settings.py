"""The Lambda functions' configuration, from environment variables.

    PYCONVEX_TABLE       the DynamoDB table (required)
    PYCONVEX_FUNCTIONS   the app's functions folder (default: functions/ in the
                         deployment package, $LAMBDA_TASK_ROOT/functions)
    PYCONVEX_ADMIN_KEY   the deployment's admin key (for the CLI and admin routes)
    PYCONVEX_PROD        "0" shows error messages to callers (default "1": redacted)
    PYCONVEX_ENV_MAX_AGE seconds between re-reads of the app's environment
                         variables (default 2)
    PYCONVEX_WS_ENDPOINT the API Gateway Management API endpoint the WebSocket
                         and stream Lambdas post to (https://<api id>.execute-api.
                         <region>.amazonaws.com/<stage>; default: derived from
                         the WebSocket event; the local harness sets its own)

AWS endpoints follow boto3's own settings (AWS_ENDPOINT_URL and friends), so
the same code reaches AWS, LocalStack or DynamoDB Local.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings", "SettingsError"]


class SettingsError(RuntimeError):
    pass


@dataclass(frozen=True)
class Settings:
    table: str
    functions: Path
    admin_key: str
    prod: bool
    env_max_age: float
    ws_endpoint: str | None = None

    @classmethod
    def from_env(cls) -> Settings:
        table = os.environ.get("PYCONVEX_TABLE")
        if not table:
            raise SettingsError("PYCONVEX_TABLE is not set: name the DynamoDB table")
        root = Path(os.environ.get("LAMBDA_TASK_ROOT", "."))
        functions = Path(os.environ.get("PYCONVEX_FUNCTIONS", root / "functions"))
        return cls(
            table=table,
            functions=functions,
            admin_key=os.environ.get("PYCONVEX_ADMIN_KEY", ""),
            prod=os.environ.get("PYCONVEX_PROD", "1") != "0",
            env_max_age=float(os.environ.get("PYCONVEX_ENV_MAX_AGE", "2")),
            ws_endpoint=os.environ.get("PYCONVEX_WS_ENDPOINT") or None,
        )
