"""The dev server removes, at start, blobs that a crash left without a
`_storage` document, and keeps every file a document points to."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import requests

from runtime.limits import FILE_ORPHAN_SECONDS
from tests.support.devserver import DevServer, start_dev_server


def _blob(data: Path, key: str) -> Path:
    return data / "files" / key[:2] / key


def test_the_dev_server_sweeps_orphan_blobs_at_start(
    start_server: Callable[..., DevServer],
) -> None:
    server = start_server()
    url = requests.post(
        server.url + "/api/mutation", json={"path": "messages:generate_upload_url", "args": {}}
    ).json()["value"]
    stored = requests.post(url, data=b"kept", headers={"Content-Type": "text/plain"})
    key = stored.json()["storageId"]
    data = server.data
    server.stop()
    kept = next(p for p in (data / "files").rglob("*") if p.is_file())
    orphan = secrets.token_hex(16)
    _blob(data, orphan).parent.mkdir(mode=0o700, exist_ok=True)
    _blob(data, orphan).write_bytes(b"left by a crash")
    old = time.time() - 2 * FILE_ORPHAN_SECONDS
    for path in (kept, _blob(data, orphan)):
        os.utime(path, (old, old))

    again = start_dev_server(server.functions, data)
    try:
        deadline = time.monotonic() + 30  # a bound on a hang, not a timed assertion
        while "removed 1 stored file" not in again.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "removed 1 stored file" in again.log()
        assert not _blob(data, orphan).exists()
        assert kept.read_bytes() == b"kept"
        fetched = requests.post(
            again.url + "/api/query",
            json={"path": "messages:list", "args": {}},
        )
        assert fetched.status_code == 200
    finally:
        again.stop()
    assert key
