"""The two shells the end-to-end tests run against, behind one start call:
`dev` (the dev server: SQLite, the in-process hub) and `aws` (the local AWS
harness: the Lambda handlers behind the API Gateway emulator, on DynamoDB
Local with its stream)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from tests.support.awslocal import start_aws_local
from tests.support.devserver import start_dev_server

SHELLS = ["dev", "aws"]


class Backend(Protocol):
    url: str

    def log(self) -> str: ...

    def stop(self, timeout: float = ...) -> int: ...


def start_shell(
    shell: str,
    functions: Path,
    data: Path,
    *,
    dynamodb_endpoint: str | None = None,
    port: int | None = None,
    table: str | None = None,
) -> Backend:
    """Start `functions` on `shell`; `data` keeps its state (the dev server's
    SQLite; the harness's admin key, its table lives in DynamoDB Local)."""
    if shell == "dev":
        return start_dev_server(functions, data, port=port)
    if shell == "aws":
        return start_aws_local(
            functions,
            data,
            table=table or f"e2e{uuid.uuid4().hex[:10]}",
            dynamodb_endpoint=dynamodb_endpoint,
            port=port,
        )
    raise ValueError(f"unknown shell {shell!r}: one of {SHELLS}")


def app_on_shell(
    app: Path,
    name: str,
    shell: str,
    dynamodb_for: str | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Backend]:
    """A test app on one shell for a module-scoped fixture (`yield from` it):
    started in a fresh data folder, stopped when the fixture ends."""
    server = start_shell(
        shell,
        app,
        tmp_path_factory.mktemp(f"{name}-{shell}") / "data",
        dynamodb_endpoint=dynamodb_for,
    )
    try:
        yield server
    finally:
        server.stop()
