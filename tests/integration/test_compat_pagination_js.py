"""Convex's pagination through the official clients, on both shells (the
dev server and the local AWS harness): a live paginated query whose first
page was empty takes in every later insert (the JS client's paginated
subscription, which also splits the grown page at `splitCursor`), and
`maximumRowsRead` ends a page early over HTTP (the Python client)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from convex.http_client import ConvexHttpClient

from tests.support.shells import Backend, app_on_shell

JS = Path(__file__).resolve().parents[1] / "js"
APP = Path(__file__).parent / "apps" / "compat_paging"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")


@pytest.fixture(scope="module")
def paging(
    shell: str, dynamodb_for: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    yield from app_on_shell(APP, "paging", shell, dynamodb_for, tmp_path_factory)


def test_js_paginated_query_with_an_empty_first_page_shows_every_insert(
    paging: Backend,
) -> None:
    done = subprocess.run(
        ["node", "compat_paginated_empty.mjs", paging.url],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=90,
    )
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0, (events, done.stderr)
    states = [(e["ns"], e["status"]) for e in events if e["event"] == "state"]
    assert states == [
        ([], "Exhausted"),
        ([1], "Exhausted"),
        ([1, 2], "Exhausted"),  # before: [1], "CanLoadMore"
        ([0.5, 1, 2], "Exhausted"),
        ([0.5, 1, 2, 3], "Exhausted"),
    ]


def test_maximum_rows_read_ends_a_page_over_http(paging: Backend) -> None:
    client = ConvexHttpClient(paging.url)
    for n in range(10, 16):
        client.mutation("items:add", {"n": float(n), "tag": "odd" if n % 2 else "even"})
    opts = {"numItems": 5.0, "cursor": None, "maximumRowsRead": 3.0}
    seen: list[float] = []
    statuses = []
    while True:
        page = client.query("items:page", {"paginationOpts": opts, "tag": "odd"})
        seen += [d["n"] for d in page["page"]]
        statuses.append(page["pageStatus"])
        if page["isDone"]:
            break
        opts = {**opts, "cursor": page["continueCursor"]}
    # Three rows read a page (those the filter drops count), so the three
    # matches came in several pages, each but the last cut by the limit.
    assert seen == [11.0, 13.0, 15.0]
    assert len(statuses) >= 2 and set(statuses[:-1]) == {"SplitRequired"}
    whole = client.query(
        "items:page", {"paginationOpts": {"numItems": 5.0, "cursor": None}, "tag": "odd"}
    )
    assert [d["n"] for d in whole["page"]] == seen and whole["isDone"] is True
