"""The Lambda functions' configuration, from environment variables.

    PYCONVEX_TABLE       the DynamoDB table (required)
    PYCONVEX_FUNCTIONS   the app's functions folder (default: functions/ in the
                         deployment package, $LAMBDA_TASK_ROOT/functions)
    PYCONVEX_ADMIN_KEY_SECRET
                         the ARN of the Secrets Manager secret that holds the
                         deployment's admin key (the CLI and admin routes:
                         the HTTP function's). Read once per container.
    PYCONVEX_ADMIN_KEY_FILE
                         a file that holds the admin key instead (the local
                         harness, `python -m runtime aws-local`: its
                         <data>/admin_key)
    PYCONVEX_PROD        "0" shows error messages to callers (default "1": redacted)
    PYCONVEX_ENV_MAX_AGE seconds between re-reads of the app's environment
                         variables (default 2)
    PYCONVEX_WS_ENDPOINT the API Gateway Management API endpoint the WebSocket
                         and stream Lambdas post to (https://<api id>.execute-api.
                         <region>.amazonaws.com/<stage>; default: derived from
                         the WebSocket event; the local harness sets its own)
    PYCONVEX_FILES_BUCKET
                         the S3 bucket that holds files' bytes (objects
                         `api/storage/<key>`: the path CloudFront forwards to
                         the bucket); unset: no file storage (ctx.storage
                         refuses). The stream function has it for the
                         get_url of the queries it re-runs, and no S3 access:
                         a URL needs only the `_storage` table
    PYCONVEX_FILES_URL   where file URLs point, `<url>/<key>` (the local
                         harness: the bucket's own URL); default: the
                         deployment's `/api/storage/<key>` (CloudFront)
    PYCONVEX_JOBS_QUEUE_URL
                         the SQS queue of scheduled jobs and cron ticks
                         (JobsQueue): the stream function sends jobs due
                         within 15 minutes there (runtime/aws/dispatch.py),
                         the scheduler function re-sends early messages
                         and sub-minute cron ticks; unset: no dispatch
    PYCONVEX_JOBS_QUEUE_ARN
                         the same queue's ARN: the target of the one-time
                         schedules of later jobs (the stream function)
    PYCONVEX_SCHEDULE_GROUP
                         the EventBridge Scheduler group those schedules are
                         created in (the stack's ScheduleGroup)
    PYCONVEX_SCHEDULER_ROLE_ARN
                         the role EventBridge Scheduler assumes to send them
                         (SchedulerInvokeRole, passed by the stream function)
    OPENSEARCH_ENDPOINT  the OpenSearch domain serving search indexes
                         (https://search-<domain>-<id>.<region>.es.amazonaws.com,
                         the stack's OpenSearchEndpoint parameter); empty or
                         unset: no search engine (a schema with search
                         indexes is refused at deploy)
    OPENSEARCH_SIGV4     "false" sends unsigned requests (the local harness's
                         server); default: signed with the function's role
    PYCONVEX_SEARCH_PREFIX
                         the first part of the deployment's OpenSearch index
                         names (the stack's name; default: the table's), so
                         stacks can share a domain

The admin key itself is never an environment variable: the app's functions
run in the same process and see `os.environ` (and whatever logs or reports
it), so the environment names only where the key is. A function given
neither variable holds no admin key (`admin_key` is None): the WebSocket and
stream functions serve no admin route.

AWS endpoints follow boto3's own settings (AWS_ENDPOINT_URL and friends), so
the same code reaches AWS, LocalStack or DynamoDB Local.

The deployment's URLs (`CONVEX_CLOUD_URL`, `CONVEX_SITE_URL`, which every
function sees) are not environment variables of the Lambdas: the http
function's environment cannot name the CloudFront distribution in front of
the API that invokes it (a dependency cycle in the template). The deploy
records them in the table instead (`record_deployment_urls`: `python -m
runtime deploy --stack` with the stack's `DeploymentUrl`, the local harness
with its gateway's URL), and each Lambda reads them with the app's
environment variables (`runtime/functions/environment.py`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.backend import check_admin_key
from runtime.functions.environment import Environment
from runtime.store.port import Store

__all__ = [
    "Settings",
    "SettingsError",
    "admin_key_from_env",
    "deployment_urls",
    "record_deployment_urls",
    "record_stack_urls",
]

SecretReader = Callable[[str], Any]
"""Secrets Manager's SecretString of an ARN (Powertools' `parameters.get_secret`)."""


class SettingsError(RuntimeError):
    pass


def _powertools_get_secret(arn: str) -> Any:
    from aws_lambda_powertools.utilities import parameters

    # force_fetch: a new container's settings read the secret as it is now,
    # never a value Powertools cached for the process before.
    return parameters.get_secret(arn, force_fetch=True)


def admin_key_from_env(
    environ: Mapping[str, str], get_secret: SecretReader = _powertools_get_secret
) -> str | None:
    """The admin key the environment points at (a secret's ARN, else a file),
    or None when it names none. A key too weak to guard the admin routes is
    refused here, at the container's start (AdminKeyError)."""
    arn = environ.get("PYCONVEX_ADMIN_KEY_SECRET")
    if arn:
        try:
            value = get_secret(arn)
        except Exception as e:  # Powertools wraps the client's errors in GetParameterError
            raise SettingsError(
                f"cannot read the admin key from the secret {arn} ({e}): the function's "
                "role needs secretsmanager:GetSecretValue on it (template.yaml grants it)"
            ) from None
        if not isinstance(value, str):
            raise SettingsError(
                f"the secret {arn} holds binary data: the admin key is a SecretString"
            )
        return check_admin_key(value, f"the admin key in the secret {arn}")
    path = environ.get("PYCONVEX_ADMIN_KEY_FILE")
    if path:
        try:
            key = Path(path).read_text().removesuffix("\n").removesuffix("\r")
        except (OSError, UnicodeDecodeError) as e:
            raise SettingsError(f"cannot read the admin key file {path}: {e}") from None
        return check_admin_key(key, f"the admin key in {path}")
    return None


@dataclass(frozen=True)
class Settings:
    table: str
    functions: Path
    admin_key: str | None = field(repr=False)
    prod: bool
    env_max_age: float
    ws_endpoint: str | None = None
    files_bucket: str | None = None
    files_url: str | None = None
    jobs_queue_url: str | None = None
    jobs_queue_arn: str | None = None
    schedule_group: str | None = None
    scheduler_role_arn: str | None = None
    opensearch_endpoint: str | None = None
    opensearch_sigv4: bool = True
    search_prefix: str = "pyconvex"

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        get_secret: SecretReader = _powertools_get_secret,
    ) -> Settings:
        env = os.environ if environ is None else environ
        table = env.get("PYCONVEX_TABLE")
        if not table:
            raise SettingsError("PYCONVEX_TABLE is not set: name the DynamoDB table")
        root = Path(env.get("LAMBDA_TASK_ROOT", "."))
        functions = Path(env.get("PYCONVEX_FUNCTIONS", root / "functions"))
        return cls(
            table=table,
            functions=functions,
            admin_key=admin_key_from_env(env, get_secret),
            prod=env.get("PYCONVEX_PROD", "1") != "0",
            env_max_age=float(env.get("PYCONVEX_ENV_MAX_AGE", "2")),
            ws_endpoint=env.get("PYCONVEX_WS_ENDPOINT") or None,
            files_bucket=env.get("PYCONVEX_FILES_BUCKET") or None,
            files_url=env.get("PYCONVEX_FILES_URL") or None,
            jobs_queue_url=env.get("PYCONVEX_JOBS_QUEUE_URL") or None,
            jobs_queue_arn=env.get("PYCONVEX_JOBS_QUEUE_ARN") or None,
            schedule_group=env.get("PYCONVEX_SCHEDULE_GROUP") or None,
            scheduler_role_arn=env.get("PYCONVEX_SCHEDULER_ROLE_ARN") or None,
            opensearch_endpoint=env.get("OPENSEARCH_ENDPOINT", "").strip() or None,
            opensearch_sigv4=env.get("OPENSEARCH_SIGV4", "true").strip().lower() != "false",
            search_prefix=env.get("PYCONVEX_SEARCH_PREFIX") or table,
        )


def deployment_urls(url: str) -> dict[str, str]:
    """The built-in URL variables of a stack whose one URL is `url`: the
    clients' API, the sync socket and the HTTP actions all answer there
    (CloudFront; the local harness's gateway), so both name it."""
    url = url.rstrip("/")
    return {"CONVEX_CLOUD_URL": url, "CONVEX_SITE_URL": url}


def record_deployment_urls(store: Store, url: str) -> None:
    """Record the deployment's URLs in its table for every Lambda to read
    (see the module docstring)."""
    Environment(store).record_system(deployment_urls(url))


def record_stack_urls(stack: str, table: str) -> str:
    """`record_deployment_urls` for a deployed stack: its `DeploymentUrl`
    output into its table (`python -m runtime deploy --stack`). The URL."""
    from runtime.store.dynamodb import DynamoDBStore

    from .deploy import stack_url

    url = stack_url(stack)
    store = DynamoDBStore(table)
    try:
        record_deployment_urls(store, url)
    finally:
        store.close()
    return url
