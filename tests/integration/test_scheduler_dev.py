"""Scheduled functions on a real `python -m runtime dev` (127.0.0.1, free
ports, a temp data dir): the official `convex` client calls a mutation that
schedules an action, which runs and writes its reply; jobs due while the
server is killed -9 run once after the restart; an action the kill cut off
is failed, never re-run; the call log shows the scheduled runs."""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from convex import ConvexClient

from runtime.scheduler.runner import LOST_WORKER
from tests.support.devserver import APP_FUNCTIONS, DevServer, start_dev_server

LATER = """\
import time

from runtime import internal_action, internal_mutation, mutation, query, v


@mutation(args={"n": v.float64(), "delay": v.float64()})
def plan(ctx, args):
    return [
        ctx.scheduler.run_after(args["delay"], bump, {"name": f"job{i}"})
        for i in range(int(args["n"]))
    ]


@internal_mutation(args={"name": v.string()})
def bump(ctx, args):
    doc = ctx.db.query("counts").filter(lambda q: q.eq(q.field("name"), args["name"])).first()
    if doc is None:
        ctx.db.insert("counts", {"name": args["name"], "n": 1.0})
    else:
        ctx.db.patch(doc["_id"], {"n": doc["n"] + 1})


@mutation(args={})
def start_slow(ctx, args):
    return ctx.scheduler.run_after(0, slow, {})


@internal_action(args={})
def slow(ctx, args):
    ctx.run_mutation(bump, {"name": "slow"})
    time.sleep(600)


@query(args={})
def counts(ctx, args):
    return {d["name"]: d["n"] for d in ctx.db.query("counts").collect()}


@query(args={"id": v.string()})
def job(ctx, args):
    return ctx.db.system.get(args["id"])
"""

SCHEMA = """\
from runtime import define_schema, define_table, v

schema = define_schema(
    {
        "accounts": define_table({"owner": v.string(), "balance": v.int64()}).index(
            "by_owner", ["owner"]
        ),
        "messages": define_table({"author": v.string(), "body": v.string(), "format": v.string()}),
        "users": define_table({"name": v.string(), "tokenIdentifier": v.string()}).index(
            "by_token", ["tokenIdentifier"]
        ),
    },
    strict_table_name_types=False,
)
"""


def _wait(check: Callable[[], Any], what: str, bound: float = 60) -> Any:
    """Poll until `check()` is truthy; the bound only ends a hang."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def _post(server: DevServer, kind: str, path: str, args: dict[str, Any]) -> Any:
    response = requests.post(
        f"{server.url}/api/{kind}", json={"path": path, "args": args}, timeout=30
    )
    body = response.json()
    assert body.get("status") == "success", body
    return body["value"]


@pytest.fixture
def app(tmp_path: Path) -> Path:
    folder = tmp_path / "functions"
    shutil.copytree(APP_FUNCTIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "later.py").write_text(LATER)
    (folder / "schema.py").write_text(SCHEMA)
    return folder


@pytest.fixture
def servers() -> Iterator[list[DevServer]]:
    started: list[DevServer] = []
    yield started
    for server in started:
        server.stop()


def test_the_official_client_schedules_and_the_job_runs(
    app: Path, tmp_path: Path, servers: list[DevServer]
) -> None:
    server = start_dev_server(app, tmp_path / "data")
    servers.append(server)
    client = ConvexClient(server.url)
    job_id = client.mutation("assistant:ask", {"body": "hello?", "author": "ann"})

    def replied() -> bool:
        return any(m["author"] == "assistant" for m in client.query("messages:list"))

    _wait(replied, "the scheduled reply")
    jobs = client.query("assistant:jobs")
    (job,) = [j for j in jobs if j["_id"] == job_id]
    assert job["name"] == "assistant:reply" and job["state"] == {"kind": "success"}
    assert job["args"] == [{"question": "hello?"}]
    _wait(lambda: "assistant:reply" in server.log(), "the call log line")
    assert "assistant:post" in server.log()


def test_jobs_due_during_a_kill_9_run_once_after_restart(
    app: Path, tmp_path: Path, servers: list[DevServer]
) -> None:
    data = tmp_path / "data"
    server = start_dev_server(app, data)
    servers.append(server)
    # the slow action starts, then the process dies under it
    slow = _post(server, "mutation", "later:start_slow", {})
    _wait(lambda: _post(server, "query", "later:counts", {}).get("slow"), "the slow action")
    delay = 2000.0
    ids = _post(server, "mutation", "later:plan", {"n": 5.0, "delay": delay})
    planned = time.time()
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)
    time.sleep(max(0.0, planned + delay / 1000 + 0.5 - time.time()))  # due while down

    again = start_dev_server(app, data)
    servers.append(again)

    def all_ran() -> dict[str, float] | None:
        counts: dict[str, float] = _post(again, "query", "later:counts", {})
        return counts if all(f"job{i}" in counts for i in range(5)) else None

    counts = _wait(all_ran, "the overdue jobs")
    for job_id in ids:
        assert _post(again, "query", "later:job", {"id": job_id})["state"] == {"kind": "success"}
    assert counts == {**{f"job{i}": 1.0 for i in range(5)}, "slow": 1.0}
    state = _post(again, "query", "later:job", {"id": slow})["state"]
    assert state == {"kind": "failed", "error": LOST_WORKER}
    # scheduled mutations run through the call log like calls
    assert "later:bump" in again.log()
