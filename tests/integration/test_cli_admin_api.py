"""The admin routes the CLI and the dashboard read, on a real dev server:
`GET /api/admin/functions` (validators as JSON) and `GET /api/admin/logs`
(the call history: calls, calls refused before they ran, the long-poll,
the ring's limit)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from convex import ConvexClient

from runtime.functions.call_history import CallHistory
from runtime.functions.executor import CallResult
from tests.support.devserver import APP_FUNCTIONS, DevServer, dev_server
from tests.support.shells import Backend, app_on_shell


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with dev_server(APP_FUNCTIONS, tmp_path_factory.mktemp("data")) as s:
        yield s


@pytest.fixture(scope="module")
def on_shell(
    shell: str, dynamodb_for: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    yield from app_on_shell(APP_FUNCTIONS, "adminapi", shell, dynamodb_for, tmp_path_factory)


def admin_get(s: Backend, path: str) -> Any:
    key = getattr(s, "admin_key")  # noqa: B009 - both shells have it; the Protocol does not
    request = urllib.request.Request(s.url + path, headers={"Authorization": f"Convex {key}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def post(s: Backend, route: str, path: str, args: Any) -> dict[str, Any]:
    request = urllib.request.Request(
        s.url + route,
        data=json.dumps({"path": path, "args": args}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return dict(json.loads(answer.read()))
    except urllib.error.HTTPError as e:
        with e:
            return dict(json.loads(e.read()))


def logged_after(s: Backend, seq: int) -> list[dict[str, Any]]:
    return list(admin_get(s, f"/api/admin/logs?after={seq}")["entries"])


def test_admin_routes_need_the_key(server: DevServer) -> None:
    for path in ("/api/admin/functions", "/api/admin/logs"):
        for headers in ({}, {"Authorization": "Convex not-the-key"}):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(
                    urllib.request.Request(server.url + path, headers=headers), timeout=10
                )
            assert refused.value.code == 401
            assert b"ADMIN_KEY_REQUIRED" in refused.value.read()
            refused.value.close()


def test_functions_lists_validators_sorted_by_path(server: DevServer) -> None:
    listing = admin_get(server, "/api/admin/functions")
    paths = [f["path"] for f in listing["functions"]]
    assert paths == sorted(paths)
    send = next(f for f in listing["functions"] if f["path"] == "messages:send")
    assert send["kind"] == "mutation" and send["visibility"] == "public"
    assert send["args"]["type"] == "object"
    assert send["args"]["value"]["author"]["fieldType"] == {"type": "string"}
    assert send["returns"] is None
    image = next(f for f in listing["functions"] if f["path"] == "messages:save_image")
    assert image["visibility"] == "internal"
    assert image["args"]["value"]["storageId"]["fieldType"] == {
        "type": "id",
        "tableName": "_storage",
    }
    assert {"method": "GET", "path": "/balance"} in listing["http"]


def test_logs_show_a_call_with_its_outcome(server: DevServer) -> None:
    start = admin_get(server, "/api/admin/logs")["next"]
    assert (
        post(server, "/api/mutation", "messages:send", {"author": "a", "body": "b"})["status"]
        == "success"
    )
    (entry,) = logged_after(server, start)
    assert entry["seq"] == start + 1
    assert (entry["kind"], entry["path"], entry["ok"], entry["error"]) == (
        "mutation",
        "messages:send",
        True,
        None,
    )
    assert entry["nested"] is False and entry["durationMs"] >= 0 and entry["requestId"]
    assert admin_get(server, f"/api/admin/logs?after={entry['seq']}") == {
        "entries": [],
        "next": entry["seq"],
    }


def test_calls_refused_before_they_ran_are_logged(server: DevServer) -> None:
    """Bad arguments and unknown functions, over HTTP and over the sync
    socket (a subscription's query is refused in another code path)."""
    start = admin_get(server, "/api/admin/logs")["next"]
    bad = post(server, "/api/mutation", "messages:send", {"author": 5})
    assert bad["code"] == "ARGUMENTS_INVALID"
    missing = post(server, "/api/query", "messages:nothing_here", {})
    assert "Could not find public function" in json.dumps(missing)
    client = ConvexClient(server.url)
    with pytest.raises(Exception, match="ArgumentValidationError"):
        client.query("messages:list", {"unexpected": 1})
    entries = logged_after(server, start)
    assert [(e["kind"], e["path"], e["ok"]) for e in entries] == [
        ("mutation", "messages:send", False),
        ("query", "messages:nothing_here", False),
        ("query", "messages:list", False),
    ]
    assert "ARGUMENTS_INVALID" in entries[0]["error"]
    assert "Could not find public function for 'messages:nothing_here'" in entries[1]["error"]
    assert "ArgumentValidationError" in entries[2]["error"]


def test_a_long_poll_wakes_on_the_next_call(server: DevServer) -> None:
    last = admin_get(server, "/api/admin/logs")["next"]
    got: list[Any] = []
    waiter = threading.Thread(
        target=lambda: got.append(admin_get(server, f"/api/admin/logs?after={last}&wait=20"))
    )
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive()  # nothing logged yet: still waiting
    post(server, "/api/query", "messages:list", {})
    waiter.join(25)
    assert got and [e["path"] for e in got[0]["entries"]] == ["messages:list"]


def test_many_long_polls_leave_the_api_its_threads(server: DevServer) -> None:
    """More open long-polls than the server has worker threads (anyio's
    40): a call still runs at once, and wakes every one of them. (Waiting
    on worker threads, the call queued behind the polls until their wait
    ran out, and they returned empty.)"""
    last = admin_get(server, "/api/admin/logs")["next"]
    got: list[Any] = []
    polls = [
        threading.Thread(
            target=lambda: got.append(admin_get(server, f"/api/admin/logs?after={last}&wait=20"))
        )
        for _ in range(48)
    ]
    for poll in polls:
        poll.start()
    time.sleep(0.5)
    assert all(poll.is_alive() for poll in polls)  # all parked, none answered
    post(server, "/api/mutation", "messages:send", {"author": "a", "body": "wakes them all"})
    for poll in polls:
        poll.join(25)
    assert len(got) == len(polls)
    assert all([e["path"] for e in answer["entries"]] == ["messages:send"] for answer in got)


def test_logs_refuse_a_bad_position(server: DevServer) -> None:
    for query in ("after=x", "after=-1", "wait=soon"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            admin_get(server, f"/api/admin/logs?{query}")
        assert refused.value.code == 400
        refused.value.close()


def test_the_ring_keeps_the_last_calls(tmp_path: Path) -> None:
    history = CallHistory(limit=3)
    for n in range(5):
        history(CallResult(f"m:f{n}", "query", request_id=str(n)))
    kept, last = history.after(None)
    assert last == 5 and [e["path"] for e in kept] == ["m:f2", "m:f3", "m:f4"]
    assert [e["seq"] for e in history.after(0)[0]] == [3, 4, 5]
    assert [e["seq"] for e in history.after(4)[0]] == [5]
    # A position from before a restart (past the newest): all that is kept.
    assert [e["seq"] for e in history.after(99)[0]] == [3, 4, 5]


def test_each_shell_lists_functions_and_logs_its_calls(on_shell: Backend) -> None:
    """The same routes on the AWS shell's HTTP Lambda, whose process keeps its own ring."""
    listing = admin_get(on_shell, "/api/admin/functions")
    assert "messages:send" in [f["path"] for f in listing["functions"]]
    start = admin_get(on_shell, "/api/admin/logs")["next"]
    post(on_shell, "/api/mutation", "messages:send", {"author": "a", "body": "b"})
    post(on_shell, "/api/mutation", "messages:send", {"author": 5})
    entries = logged_after(on_shell, start)
    assert [(e["path"], e["ok"]) for e in entries] == [
        ("messages:send", True),
        ("messages:send", False),
    ]
