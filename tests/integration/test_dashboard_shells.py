"""The dashboard on both shells: the same Starlette app serves it on the dev
server and, behind mangum, in the AWS shell's HTTP Lambda (here the local
harness: API Gateway emulator, Lambda handlers, DynamoDB Local). Its page, the
admin key, pages of documents, an edit the schema refuses, a delete, a
scheduled job canceled, a stored file (listed, read at its URL, deleted) and
the environment variables, each through HTTP."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest

from tests.support.dashboard_app import admin_request as request
from tests.support.dashboard_app import call, write_dashboard_app
from tests.support.shells import Backend, app_on_shell

pytestmark = pytest.mark.dynamodb_local

UPLOADS = """
from runtime import mutation


@mutation(args={})
def url(ctx, args):
    return ctx.storage.generate_upload_url()
"""


@pytest.fixture(scope="module")
def on_shell(
    shell: str, dynamodb_for: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    app = write_dashboard_app(tmp_path_factory.mktemp(f"dashapp-{shell}"))
    (app / "uploads.py").write_text(UPLOADS)
    yield from app_on_shell(app, "dashboard", shell, dynamodb_for, tmp_path_factory)


def test_the_page_and_its_script_are_served(on_shell: Backend) -> None:
    with urllib.request.urlopen(on_shell.url + "/_dashboard/", timeout=30) as answer:
        assert answer.headers["Content-Type"].startswith("text/html")
        assert "pyconvex dashboard" in answer.read().decode()
    with urllib.request.urlopen(on_shell.url + "/_dashboard/app.js", timeout=30) as answer:
        assert "javascript" in answer.headers["Content-Type"]
        assert "/api/dashboard/documents" in answer.read().decode()


def test_the_data_routes_need_the_admin_key(on_shell: Backend) -> None:
    status, body = request(on_shell, "GET", "/api/dashboard/tables", admin=False)
    assert (status, body["code"]) == (401, "ADMIN_KEY_REQUIRED")
    status, body = request(on_shell, "POST", "/api/dashboard/documents", {}, admin=False)
    assert (status, body["code"]) == (401, "ADMIN_KEY_REQUIRED")


def test_browse_edit_and_delete_documents(on_shell: Backend) -> None:
    ids = [call(on_shell, "notes:add", {"text": f"note {n}", "n": n}) for n in range(3)]
    status, listing = request(on_shell, "GET", "/api/dashboard/tables")
    assert status == 200 and "notes" in [t["name"] for t in listing["tables"]]

    page = {"table": "notes", "numItems": 2, "order": "asc"}
    _, first = request(on_shell, "POST", "/api/dashboard/documents", page)
    assert [d["_id"] for d in first["documents"]] == ids[:2] and not first["done"]
    _, second = request(
        on_shell, "POST", "/api/dashboard/documents", {**page, "cursor": first["cursor"]}
    )
    assert [d["_id"] for d in second["documents"]] == ids[2:] and second["done"]

    edit = {"id": ids[0], "fields": {"text": ["not", "a", "string"], "n": 0}}
    status, refused = request(on_shell, "POST", "/api/dashboard/documents/update", edit)
    assert status == 400 and "text" in refused["message"], refused
    edit = {"id": ids[0], "fields": {"text": "edited", "n": 10}}
    status, edited = request(on_shell, "POST", "/api/dashboard/documents/update", edit)
    assert status == 200 and (edited["document"]["text"], edited["document"]["n"]) == (
        "edited",
        10.0,
    )
    _, found = request(
        on_shell, "POST", "/api/dashboard/documents", {"table": "notes", "filter": {"n": 10.0}}
    )
    assert [d["_id"] for d in found["documents"]] == [ids[0]]

    _, deleted = request(on_shell, "POST", "/api/dashboard/documents/delete", {"ids": ids[1:]})
    assert deleted == {"deleted": 2}
    _, rest = request(on_shell, "POST", "/api/dashboard/documents", {"table": "notes"})
    assert [d["_id"] for d in rest["documents"]] == [ids[0]]


def test_a_scheduled_job_is_canceled(on_shell: Backend) -> None:
    job_id = call(on_shell, "notes:later", {"text": "in an hour"})
    status, _ = request(on_shell, "POST", "/api/dashboard/scheduled/cancel", {"id": job_id})
    assert status == 200
    _, listed = request(on_shell, "GET", "/api/dashboard/scheduled")
    job = next(j for j in listed["jobs"] if j["_id"] == job_id)
    assert (job["name"], job["state"]) == ("notes:add", {"kind": "canceled"})


def test_environment_variables_are_set_and_removed(on_shell: Backend) -> None:
    status, body = request(
        on_shell, "POST", "/api/admin/env", {"changes": {"DASH_GREETING": "hello"}}
    )
    assert status == 200, body
    _, listed = request(on_shell, "GET", "/api/admin/env")
    assert listed["variables"]["DASH_GREETING"] == "hello"
    request(on_shell, "POST", "/api/admin/env", {"changes": {"DASH_GREETING": None}})
    _, listed = request(on_shell, "GET", "/api/admin/env")
    assert "DASH_GREETING" not in listed["variables"]


def test_a_stored_file_is_listed_read_and_deleted(on_shell: Backend) -> None:
    upload = urllib.request.Request(
        call(on_shell, "uploads:url", {}),
        data=b"\x89PNG dashboard",
        method="POST",
        headers={"Content-Type": "image/png"},
    )
    with urllib.request.urlopen(upload, timeout=30) as answer:
        storage_id = json.loads(answer.read())["storageId"]
    _, listed = request(on_shell, "GET", "/api/dashboard/files")
    found = next(f for f in listed["files"] if f["_id"] == storage_id)
    assert found["contentType"] == "image/png" and found["size"] == 14
    with urllib.request.urlopen(found["url"], timeout=30) as answer:
        assert answer.read() == b"\x89PNG dashboard"
    _, gone = request(on_shell, "POST", "/api/dashboard/files/delete", {"id": storage_id})
    assert gone == {"deleted": storage_id}
    _, listed = request(on_shell, "GET", "/api/dashboard/files")
    assert storage_id not in [f["_id"] for f in listed["files"]]
