"""The dashboard's data routes (runtime/http/dashboard_routes.py) on a real
dev server: the admin key, pages, filters, edits the schema refuses,
deletes, scheduled jobs canceled, crons, files, and the page itself."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.dashboard_app import write_dashboard_app
from tests.support.devserver import APP_FUNCTIONS, DevServer, dev_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    root = tmp_path_factory.mktemp("dash")
    with dev_server(write_dashboard_app(root), root / "data") as s:
        yield s


def request(
    s: DevServer, method: str, path: str, body: Any = None, *, key: str | None = ""
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Convex {key or s.admin_key}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(s.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as e:
        with e:
            return e.code, json.loads(e.read())


def call(s: DevServer, path: str, args: dict[str, Any]) -> Any:
    status, body = request(s, "POST", "/api/function", {"path": path, "args": args})
    assert status == 200 and body["status"] == "success", body
    return body["value"]


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
        status, body = request(server, method, path, {} if method == "POST" else None, key=None)
        assert (status, body["code"]) == (401, "ADMIN_KEY_REQUIRED"), path


def test_tables_pages_and_filters(server: DevServer) -> None:
    for n in range(7):
        call(server, "notes:add", {"text": "even" if n % 2 == 0 else "odd", "n": n})
    _, listing = request(server, "GET", "/api/dashboard/tables")
    notes = next(t for t in listing["tables"] if t["name"] == "notes")
    assert notes["indexes"] == {"by_n": ["n"]}
    assert notes["validator"]["value"]["n"]["fieldType"] == {"type": "number"}
    assert "_scheduled_functions" in listing["system"]

    _, first = request(
        server, "POST", "/api/dashboard/documents", {"table": "notes", "numItems": 4}
    )
    assert [d["n"] for d in first["documents"]] == [6.0, 5.0, 4.0, 3.0] and not first["done"]
    _, second = request(
        server,
        "POST",
        "/api/dashboard/documents",
        {"table": "notes", "numItems": 4, "cursor": first["cursor"]},
    )
    assert [d["n"] for d in second["documents"]] == [2.0, 1.0, 0.0] and second["done"]
    _, odd = request(
        server, "POST", "/api/dashboard/documents", {"table": "notes", "filter": {"text": "odd"}}
    )
    assert sorted(d["n"] for d in odd["documents"]) == [1.0, 3.0, 5.0]
    status, bad = request(
        server, "POST", "/api/dashboard/documents", {"table": "notes", "numItems": 0}
    )
    assert status == 400 and "numItems" in bad["message"]


def test_an_edit_is_validated_by_the_schema_and_a_delete_removes(server: DevServer) -> None:
    doc_id = call(server, "notes:add", {"text": "to edit", "n": 1})
    status, refused = request(
        server,
        "POST",
        "/api/dashboard/documents/update",
        {"id": doc_id, "fields": {"text": 5, "n": 1}},
    )
    assert status == 400 and "text" in refused["message"], refused
    status, edited = request(
        server,
        "POST",
        "/api/dashboard/documents/update",
        {"id": doc_id, "fields": {"_id": doc_id, "text": "edited", "n": 2}},
    )
    assert status == 200 and edited["document"]["text"] == "edited"
    assert edited["document"]["n"] == 2.0  # an int under v.number(): its float64
    _, deleted = request(server, "POST", "/api/dashboard/documents/delete", {"ids": [doc_id]})
    assert deleted == {"deleted": 1}
    status, missing = request(
        server, "POST", "/api/dashboard/documents/update", {"id": doc_id, "fields": {}}
    )
    assert (status, missing["code"]) == (404, "NOT_FOUND")


def test_a_scheduled_job_is_listed_and_canceled(server: DevServer) -> None:
    job_id = call(server, "notes:later", {"text": "in an hour"})
    _, listed = request(server, "GET", "/api/dashboard/scheduled")
    job = next(j for j in listed["jobs"] if j["_id"] == job_id)
    assert job["name"] == "notes:add" and job["state"] == {"kind": "pending"}
    status, _ = request(server, "POST", "/api/dashboard/scheduled/cancel", {"id": job_id})
    assert status == 200
    _, listed = request(server, "GET", "/api/dashboard/scheduled")
    assert next(j for j in listed["jobs"] if j["_id"] == job_id)["state"] == {"kind": "canceled"}
    status, bad = request(server, "POST", "/api/dashboard/scheduled/cancel", {"id": "nope"})
    assert status == 400 and "not an id of a scheduled function" in bad["message"]


def test_the_page_is_served_at_slash_dashboard(server: DevServer) -> None:
    with urllib.request.urlopen(server.url + "/_dashboard/", timeout=10) as answer:
        assert "pyconvex dashboard" in answer.read().decode()
    with urllib.request.urlopen(server.url + "/_dashboard/app.js", timeout=10) as answer:
        assert "/api/dashboard/documents" in answer.read().decode()


def test_crons_and_files_of_the_example_app(tmp_path: Path) -> None:
    with dev_server(APP_FUNCTIONS, tmp_path / "data") as s:
        _, crons = request(s, "GET", "/api/dashboard/crons")
        assert {
            "name": "trim old messages",
            "schedule": "every 600 s",
            "function": "maintenance:trim_messages",
            "args": {},
        } in crons["crons"]
        upload = call(s, "messages:generate_upload_url", {})
        req = urllib.request.Request(
            upload, data=b"\x89PNG....", method="POST", headers={"Content-Type": "image/png"}
        )
        with urllib.request.urlopen(req, timeout=10) as answer:
            storage_id = json.loads(answer.read())["storageId"]
        _, files = request(s, "GET", "/api/dashboard/files")
        found = next(f for f in files["files"] if f["_id"] == storage_id)
        assert found["contentType"] == "image/png" and found["url"].startswith(s.url)
        _, gone = request(s, "POST", "/api/dashboard/files/delete", {"id": storage_id})
        assert gone == {"deleted": storage_id}
        _, files = request(s, "GET", "/api/dashboard/files")
        assert all(f["_id"] != storage_id for f in files["files"])
