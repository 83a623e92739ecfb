"""The dashboard's data routes on the dev server, beyond what
test_dashboard_shells.py runs on both shells: every route's key check, the
tables' indexes and validators, refusals, and the example app's crons."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dashboard_app import admin_request as request
from tests.support.dashboard_app import call, write_dashboard_app
from tests.support.devserver import APP_FUNCTIONS, DevServer, dev_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    root = tmp_path_factory.mktemp("dash")
    with dev_server(write_dashboard_app(root), root / "data") as s:
        yield s


def test_every_route_needs_the_admin_key(server: DevServer) -> None:
    for method, path in [
        ("GET", "/api/dashboard/tables"),
        ("POST", "/api/dashboard/documents"),
        ("POST", "/api/dashboard/documents/update"),
        ("POST", "/api/dashboard/documents/delete"),
        ("GET", "/api/dashboard/scheduled"),
        ("POST", "/api/dashboard/scheduled/cancel"),
        ("GET", "/api/dashboard/crons"),
        ("GET", "/api/dashboard/files"),
        ("POST", "/api/dashboard/files/delete"),
    ]:
        body = {} if method == "POST" else None
        status, answer = request(server, method, path, body, admin=False)
        assert (status, answer["code"]) == (401, "ADMIN_KEY_REQUIRED"), path


def test_tables_show_indexes_and_validators_and_newest_first(server: DevServer) -> None:
    for n in range(3):
        call(server, "notes:add", {"text": f"t{n}", "n": n})
    _, listing = request(server, "GET", "/api/dashboard/tables")
    notes = next(t for t in listing["tables"] if t["name"] == "notes")
    assert notes["indexes"] == {"by_n": ["n"]}
    assert notes["validator"]["value"]["n"]["fieldType"] == {"type": "number"}
    assert "_scheduled_functions" in listing["system"] and "_storage" in listing["system"]
    _, page = request(server, "POST", "/api/dashboard/documents", {"table": "notes"})
    assert [d["n"] for d in page["documents"]][:3] == [2.0, 1.0, 0.0]


def test_bad_requests_are_refused_with_what_to_do(server: DevServer) -> None:
    status, bad = request(
        server, "POST", "/api/dashboard/documents", {"table": "notes", "numItems": 0}
    )
    assert status == 400 and "numItems is 1..200" in bad["message"]
    doc_id = call(server, "notes:add", {"text": "gone soon", "n": 1})
    request(server, "POST", "/api/dashboard/documents/delete", {"ids": [doc_id]})
    status, missing = request(
        server, "POST", "/api/dashboard/documents/update", {"id": doc_id, "fields": {}}
    )
    assert (status, missing["code"]) == (404, "NOT_FOUND")
    status, bad = request(server, "POST", "/api/dashboard/scheduled/cancel", {"id": "nope"})
    assert status == 400 and "not an id of a scheduled function" in bad["message"]


def test_the_example_apps_crons_are_listed(tmp_path: Path) -> None:
    with dev_server(APP_FUNCTIONS, tmp_path / "data") as s:
        _, crons = request(s, "GET", "/api/dashboard/crons")
    assert {
        "name": "trim old messages",
        "schedule": "every 600 s",
        "function": "maintenance:trim_messages",
        "args": {},
    } in crons["crons"]
