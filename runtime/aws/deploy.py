"""The deploy's one-time step against a table: push the app's schema
(build new indexes from the stored documents, drop removed ones). The
Lambdas never do this: they serve the schema the table holds.

`python -m runtime deploy --stack NAME` (what `make deploy` runs after
`sam deploy`) finds the table in the stack's outputs; `--table` names it
directly (DynamoDB Local, LocalStack: endpoints follow boto3's settings).

The stack generates its admin key in Secrets Manager (template.yaml,
AdminKeySecret); `stack_admin_key` reads it for the CLI with the caller's
own credentials, as `stack_url` finds the deployment's URL.

Search: the schema push builds new search indexes in the stack's OpenSearch
domain (its `OpenSearchEndpoint` output, the parameter of the same name) and
drops removed ones (`Database.set_schema` through `store.search`). A schema
with search indexes is refused before anything is pushed when the stack has
no endpoint (`check_search`), saying which parameter to set.

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
from runtime.search.port import SearchEngine
from runtime.store.dynamodb import DynamoDBStore

from .cron_sync import SyncReport, cron_schedules, reconcile

__all__ = [
    "ADMIN_KEY_OUTPUT",
    "SEARCH_OUTPUT",
    "StackSchedules",
    "check_search",
    "push_schema",
    "search_engine",
    "stack_admin_key",
    "stack_output",
    "stack_schedules",
    "stack_search_engine",
    "stack_table",
    "stack_url",
    "sync_crons",
    "sync_stack_crons",
]

ADMIN_KEY_OUTPUT = "AdminKeySecretArn"
"""The stack output naming the admin key's secret (template.yaml)."""

SEARCH_OUTPUT = "OpenSearchEndpoint"
"""The stack output echoing its OpenSearchEndpoint parameter ("" when none)."""


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


def stack_search_engine(stack: str, cloudformation: Any = None) -> SearchEngine | None:
    """The OpenSearch engine of a deployed stack (its `OpenSearchEndpoint`
    output, signed with the caller's credentials, indexes prefixed with the
    stack's name as its Lambdas' are); None when the stack has no endpoint."""
    from .search import engine_for

    try:
        endpoint = stack_output(stack, SEARCH_OUTPUT, cloudformation)
    except RuntimeError:
        return None  # a stack made before search: it has none
    return engine_for(endpoint, stack)


def search_engine(stack: str | None, table: str) -> SearchEngine | None:
    """The deployment's engine for the schema push: the stack's
    (`stack_search_engine`), or, for a table named directly, the one
    OPENSEARCH_ENDPOINT names (OPENSEARCH_SIGV4=false: unsigned), indexes
    prefixed with the table's name as the Lambdas' default is."""
    if stack:
        return stack_search_engine(stack)
    import os

    from .search import engine_for

    sigv4 = os.environ.get("OPENSEARCH_SIGV4", "true").strip().lower() != "false"
    return engine_for(os.environ.get("OPENSEARCH_ENDPOINT", "").strip(), table, sigv4=sigv4)


def check_search(functions: Path, search: SearchEngine | None) -> None:
    """Refuse (RuntimeError) an app whose schema declares search indexes when
    the deployment has no search engine: nothing would index or serve them."""
    if search is not None:
        return
    from runtime.database.search_build import wanted_search_indexes
    from runtime.functions.registry import FunctionLoadError, load_functions

    try:
        schema = load_functions(functions, namespace="_deploy_schema").schema
    except FunctionLoadError:
        return  # the push reports it, with the rest of the load's errors
    wanted = wanted_search_indexes(schema)
    if not wanted:
        return
    names = ", ".join(f"{t}.{n}" for t, indexes in sorted(wanted.items()) for n in indexes)
    raise RuntimeError(
        f"the schema declares search indexes ({names}) but this stack has no OpenSearch "
        "endpoint, so nothing would index or serve them. Set the stack's OpenSearchEndpoint "
        "parameter to an OpenSearch domain's endpoint and deploy again: sam deploy "
        "--parameter-overrides OpenSearchEndpoint=https://search-<domain>.<region>.es."
        "amazonaws.com (with a samconfig.toml, add it to its parameter_overrides, which "
        "make deploy uses; with the CDK: cdk deploy --parameters OpenSearchEndpoint=...). "
        "Or remove the search indexes from the schema."
    )


def _progress(table: str, index: str, done: int) -> None:
    print(f"\rbuilding {table}.{index}: {done} documents", end="", file=sys.stderr, flush=True)


def push_schema(
    table: str,
    functions: Path,
    *,
    client: Any = None,
    streams_client: Any = None,
    search: SearchEngine | None = None,
) -> int:
    """Load `functions/`, push its schema to `table` (search indexes to
    `search`, the deployment's engine); the number of functions. RuntimeError
    when they do not load or the schema needs a search engine it lacks."""
    check_search(functions, search)
    store = DynamoDBStore(table, client=client, streams_client=streams_client)
    store.search = search
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
