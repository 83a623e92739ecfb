"""The deploy's one-time step against a table: push the app's schema
(build new indexes from the stored documents, drop removed ones). The
Lambdas never do this: they serve the schema the table holds.

`python -m runtime deploy --stack NAME` (what `make deploy` runs after
`sam deploy`) finds the table in the stack's outputs; `--table` names it
directly (DynamoDB Local, LocalStack: endpoints follow boto3's settings).

The stack generates its admin key in Secrets Manager (template.yaml,
AdminKeySecret); `stack_admin_key` reads it for the CLI with the caller's
own credentials, as `stack_url` finds the deployment's URL.

Crons: `sync_stack_crons` makes the stack's EventBridge Scheduler schedules
match functions/crons.py (`cron_sync.py`), with the group, the scheduler
function and Scheduler's role from the stack's outputs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.backend import Backend
from runtime.store.dynamodb import DynamoDBStore

from .cron_sync import SyncReport, cron_schedules, reconcile

__all__ = [
    "ADMIN_KEY_OUTPUT",
    "StackSchedules",
    "push_schema",
    "stack_admin_key",
    "stack_output",
    "stack_schedules",
    "stack_table",
    "stack_url",
    "sync_crons",
    "sync_stack_crons",
]

ADMIN_KEY_OUTPUT = "AdminKeySecretArn"
"""The stack output naming the admin key's secret (template.yaml)."""


def stack_output(stack: str, key: str, cloudformation: Any = None) -> str:
    """One output of a deployed stack."""
    if cloudformation is None:
        import boto3

        cloudformation = boto3.client("cloudformation")
    stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    for output in stacks[0].get("Outputs", []):
        if output["OutputKey"] == key:
            return str(output["OutputValue"])
    raise RuntimeError(f"stack {stack} has no {key} output: was it made from template.yaml?")


def stack_table(stack: str, cloudformation: Any = None) -> str:
    """The table a deployed stack made (its `TableName` output)."""
    return stack_output(stack, "TableName", cloudformation)


def stack_url(stack: str, cloudformation: Any = None) -> str:
    """The one URL of a deployed stack for clients and the CLI (`DeploymentUrl`)."""
    return stack_output(stack, "DeploymentUrl", cloudformation)


@dataclass(frozen=True)
class StackSchedules:
    """Where a stack's crons go: its schedule group, their target and role."""

    group: str
    function_arn: str
    role_arn: str


def stack_schedules(stack: str, cloudformation: Any = None) -> StackSchedules:
    """A deployed stack's `ScheduleGroupName`, `SchedulerFunctionArn` and
    `SchedulerRoleArn` outputs (template.yaml)."""
    return StackSchedules(
        group=stack_output(stack, "ScheduleGroupName", cloudformation),
        function_arn=stack_output(stack, "SchedulerFunctionArn", cloudformation),
        role_arn=stack_output(stack, "SchedulerRoleArn", cloudformation),
    )


def stack_admin_key(stack: str, cloudformation: Any = None, secretsmanager: Any = None) -> str:
    """A deployed stack's admin key: the secret its `AdminKeySecretArn` output
    names (the caller needs secretsmanager:GetSecretValue on it)."""
    arn = stack_output(stack, ADMIN_KEY_OUTPUT, cloudformation)
    if secretsmanager is None:
        import boto3

        secretsmanager = boto3.client("secretsmanager")
    key = secretsmanager.get_secret_value(SecretId=arn).get("SecretString")
    if not isinstance(key, str):
        raise RuntimeError(f"the secret {arn} holds no SecretString: it is not an admin key")
    return key


def _progress(table: str, index: str, done: int) -> None:
    print(f"\rbuilding {table}.{index}: {done} documents", end="", file=sys.stderr, flush=True)


def push_schema(
    table: str, functions: Path, *, client: Any = None, streams_client: Any = None
) -> int:
    """Load `functions/`, push its schema to `table`; the number of functions."""
    store = DynamoDBStore(table, client=client, streams_client=streams_client)
    backend = Backend(store, functions, admin_key=None, on_progress=_progress)
    try:
        report = backend.reload()
    finally:
        backend.close()
    if not report.ok:
        raise RuntimeError(f"the functions in {functions} failed to load:\n{report.message}")
    return report.functions


def sync_crons(functions: Path, where: StackSchedules, *, scheduler: Any = None) -> SyncReport:
    """Make the schedule group's cron schedules match `functions/crons.py`
    (`cron_sync.reconcile`). RuntimeError when the functions do not load or
    a cron has no EventBridge form."""
    from runtime.functions.registry import FunctionLoadError, load_functions

    try:
        # its own namespace: a backend's loaded modules stay as they are
        crons = load_functions(functions, namespace="_deploy_crons").crons
        schedules = cron_schedules(crons)
    except (FunctionLoadError, ValueError) as e:
        raise RuntimeError(f"the crons of {functions} cannot be deployed: {e}") from None
    if scheduler is None:
        import boto3

        scheduler = boto3.client("scheduler")
    return reconcile(
        scheduler,
        schedules,
        group=where.group,
        function_arn=where.function_arn,
        role_arn=where.role_arn,
    )


def sync_stack_crons(
    stack: str, functions: Path, *, cloudformation: Any = None, scheduler: Any = None
) -> SyncReport:
    """`sync_crons` for a deployed stack (its outputs name the group, the
    scheduler function and Scheduler's role)."""
    return sync_crons(functions, stack_schedules(stack, cloudformation), scheduler=scheduler)
