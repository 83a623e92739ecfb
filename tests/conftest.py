"""Backend fixtures shared by every tier.

`store` is parametrized over the storage adapters: SQLite (in memory),
DynamoDB under moto (request/response shapes, small data) and DynamoDB Local
(AWS's emulator, started once per session on a free loopback port).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from runtime.store.port import Store

BACKENDS = ["sqlite", "moto", "dynamodb_local"]


def _sqlite_store() -> Iterator[Store]:
    from runtime.store.sqlite import SqliteStore

    store = SqliteStore(":memory:")
    yield store
    store.close()


def _moto_store() -> Iterator[Store]:
    from tests.support.aws import moto_dynamodb_store

    yield from moto_dynamodb_store()


def _local_store(endpoint: str) -> Iterator[Store]:
    from tests.support.aws import dynamodb_local_store

    yield from dynamodb_local_store(endpoint, table_name=f"t{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def dynamodb_local_endpoint() -> Iterator[str]:
    """Start DynamoDB Local once per session; yields http://127.0.0.1:PORT."""
    from tests.support.dynamodb_local import running_dynamodb_local

    with running_dynamodb_local() as endpoint:
        yield endpoint


@pytest.fixture
def store_factory(request: pytest.FixtureRequest) -> Callable[[str], Iterator[Store]]:
    """Make a fresh store of a named backend; the caller iterates to close it."""

    def make(backend: str) -> Iterator[Store]:
        if backend == "sqlite":
            return _sqlite_store()
        if backend == "moto":
            return _moto_store()
        if backend == "dynamodb_local":
            endpoint = request.getfixturevalue("dynamodb_local_endpoint")
            return _local_store(endpoint)
        raise ValueError(backend)

    return make


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "dynamodb_local" and os.environ.get("SKIP_DYNAMODB_LOCAL") == "1":
        pytest.skip("SKIP_DYNAMODB_LOCAL=1")
    return name


@pytest.fixture
def store(backend: str, store_factory: Callable[[str], Iterator[Store]]) -> Iterator[Store]:
    it = store_factory(backend)
    s = next(it)
    yield s
    for _ in it:
        pass
