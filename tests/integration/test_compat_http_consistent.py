"""The HTTP API the official clients call, on both shells (issue 12):

- `/api/query_ts` + `/api/query_at_ts`: the JS `ConvexHttpClient`'s
  `consistentQuery` reads the database as of one timestamp across calls
  (dev server); the AWS shell refuses them with a clear error (DynamoDB
  cannot show a past state soundly: runtime/database/history.py);
- `/api/function` (the JS client's `function`), `/api/debug_event`;
- `CONVEX_CLOUD_URL` and `CONVEX_SITE_URL` in every kind of function, and
  refused as user variables (Convex: "built-in and cannot be overridden").
"""

from __future__ import annotations

import base64
import json
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from convex.http_client import ConvexHttpClient

from tests.support.shells import Backend, app_on_shell

JS = Path(__file__).resolve().parents[1] / "js"
APP = Path(__file__).parent / "apps" / "compat_http"


@pytest.fixture(scope="module")
def server(
    shell: str, dynamodb_for: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    yield from app_on_shell(APP, "http", shell, dynamodb_for, tmp_path_factory)


def _post(server: Backend, path: str, body: Any = None) -> requests.Response:
    return requests.post(f"{server.url}{path}", json=body, timeout=30)


def _ts(value: int) -> str:
    return base64.b64encode(struct.pack("<Q", value)).decode()


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_js_consistent_query_reads_one_timestamp_across_calls(shell: str, server: Backend) -> None:
    done = subprocess.run(
        ["node", "consistent.mjs", server.url], cwd=JS, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    got = json.loads(done.stdout)
    if shell == "aws":
        assert "CONSISTENT_QUERY_UNSUPPORTED" in got["error"]
        assert "not available on the AWS shell" in got["error"]
        return
    assert got == {
        "first": ["one", "two"],
        # Written after the client's timestamp: an edit, a delete, inserts, a
        # move out of the list; none is seen by its consistent queries.
        "again": ["one", "two"],
        "body": "one",
        "gone": "two",
        "count": "2n",  # int64: a BigInt
        # A plain query, and a new client's timestamp, see the latest data.
        "latest": ["three"],
        "fresh": ["three"],
        "freshCount": "3n",
        "viaFunction": "3n",
    }


def test_query_at_ts_over_raw_http(shell: str, server: Backend) -> None:
    client = ConvexHttpClient(server.url)
    note = client.mutation("notes:add", {"list": "raw", "body": "before"})
    got = _post(server, "/api/query_ts")
    if shell == "aws":
        assert got.status_code == 501
        assert got.json()["code"] == "CONSISTENT_QUERY_UNSUPPORTED"
        at = _post(server, "/api/query_at_ts", {"path": "notes:count", "args": {}, "ts": _ts(1)})
        assert at.status_code == 501 and at.json()["code"] == "CONSISTENT_QUERY_UNSUPPORTED"
        return
    assert got.status_code == 200
    ts = got.json()["ts"]
    assert len(base64.b64decode(ts)) == 8
    client.mutation("notes:edit", {"id": note, "body": "after"})

    def at(body: dict[str, Any]) -> requests.Response:
        return _post(server, "/api/query_at_ts", body)

    answer = at({"path": "notes:body", "args": [{"id": note}], "format": "json", "ts": ts})
    assert answer.status_code == 200
    assert answer.json() == {"status": "success", "value": "before", "logLines": []}
    assert client.query("notes:body", {"id": note}) == "after"

    # Function errors answer as /api/query does; bad timestamps are 400s.
    wrong_kind = at({"path": "notes:add", "args": {"list": "x", "body": "y"}, "ts": ts})
    assert wrong_kind.status_code in (400, 404)
    for bad in ("nope", _ts(1)[:-4], 12, None):
        refused = at({"path": "notes:count", "args": {}, "ts": bad})
        assert refused.status_code == 400 and refused.json()["code"] == "BAD_TIMESTAMP", bad
    future = at({"path": "notes:count", "args": {}, "ts": _ts(2**63)})
    assert future.status_code == 400
    assert future.json()["code"] == "TIMESTAMP_UNAVAILABLE"
    assert "newer than the latest commit" in future.json()["message"]


def test_debug_event_is_accepted(server: Backend) -> None:
    got = _post(server, "/api/debug_event", {"event": "LongWebsocketDisconnect"})
    assert got.status_code == 200 and got.json() == {}
    assert _post(server, "/api/debug_event", None).status_code == 400


def test_functions_see_the_deployment_urls(server: Backend) -> None:
    site = getattr(server, "site_url", server.url)  # the AWS shell serves both at one URL
    want = {"CONVEX_CLOUD_URL": server.url, "CONVEX_SITE_URL": site}
    client = ConvexHttpClient(server.url)
    assert client.query("urls:in_query") == want
    assert client.mutation("urls:in_mutation") == want
    assert client.action("urls:in_action") == want
    assert requests.get(f"{site}/urls", timeout=30).json() == want


def test_the_built_in_names_cannot_be_set(server: Backend) -> None:
    key = (server.data / "admin_key").read_text().strip()  # type: ignore[attr-defined]
    for name in ("CONVEX_CLOUD_URL", "CONVEX_SITE_URL"):
        for value in ("https://elsewhere.example", None):
            got = requests.post(
                f"{server.url}/api/admin/env",
                json={"changes": {name: value}},
                headers={"Authorization": f"Convex {key}"},
                timeout=30,
            )
            assert got.status_code == 400, got.text
            assert got.json()["message"].startswith(
                f'Environment variable with name "{name}" is built-in and cannot be overridden'
            )
    listed = requests.get(
        f"{server.url}/api/admin/env", headers={"Authorization": f"Convex {key}"}, timeout=30
    ).json()["variables"]
    assert not any(n.startswith("CONVEX_") for n in listed)
    assert ConvexHttpClient(server.url).query("urls:in_query")["CONVEX_CLOUD_URL"] == server.url
