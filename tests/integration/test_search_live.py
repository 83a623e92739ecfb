"""Live queries over search, on both shells (the dev server: SQLite FTS5 written
in the commit; the local AWS harness: the OpenSearch API fed by the stream
Lambda before it invalidates), through the official clients: a subscription
to a search is pushed a new result when a matching document is inserted,
changed or deleted, and only then."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from convex import ConvexClient

from tests.support.shells import Backend, app_on_shell

APP = Path(__file__).parent / "apps" / "search"
JS = Path(__file__).resolve().parents[1] / "js"


@pytest.fixture(scope="module")
def searching(
    shell: str, dynamodb_for: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    yield from app_on_shell(APP, "search", shell, dynamodb_for, tmp_path_factory)


def test_a_search_subscription_follows_inserts_edits_and_deletes(searching: Backend) -> None:
    watcher = ConvexClient(searching.url)
    writer = ConvexClient(searching.url)
    updates = iter(watcher.subscribe("messages:search", {"text": "hello wor", "channel": "py"}))
    assert next(updates) == []

    first = writer.mutation("messages:send", {"body": "hello world", "channel": "py"})
    assert next(updates) == ["hello world"]
    # another channel: filtered out, and no push (the next push is the one below)
    writer.mutation("messages:send", {"body": "hello world", "channel": "elsewhere"})
    writer.mutation("messages:send", {"body": "hello hello wormhole", "channel": "py"})
    assert next(updates) == ["hello hello wormhole", "hello world"]
    writer.mutation("messages:edit", {"id": first, "body": "goodbye"})
    assert next(updates) == ["hello hello wormhole"]
    second = writer.query("messages:search", {"text": "wormhole", "channel": "py"})
    assert second == ["hello hello wormhole"]
    writer.mutation("messages:edit", {"id": first, "body": "hello again world"})
    assert next(updates) == ["hello hello wormhole", "hello again world"]


def test_a_mutation_searches_its_own_insert(searching: Backend) -> None:
    client = ConvexClient(searching.url)
    found = client.mutation(
        "messages:send_and_search",
        {"body": "a very unusual zebra", "channel": "mine", "text": "zebra"},
    )
    assert found == ["a very unusual zebra"]


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_the_js_client_sees_a_search_change_live(searching: Backend) -> None:
    done = subprocess.run(
        ["node", "search_live.mjs", searching.url, "js"],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=90,
    )
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0, (events, done.stderr)
    assert [e["value"] for e in events if e["event"] == "state"] == [
        [],
        ["an otter swims"],
        ["otter otter otter", "an otter swims"],
        ["otter otter otter"],
    ]
