"""The database under test, on each backend (see tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.database import Database
from runtime.schema import define_schema, define_table
from runtime.store.port import Store
from runtime.values import v

SCHEMA = define_schema(
    {
        "accounts": define_table({"owner": v.string(), "balance": v.int64()}).index(
            "by_owner", ["owner"]
        ),
        "items": define_table(
            {
                "list": v.int64(),
                "rank": v.float64(),
                "name": v.string(),
                "tags": v.optional(v.array(v.string())),
            }
        )
        .index("by_list", ["list"])
        .index("by_list_rank", ["list", "rank"]),
        "messages": define_table(
            {"channel": v.string(), "body": v.string(), "author": v.optional(v.id("accounts"))}
        ).index("by_channel", ["channel"]),
        "scores": define_table({"score": v.float64()}).index("by_score", ["score"]),
    },
    strict_table_name_types=False,
)


@pytest.fixture
def db(store: Store) -> Database:
    return Database(store, SCHEMA)


@pytest.fixture
def capped_db() -> Database:
    """A database on a store that refuses commits past DynamoDB's native 100
    items (every store here commits any size by default; a store constructed
    with a cap must refuse, and the core must say why)."""
    from runtime.limits import TRANSACTION_ITEMS
    from runtime.store.sqlite import SqliteStore

    return Database(SqliteStore(":memory:", max_transaction_items=TRANSACTION_ITEMS), SCHEMA)


@pytest.fixture(scope="session")
def local_opensearch() -> Any:
    """The harness' OpenSearch-compatible server, once per session."""
    from runtime.emulator.opensearch import LocalOpenSearch

    with LocalOpenSearch() as server:
        yield server


@pytest.fixture(params=["embedded", "harness"])
def search_db(request: pytest.FixtureRequest) -> Any:
    """A database with a search engine, on each engine (see search_support.py):
    the embedded one, and the harness' (DynamoDB Local, the OpenSearch adapter
    on the local server, fed from the table's stream)."""
    from .search_support import SearchDb, harness_feed
    from .test_search import SEARCH_SCHEMA

    if request.param == "embedded":
        from runtime.store.sqlite import SqliteStore

        yield SearchDb(lambda: SqliteStore(":memory:"), SEARCH_SCHEMA, embedded=True)
        return
    import os
    import uuid

    from runtime.search.opensearch import OpenSearchEngine
    from tests.support.aws import dynamodb_local_store

    if os.environ.get("SKIP_DYNAMODB_LOCAL") == "1":
        pytest.skip("SKIP_DYNAMODB_LOCAL=1")
    endpoint = request.getfixturevalue("dynamodb_local_endpoint")
    server = request.getfixturevalue("local_opensearch")
    opened: list[Any] = []

    def make() -> Store:
        name = f"s{uuid.uuid4().hex[:12]}"
        it = dynamodb_local_store(endpoint, name)
        store = next(it)
        store.search = OpenSearchEngine(server.url, prefix=name, sigv4=False)  # type: ignore[attr-defined]
        opened.append(it)
        return store

    yield SearchDb(make, SEARCH_SCHEMA, embedded=False, feed=harness_feed)
    for it in opened:
        for _ in it:
            pass
