"""A live paginated query whose first page was empty, on both sync
implementations (the dev server's in-process hub, the AWS shell's
store-backed sync): its end cursor is the end of the range, so every later
insert shows in it, as on Convex. (Before, its journal kept no end, and a
re-run read a new page of `numItems`: the second insert was left out.)"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.database import Database
from runtime.functions import load_functions
from runtime.functions.executor import Executor
from runtime.functions.platform_store import PlatformStore
from runtime.store.port import Store
from runtime.store.sqlite import SqliteStore
from runtime.sync.hub import SyncHub
from runtime.sync.stored import StoredSync
from tests.conformance.test_stored_sync import Client as StoredClient
from tests.conformance.test_stored_sync import RecordingPoster, feed
from tests.unit.test_sync_hub import Client as HubClient

APP = Path(__file__).resolve().parents[1] / "integration" / "apps" / "compat_paging"

Page = dict[str, Any]
Watch = Callable[[], Page]
"""Settle the sync and return the subscription's latest page."""


def _opts(num: float) -> dict[str, Any]:
    return {"paginationOpts": {"numItems": num, "cursor": None}}


@pytest.fixture
def hub_run(tmp_path: Path) -> Iterator[tuple[Executor, Callable[[], Watch]]]:
    store = SqliteStore(str(tmp_path / "db.sqlite3"))
    registry = load_functions(APP, namespace="_compat_paging_hub")
    db = Database(store)
    db.set_schema(registry.schema)
    executor = Executor(db, registry)
    hub = SyncHub(db, executor, store.snapshot)
    hub.start()

    def subscribe() -> Watch:
        c = HubClient(hub)
        c.add(1, "items:page", _opts(1.0))
        latest: dict[str, Any] = {}

        def watch() -> Page:
            hub.step()
            for t in c.take():
                for m in t.get("modifications", []):
                    latest.update(value=m["value"], journal=m["journal"])
            return {**latest["value"], "journal": latest["journal"]}

        return watch

    yield executor, subscribe
    hub.stop()
    store.close()


def _stored_run(store: Store) -> tuple[Executor, Callable[[], Watch]]:
    registry = load_functions(APP, namespace="_compat_paging_stored")
    db = Database(PlatformStore(store))
    db.set_schema(registry.schema)
    executor = Executor(db, registry)
    poster = RecordingPoster()
    sync = StoredSync(db, executor, store, poster, holder="test")
    position = [store.read_changes(None, 1000).position]

    def subscribe() -> Watch:
        c = StoredClient(sync, poster, "conn-page")
        c.add(1, "items:page", _opts(1.0))
        journal: list[Any] = [None]

        def watch() -> Page:
            position[0] = feed(store, sync, position[0])  # what the stream Lambda does
            for t in c.take():
                for m in t.get("modifications", []):
                    journal[0] = m.get("journal")
            return {**c.values[1], "journal": journal[0]}

        return watch

    return executor, subscribe


def _check_empty_first_page_takes_every_insert(
    executor: Executor, subscribe: Callable[[], Watch]
) -> None:
    watch = subscribe()
    first = watch()
    assert first["page"] == [] and first["isDone"] is True
    executor.call("items:add", {"n": 1.0})
    assert [d["n"] for d in watch()["page"]] == [1.0]
    executor.call("items:add", {"n": 2.0})
    got = watch()
    assert [d["n"] for d in got["page"]] == [1.0, 2.0] and got["isDone"] is True
    executor.call("items:add", {"n": 0.5})  # before the others: still the same page
    executor.call("items:add", {"n": 3.0})
    got = watch()
    assert [d["n"] for d in got["page"]] == [0.5, 1.0, 2.0, 3.0] and got["isDone"] is True
    # Grown past twice its first size: the JS client splits it at splitCursor.
    assert isinstance(got["splitCursor"], str)
    # The journal keeps the page's end: the end of the range.
    assert json.loads(got["journal"])["endCursors"] == [first["continueCursor"]]


def test_hub_empty_first_page_takes_every_insert(
    hub_run: tuple[Executor, Callable[[], Watch]],
) -> None:
    _check_empty_first_page_takes_every_insert(*hub_run)


def test_stored_sync_empty_first_page_takes_every_insert(store: Store) -> None:
    _check_empty_first_page_takes_every_insert(*_stored_run(store))
