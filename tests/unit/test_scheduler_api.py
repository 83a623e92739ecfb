"""`ctx.scheduler` (runtime/functions/scheduler.py) and the transaction's
platform writes it needs (`system_replace`, `system_delete_record`), on a
real SQLite store: the job document and queue record commit with the
mutation or not at all; actions schedule at once; the limits and the
errors say what to do."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.backend import Backend
from runtime.database import Database
from runtime.database.errors import InvalidDocumentError
from runtime.functions.scheduler import JOBS_TABLE, QUEUE_PREFIX, due_of, queue_key
from runtime.limits import JOB_QUEUE_SHARDS, SCHEDULED_FUNCTIONS_PER_CALL
from runtime.store.port import scan_all
from runtime.store.sqlite import SqliteStore

FUNCTIONS = """
import datetime as dt

from runtime import action, internal_mutation, mutation, query, v


@internal_mutation(args={"text": v.string()})
def note(ctx, args):
    ctx.db.insert("notes", {"text": args["text"]})


@mutation(args={"delay": v.number(), "fail": v.boolean()})
def later(ctx, args):
    job = ctx.scheduler.run_after(args["delay"], "jobs:note", {"text": "later"})
    if args["fail"]:
        raise ValueError("rolled back")
    return job


@mutation(args={"at": v.number()})
def at(ctx, args):
    return ctx.scheduler.run_at(args["at"], note, {"text": "at"})


@mutation(args={})
def at_datetime(ctx, args):
    when = dt.datetime(2030, 1, 2, tzinfo=dt.timezone.utc)
    return ctx.scheduler.run_at(when, "jobs:note", {"text": "dt"})


@mutation(args={"n": v.number()})
def many(ctx, args):
    for i in range(int(args["n"])):
        ctx.scheduler.run_after(1000, "jobs:note", {"text": str(i)})


@mutation(args={"id": v.string()})
def cancel(ctx, args):
    ctx.scheduler.cancel(args["id"])


@mutation(args={"fn": v.string()})
def schedule_any(ctx, args):
    return ctx.scheduler.run_after(0, args["fn"], {})


@mutation(args={})
def bad_args(ctx, args):
    return ctx.scheduler.run_after(0, "jobs:note", {"text": 1})


@query(args={})
def jobs(ctx, args):
    return ctx.db.system.query("_scheduled_functions").collect()


@query(args={"id": v.string()})
def job(ctx, args):
    return ctx.db.system.get(args["id"])


@query(args={})
def has_scheduler(ctx, args):
    return hasattr(ctx, "scheduler")


@action(args={"fail": v.boolean()})
def from_action(ctx, args):
    job = ctx.scheduler.run_after(0, "jobs:note", {"text": "action"})
    if args["fail"]:
        raise ValueError("the action failed after scheduling")
    return job


@action(args={})
async def from_async_action(ctx, args):
    job = await ctx.scheduler.run_after(5000, "jobs:note", {"text": "async"})
    await ctx.scheduler.cancel(job)
    return job
"""


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    fns = tmp_path / "functions"
    fns.mkdir()
    (fns / "jobs.py").write_text(FUNCTIONS)
    b = Backend(SqliteStore(str(tmp_path / "db.sqlite3")), fns, admin_key=None)
    assert b.reload().ok, b.load_error
    yield b
    b.close()


def _call(backend: Backend, path: str, args: dict[str, Any] | None = None) -> Any:
    result = backend.executor.call(f"jobs:{path}", args or {})
    assert result.ok, result.error_text
    return result.value


def _fail(backend: Backend, path: str, args: dict[str, Any] | None = None) -> str:
    result = backend.executor.call(f"jobs:{path}", args or {})
    assert not result.ok
    return result.error_text or ""


def _queue(backend: Backend) -> list[tuple[int, str]]:
    out = []
    for shard in range(JOB_QUEUE_SHARDS):
        for item in scan_all(backend.store, f"{QUEUE_PREFIX}{shard}"):
            out.append((due_of(item.key), item.value.decode()))
    return sorted(out)


# ---- the transaction's platform writes ---------------------------------------------


def test_system_replace_keeps_id_and_creation_time(tmp_path: Path) -> None:
    db = Database(SqliteStore(str(tmp_path / "db.sqlite3")))
    doc_id = db.mutation(
        lambda tx: tx.system_insert(JOBS_TABLE, {"state": {"kind": "pending"}}, b"\x01" * 16)
    ).value
    before = db.query(lambda tx: tx.get(doc_id)).value
    db.mutation(lambda tx: tx.system_replace(doc_id, {"state": {"kind": "success"}, "x": 1.0}))
    after = db.query(lambda tx: tx.get(doc_id)).value
    assert after == {
        "_id": doc_id,
        "_creationTime": before["_creationTime"],
        "state": {"kind": "success"},
        "x": 1.0,
    }


def test_system_replace_refuses_an_app_table(tmp_path: Path) -> None:
    db = Database(SqliteStore(str(tmp_path / "db.sqlite3")))
    doc_id = db.mutation(lambda tx: tx.insert("notes", {"a": 1.0})).value
    with pytest.raises(InvalidDocumentError, match="not a system table"):
        db.mutation(lambda tx: tx.system_replace(doc_id, {"a": 2.0}))


def test_system_delete_record_deletes_in_the_commit(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "db.sqlite3"))
    db = Database(store)
    key = ("s:test", b"k")
    db.mutation(lambda tx: tx.system_put(key, b"v"))
    assert store.get([key])[0] is not None

    def read_delete_read(tx: Any) -> bytes | None:
        assert tx.system_get(key) == b"v"
        tx.system_delete_record(key)
        return tx.system_get(key)  # reads its own delete

    outcome = db.mutation(read_delete_read)
    assert outcome.value is None
    assert outcome.plan is not None and outcome.plan.breakdown["system"] == 1
    assert store.get([key])[0] is None
    db.mutation(lambda tx: tx.system_delete_record(key))  # absent: a no-op


# ---- scheduling from a mutation -------------------------------------------------------


def test_run_after_writes_the_job_and_its_queue_record(backend: Backend) -> None:
    job_id = _call(backend, "later", {"delay": 5000.0, "fail": False})
    job = _call(backend, "job", {"id": job_id})
    assert job["name"] == "jobs:note"
    assert job["args"] == [{"text": "later"}]
    assert job["state"] == {"kind": "pending"}
    assert "completedTime" not in job
    assert job["scheduledTime"] >= job["_creationTime"] + 5000 - 1
    assert _queue(backend) == [(int(-(-job["scheduledTime"] // 1)), job_id)]
    assert _call(backend, "jobs") == [job]


def test_a_failed_mutation_schedules_nothing(backend: Backend) -> None:
    _fail(backend, "later", {"delay": 0.0, "fail": True})
    assert _call(backend, "jobs") == []
    assert _queue(backend) == []


def test_run_at_takes_ms_a_function_object_and_a_datetime(backend: Backend) -> None:
    a = _call(backend, "job", {"id": _call(backend, "at", {"at": 1.9e12})})
    assert a["scheduledTime"] == 1.9e12 and a["name"] == "jobs:note"
    b = _call(backend, "job", {"id": _call(backend, "at_datetime")})
    assert b["scheduledTime"] == dt.datetime(2030, 1, 2, tzinfo=dt.UTC).timestamp() * 1000


def test_negative_delay_and_past_time_are_due_now(backend: Backend) -> None:
    job = _call(backend, "job", {"id": _call(backend, "later", {"delay": -5000.0, "fail": False})})
    assert job["scheduledTime"] <= job["_creationTime"] + 1
    past = _call(backend, "job", {"id": _call(backend, "at", {"at": 1000.0})})
    assert past["scheduledTime"] == 1000
    assert _queue(backend)[0][0] == 1000


def test_the_queue_spreads_over_the_shards(backend: Backend) -> None:
    _call(backend, "many", {"n": 200.0})
    shards = {k[0] for k in (queue_key(0, bytes([i]) + b"\0" * 15) for i in range(256))}
    assert len(shards) == JOB_QUEUE_SHARDS
    used = {s for s in range(JOB_QUEUE_SHARDS) if scan_all(backend.store, f"{QUEUE_PREFIX}{s}")}
    assert len(used) > 1


def test_too_many_scheduled_functions_fail_the_call(backend: Backend) -> None:
    text = _fail(backend, "many", {"n": SCHEDULED_FUNCTIONS_PER_CALL + 1.0})
    assert "SCHEDULED_FUNCTIONS_PER_CALL" in text
    assert _call(backend, "jobs") == []


def test_unknown_function_query_and_bad_args_are_refused(backend: Backend) -> None:
    assert "Could not find function for 'jobs:nope'" in _fail(
        backend, "schedule_any", {"fn": "jobs:nope"}
    )
    assert "only mutations and actions can be scheduled" in _fail(
        backend, "schedule_any", {"fn": "jobs:jobs"}
    )
    assert "ArgumentValidationError" in _fail(backend, "bad_args")
    assert _call(backend, "jobs") == []


def test_cancel_a_pending_job(backend: Backend) -> None:
    job_id = _call(backend, "later", {"delay": 5000.0, "fail": False})
    _call(backend, "cancel", {"id": job_id})
    job = _call(backend, "job", {"id": job_id})
    assert job["state"] == {"kind": "canceled"} and job["completedTime"] > 0
    _call(backend, "cancel", {"id": job_id})  # final: a no-op
    assert _call(backend, "job", {"id": job_id}) == job


def test_cancel_refuses_an_id_that_is_not_a_job(backend: Backend) -> None:
    assert "is not an id of a scheduled function" in _fail(backend, "cancel", {"id": "nope"})


def test_queries_have_no_scheduler(backend: Backend) -> None:
    assert _call(backend, "has_scheduler") is False


# ---- scheduling from actions ----------------------------------------------------------


def test_an_action_schedules_at_once_and_a_later_failure_keeps_it(backend: Backend) -> None:
    woke: list[float] = []
    backend.executor.on_scheduled = woke.append
    job_id = _call(backend, "from_action", {"fail": False})
    assert _call(backend, "job", {"id": job_id})["state"] == {"kind": "pending"}
    _fail(backend, "from_action", {"fail": True})
    assert len(_call(backend, "jobs")) == 2
    assert len(woke) == 2


def test_an_async_action_awaits_the_scheduler(backend: Backend) -> None:
    job_id = _call(backend, "from_async_action")
    assert _call(backend, "job", {"id": job_id})["state"] == {"kind": "canceled"}


def test_a_mutation_wakes_the_timer_only_after_commit(backend: Backend) -> None:
    woke: list[float] = []
    backend.executor.on_scheduled = woke.append
    _fail(backend, "later", {"delay": 0.0, "fail": True})
    assert woke == []
    job_id = _call(backend, "later", {"delay": 0.0, "fail": False})
    assert woke == [_call(backend, "job", {"id": job_id})["scheduledTime"]]


def test_the_arguments_of_one_call_s_jobs_are_capped(tmp_path: Path) -> None:
    fns = tmp_path / "functions"
    fns.mkdir()
    (fns / "jobs.py").write_text(FUNCTIONS)
    (fns / "big.py").write_text(
        "from runtime import mutation, v\n\n"
        "@mutation(args={'n': v.float64()})\n"
        "def big(ctx, args):\n"
        "    for i in range(int(args['n'])):\n"
        "        ctx.scheduler.run_after(0, 'jobs:note', {'text': 'x' * 900_000})\n"
    )
    b = Backend(SqliteStore(str(tmp_path / "db.sqlite3")), fns, admin_key=None)
    try:
        assert b.reload().ok, b.load_error
        assert b.executor.call("big:big", {"n": 2.0}).ok
        result = b.executor.call("big:big", {"n": 10.0})
        assert not result.ok and "SCHEDULED_ARGS_BYTES" in (result.error_text or "")
    finally:
        b.close()
