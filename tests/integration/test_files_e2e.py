"""File storage end to end, on both shells (issue 14): the upload URL flow
over plain HTTP and with the official JS client, file URLs, actions and HTTP
actions with files, deletes that commit or roll back, refused upload URLs.

On the dev server file URLs are its own `/api/storage/<key>`; on the AWS
harness they are the S3 bucket's (CloudFront's stand-in), written by the
HTTP Lambda. An expired upload URL is not tested here: making one takes an
hour or a way to sign tokens from outside the backend, which the platform
must not offer; tests/unit/test_files_http.py::test_an_expired_url_is_refused
covers it through the same route in-process.
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from convex.http_client import ConvexHttpClient

from runtime.limits import FILE_UPLOAD_LAMBDA_BYTES
from tests.support.shells import Backend, app_on_shell

JS = Path(__file__).resolve().parents[1] / "js"
APP = Path(__file__).parent / "apps" / "files_e2e"
IMAGE = bytes((i * 13 + 5) % 256 for i in range(5000))
TIMEOUT = 60


@pytest.fixture(scope="module")
def server(
    shell: str, dynamodb_for: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    yield from app_on_shell(APP, "files", shell, dynamodb_for, tmp_path_factory)


def site_url(server: Backend) -> str:
    """HTTP actions: the dev server's second port; the AWS shell's one URL."""
    return str(getattr(server, "site_url", server.url))


def upload(server: Backend, data: bytes, content_type: str = "image/png") -> str:
    url = ConvexHttpClient(server.url).mutation("files:upload_url", {})
    got = requests.post(url, data=data, headers={"Content-Type": content_type}, timeout=TIMEOUT)
    assert got.status_code == 200, got.text
    storage_id: str = got.json()["storageId"]
    return storage_id


def test_upload_save_read_metadata_and_fetch_the_url(server: Backend) -> None:
    client = ConvexHttpClient(server.url)
    storage_id = upload(server, IMAGE)
    client.mutation("files:save", {"storageId": storage_id, "name": "plain"})
    found = client.query("files:by_name", {"name": "plain"})
    assert found["file"] == storage_id
    assert found["metadata"]["size"] == len(IMAGE)
    assert found["metadata"]["contentType"] == "image/png"
    assert found["meta"]["_id"] == storage_id and found["meta"]["size"] == len(IMAGE)
    got = requests.get(found["url"], timeout=TIMEOUT)
    assert got.status_code == 200 and got.content == IMAGE
    assert got.headers["content-type"] == "image/png"
    part = requests.get(found["url"], headers={"Range": "bytes=100-199"}, timeout=TIMEOUT)
    assert part.status_code == 206 and part.content == IMAGE[100:200]


def test_an_action_stores_and_reads_back(server: Backend) -> None:
    got = ConvexHttpClient(server.url).action(
        "files:store_and_read", {"text": "hello files", "contentType": "text/plain"}
    )
    assert got["back"] == "hello files"
    assert got["metadata"]["size"] == len("hello files")
    assert got["metadata"]["contentType"] == "text/plain"
    served = requests.get(got["url"], timeout=TIMEOUT)
    assert served.content == b"hello files"
    assert served.headers["content-type"].startswith("text/plain")


def test_a_delete_takes_effect_only_when_its_mutation_commits(server: Backend) -> None:
    client = ConvexHttpClient(server.url)
    storage_id = upload(server, b"short-lived")
    url = client.query("files:url", {"storageId": storage_id})
    with pytest.raises(Exception, match="rolled back on purpose"):
        client.mutation("files:remove", {"storageId": storage_id, "fail": True})
    assert client.query("files:url", {"storageId": storage_id}) == url
    assert requests.get(url, timeout=TIMEOUT).content == b"short-lived"
    client.mutation("files:remove", {"storageId": storage_id, "fail": False})
    assert client.query("files:url", {"storageId": storage_id}) is None
    gone = requests.get(url, timeout=TIMEOUT)
    # The dev server answers 404; S3 behind a GetObject-only policy answers 403.
    assert gone.status_code in (403, 404) and gone.content != b"short-lived"


def test_used_tampered_and_tokenless_upload_urls_are_refused(server: Backend) -> None:
    client = ConvexHttpClient(server.url)
    url = client.mutation("files:upload_url", {})
    assert requests.post(url, data=b"one", timeout=TIMEOUT).status_code == 200
    again = requests.post(url, data=b"two", timeout=TIMEOUT)
    assert (again.status_code, again.json()["code"]) == (409, "UPLOAD_URL_USED")
    fresh = client.mutation("files:upload_url", {})
    tampered = fresh[:-2] + ("AA" if not fresh.endswith("AA") else "BB")
    got = requests.post(tampered, data=b"x", timeout=TIMEOUT)
    assert (got.status_code, got.json()["code"]) == (403, "INVALID_UPLOAD_TOKEN")
    got = requests.post(fresh.split("?")[0], data=b"x", timeout=TIMEOUT)
    assert (got.status_code, got.json()["code"]) == (400, "MISSING_UPLOAD_TOKEN")
    # The refusals stored nothing and left the fresh URL unused.
    assert requests.post(fresh, data=b"three", timeout=TIMEOUT).status_code == 200


def test_too_large_uploads_are_refused_with_the_limit_named(shell: str, server: Backend) -> None:
    url = ConvexHttpClient(server.url).mutation("files:upload_url", {})
    if shell == "aws":
        # The HTTP Lambda's payload cap.
        got = requests.post(url, data=b"z" * (FILE_UPLOAD_LAMBDA_BYTES + 1), timeout=TIMEOUT)
        assert got.status_code == 413
        assert got.json()["code"] == "FILE_TOO_LARGE"
        assert "FILE_UPLOAD_LAMBDA_BYTES" in got.json()["message"]
    else:
        # A declared 5 GB body is refused before any of it is sent.
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.netloc, timeout=TIMEOUT)
        try:
            conn.putrequest("POST", f"{parts.path}?{parts.query}")
            conn.putheader("Content-Type", "application/octet-stream")
            conn.putheader("Content-Length", str(5 * 10**9))
            conn.endheaders()
            answer = conn.getresponse()
            body = json.loads(answer.read())
        finally:
            conn.close()
        assert answer.status == 413 and body["code"] == "FILE_TOO_LARGE"
        assert "FILE_BYTES" in body["message"]
    # Nothing was stored: the URL still takes a file.
    assert requests.post(url, data=b"fits", timeout=TIMEOUT).status_code == 200


def test_http_actions_store_a_body_and_serve_a_stored_file(server: Backend) -> None:
    site = site_url(server)
    stored = requests.post(
        f"{site}/store", data=IMAGE, headers={"Content-Type": "image/gif"}, timeout=TIMEOUT
    )
    assert stored.status_code == 200, stored.text
    storage_id = stored.json()["storageId"]
    served = requests.get(f"{site}/serve", params={"id": storage_id}, timeout=TIMEOUT)
    assert served.status_code == 200 and served.content == IMAGE
    assert served.headers["content-type"] == "image/gif"
    url = ConvexHttpClient(server.url).query("files:url", {"storageId": storage_id})
    assert requests.get(url, timeout=TIMEOUT).content == IMAGE


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_the_js_client_uploads_saves_and_fetches(server: Backend) -> None:
    done = subprocess.run(
        ["node", "files_http.mjs", server.url, site_url(server)],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    got: dict[str, Any] = json.loads(done.stdout)
    assert got == {
        "uploadStatus": 200,
        "sameId": True,
        "size": 3000,
        "contentType": "image/png",
        "getStatus": 200,
        "getType": "image/png",
        "sameBytes": True,
        "actionStoreStatus": 200,
        "actionServeStatus": 200,
        "actionType": "application/x-test",
        "actionSameBytes": True,
        "actionFileHasUrl": True,
    }
