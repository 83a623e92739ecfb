"""The deploy's one-time step against a table: push the app's schema
(build new indexes from the stored documents, drop removed ones). The
Lambdas never do this: they serve the schema the table holds.

`python -m runtime deploy --stack NAME` (what `make deploy` runs after
`sam deploy`) finds the table in the stack's outputs; `--table` names it
directly (DynamoDB Local, LocalStack: endpoints follow boto3's settings).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from runtime.backend import Backend
from runtime.store.dynamodb import DynamoDBStore

__all__ = ["push_schema", "stack_table"]


def stack_table(stack: str, cloudformation: Any = None) -> str:
    """The table a deployed stack made (its `TableName` output)."""
    if cloudformation is None:
        import boto3

        cloudformation = boto3.client("cloudformation")
    stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    for output in stacks[0].get("Outputs", []):
        if output["OutputKey"] == "TableName":
            return str(output["OutputValue"])
    raise RuntimeError(f"stack {stack} has no TableName output: was it made from template.yaml?")


def _progress(table: str, index: str, done: int) -> None:
    print(f"\rbuilding {table}.{index}: {done} documents", end="", file=sys.stderr, flush=True)


def push_schema(
    table: str, functions: Path, *, client: Any = None, streams_client: Any = None
) -> int:
    """Load `functions/`, push its schema to `table`; the number of functions."""
    store = DynamoDBStore(table, client=client, streams_client=streams_client)
    backend = Backend(store, functions, admin_key="", on_progress=_progress)
    try:
        report = backend.reload()
    finally:
        backend.close()
    if not report.ok:
        raise RuntimeError(f"the functions in {functions} failed to load:\n{report.message}")
    return report.functions
