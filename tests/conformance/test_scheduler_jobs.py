"""Running scheduled functions (runtime/scheduler/runner.py) on every store:
a mutation job runs exactly once whatever reaches its record (twice, racing,
after a crash past its commit); an action job at most once (a worker dying
after the claim leaves it to its lease, which fails it); cancel, developer
errors, transient errors, trim; the embedded timer runs a job due now."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.backend import Backend
from runtime.functions.executor import CallResult
from runtime.functions.scheduler import JOBS_TABLE, due_of
from runtime.limits import JOB_LEASE_MARGIN_SECONDS, SCHEDULED_RETENTION_SECONDS
from runtime.scheduler.runner import LOST_WORKER, JobRunner, is_lease
from runtime.scheduler.timer import JobSource, Timer
from runtime.store.port import Key, Store, StoreError
from runtime.store.sqlite import SqliteStore

FUNCTIONS = """\
from runtime import action, internal_action, internal_mutation, mutation, query, v

HOOK = None


@internal_mutation(args={"name": v.string()})
def bump(ctx, args):
    global HOOK
    hook, HOOK = HOOK, None
    if hook is not None:  # another runner reaches the same job meanwhile
        hook()
    doc = ctx.db.query("counters").filter(lambda q: q.eq(q.field("name"), args["name"])).first()
    if doc is None:
        ctx.db.insert("counters", {"name": args["name"], "runs": 1.0})
    else:
        ctx.db.patch(doc["_id"], {"runs": doc["runs"] + 1})


@internal_mutation(args={})
def broken(ctx, args):
    ctx.db.insert("counters", {"name": "broken", "runs": 1.0})
    raise ValueError("broken job")


@internal_action(args={"name": v.string()})
def act(ctx, args):
    ctx.run_mutation("jobs:bump", {"name": args["name"]})
    return "done"


@internal_action(args={})
def act_broken(ctx, args):
    raise RuntimeError("the action broke")


@mutation(args={"fn": v.string(), "args": v.any(), "delay": v.float64()})
def schedule(ctx, args):
    return ctx.scheduler.run_after(args["delay"], args["fn"], args["args"])


@mutation(args={"id": v.string()})
def cancel(ctx, args):
    ctx.scheduler.cancel(args["id"])


@query(args={"name": v.string()})
def runs(ctx, args):
    doc = ctx.db.query("counters").filter(lambda q: q.eq(q.field("name"), args["name"])).first()
    return 0 if doc is None else doc["runs"]


@query(args={"id": v.string()})
def job(ctx, args):
    return ctx.db.system.get(args["id"])
"""


class _Flaky:
    """A real store that fails chosen commits with StoreError, before applying
    them or after (an ambiguous commit: applied, yet the caller sees an error)."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner
        self.fail_next: str | None = None

    def transact(self, ops: Any) -> Any:
        mode, self.fail_next = self.fail_next, None
        if mode == "before":
            raise StoreError("injected: the store is unavailable")
        result = self._inner.transact(ops)
        if mode == "after":
            raise StoreError("injected: the commit's answer was lost")
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "functions"
    path.mkdir()
    (path / "jobs.py").write_text(FUNCTIONS)
    return path


def _backend(store: Any, folder: Path) -> Backend:
    backend = Backend(store, folder, admin_key=None)
    assert backend.reload().ok, backend.load_error
    return backend


@pytest.fixture
def app(store: Store, folder: Path) -> Backend:
    return _backend(store, folder)


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Store]:
    s = SqliteStore(str(tmp_path / "data.sqlite3"))
    yield s
    s.close()


def _call(backend: Backend, path: str, args: dict[str, Any]) -> Any:
    result = backend.executor.call(f"jobs:{path}", args, public_only=False)
    assert result.ok, result.error_text
    return result.value


def _schedule(backend: Backend, fn: str, args: dict[str, Any], delay: float = 0.0) -> str:
    job_id: str = _call(backend, "schedule", {"fn": fn, "args": args, "delay": delay})
    return job_id


def _job(backend: Backend, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = _call(backend, "job", {"id": job_id})
    return job


def _runs(backend: Backend, name: str) -> float:
    runs: float = _call(backend, "runs", {"name": name})
    return runs


def _records(runner: JobRunner) -> list[tuple[str, Key]]:
    return runner.due(float(1 << 62), 10_000)


def _record_of(runner: JobRunner, job_id: str) -> Key:
    (key,) = [k for j, k in _records(runner) if j == job_id]
    return key


# ---- mutations: exactly once ----------------------------------------------------------


def test_a_mutation_job_runs_once_and_a_second_delivery_skips(app: Backend) -> None:
    calls: list[CallResult] = []
    app.add_listener(calls.append)
    runner = JobRunner(app.executor)
    job_id = _schedule(app, "jobs:bump", {"name": "a"})
    key = _record_of(runner, job_id)
    assert runner.run(job_id, key) == "success"
    assert runner.run(job_id, key) == "skipped"  # SQS delivers at least once
    assert _runs(app, "a") == 1
    job = _job(app, job_id)
    assert job["state"] == {"kind": "success"} and job["completedTime"] >= job["scheduledTime"]
    assert _records(runner) == []
    assert any(c.path == "jobs:bump" and c.kind == "mutation" and c.ok for c in calls)


def test_a_runner_killed_after_the_commit_does_not_run_it_again(app: Backend) -> None:
    def die(point: str) -> None:
        if point == "committed":
            raise SystemExit("killed between the commit and the acknowledgement")

    job_id = _schedule(app, "jobs:bump", {"name": "k"})
    key = _record_of(JobRunner(app.executor), job_id)
    with pytest.raises(SystemExit):
        JobRunner(app.executor, faults=die).run(job_id, key)
    # the message was never acknowledged: it comes back to a new runner
    assert JobRunner(app.executor).run(job_id, key) == "skipped"
    assert _runs(app, "k") == 1


def test_two_runners_racing_one_job_run_it_once(app: Backend) -> None:
    """The second runner runs the job while the first is inside its
    transaction: it commits first; the first conflicts on the job document,
    re-runs, finds it done and skips."""
    runner = JobRunner(app.executor)
    job_id = _schedule(app, "jobs:bump", {"name": "race"})
    key = _record_of(runner, job_id)
    inner: list[str] = []
    module = sys.modules["_app_functions.jobs"]
    module.HOOK = lambda: inner.append(JobRunner(app.executor).run(job_id, key))  # type: ignore[attr-defined]
    assert runner.run(job_id, key) == "skipped"
    assert inner == ["success"]
    assert _runs(app, "race") == 1


def test_a_developer_error_fails_the_job_with_its_text(app: Backend) -> None:
    runner = JobRunner(app.executor)
    job_id = _schedule(app, "jobs:broken", {})
    assert runner.run(job_id, _record_of(runner, job_id)) == "failed"
    job = _job(app, job_id)
    assert job["state"]["kind"] == "failed"
    assert "broken job" in job["state"]["error"]
    assert _runs(app, "broken") == 0  # its writes were discarded
    assert _records(runner) == []


def test_cancel_before_the_run_means_it_never_runs(app: Backend) -> None:
    runner = JobRunner(app.executor)
    job_id = _schedule(app, "jobs:bump", {"name": "c"})
    key = _record_of(runner, job_id)
    _call(app, "cancel", {"id": job_id})
    assert runner.run(job_id, key) == "skipped"
    assert _runs(app, "c") == 0
    assert _job(app, job_id)["state"] == {"kind": "canceled"}
    assert _records(runner) == []


def test_a_missing_job_just_drops_its_record(app: Backend) -> None:
    runner = JobRunner(app.executor)
    job_id = _schedule(app, "jobs:bump", {"name": "m"})
    key = _record_of(runner, job_id)
    app.database.mutation(lambda tx: tx.system_delete(job_id))
    assert runner.run(job_id, key) == "skipped"
    assert _records(runner) == []


# ---- transient errors ------------------------------------------------------------------


def test_a_store_error_keeps_the_job_pending_and_moves_its_record(
    sqlite: Store, folder: Path
) -> None:
    flaky = _Flaky(sqlite)
    app = _backend(flaky, folder)
    _call(app, "bump", {"name": "warm"})  # the table exists: one transact per commit
    runner = JobRunner(app.executor)
    job_id = _schedule(app, "jobs:bump", {"name": "t"})
    key = _record_of(runner, job_id)
    flaky.fail_next = "before"
    assert runner.run(job_id, key) == "retry"
    assert _job(app, job_id)["state"] == {"kind": "pending"}
    ((same, moved),) = _records(runner)
    assert same == job_id and moved != key and due_of(moved) > due_of(key)
    # an ambiguous commit: applied, but the runner sees an error
    flaky.fail_next = "after"
    assert runner.run(job_id, moved) == "retry"
    ((_, again),) = _records(runner)
    assert runner.run(job_id, again) == "skipped"
    assert _runs(app, "t") == 1
    assert _job(app, job_id)["state"] == {"kind": "success"}


# ---- actions: at most once ---------------------------------------------------------------


def test_an_action_job_runs_and_records_its_result(app: Backend) -> None:
    runner = JobRunner(app.executor)
    ok = _schedule(app, "jobs:act", {"name": "act"})
    bad = _schedule(app, "jobs:act_broken", {})
    assert runner.run(ok, _record_of(runner, ok)) == "success"
    assert runner.run(bad, _record_of(runner, bad)) == "failed"
    assert _runs(app, "act") == 1
    assert _job(app, ok)["state"] == {"kind": "success"}
    failed = _job(app, bad)["state"]
    assert failed["kind"] == "failed" and "the action broke" in failed["error"]
    assert _records(runner) == []  # the leases went with the results


def test_an_action_whose_worker_died_fails_at_its_lease_and_never_reruns(
    app: Backend,
) -> None:
    def die(point: str) -> None:
        if point == "claimed":
            raise SystemExit("the worker died mid-run")

    job_id = _schedule(app, "jobs:act", {"name": "died"})
    key = _record_of(JobRunner(app.executor), job_id)
    with pytest.raises(SystemExit):
        JobRunner(app.executor, faults=die).run(job_id, key)
    assert _job(app, job_id)["state"] == {"kind": "inProgress"}
    # a second delivery of the original record: it is running, skip
    assert JobRunner(app.executor).run(job_id, key) == "skipped"
    ((_, lease),) = _records(JobRunner(app.executor))
    assert is_lease(job_id, lease)
    # the lease reached before its time leaves the action alone
    assert JobRunner(app.executor).run(job_id, lease) == "early"
    margin = (app.executor.action_timeout + JOB_LEASE_MARGIN_SECONDS + 1) * 1000
    later = JobRunner(app.executor, clock=lambda: (due_of(lease) + margin) / 1000)
    assert later.run(job_id, lease) == "lost"
    state = _job(app, job_id)["state"]
    assert state == {"kind": "failed", "error": LOST_WORKER}
    assert later.run(job_id, key) == "skipped"
    assert _runs(app, "died") == 0  # never ran
    assert _records(later) == []


def test_restart_fails_actions_left_in_progress_at_once(app: Backend) -> None:
    def die(point: str) -> None:
        raise SystemExit(point)

    job_id = _schedule(app, "jobs:act", {"name": "r"})
    key = _record_of(JobRunner(app.executor), job_id)
    with pytest.raises(SystemExit):
        JobRunner(app.executor, faults=die).run(job_id, key)
    assert JobRunner(app.executor).recover_in_progress() == 1
    assert _job(app, job_id)["state"] == {"kind": "failed", "error": LOST_WORKER}
    assert _records(JobRunner(app.executor)) == []


def test_an_action_canceled_while_running_stays_canceled(app: Backend) -> None:
    job_id = _schedule(app, "jobs:act", {"name": "cr"})

    def cancel_now(point: str) -> None:
        if point == "claimed":
            _call(app, "cancel", {"id": job_id})

    runner = JobRunner(app.executor, faults=cancel_now)
    runner.run(job_id, _record_of(runner, job_id))
    assert _runs(app, "cr") == 1  # it kept running, as Convex's does
    assert _job(app, job_id)["state"] == {"kind": "canceled"}
    assert _records(runner) == []


# ---- trim ----------------------------------------------------------------------------------


def test_trim_deletes_jobs_finished_more_than_seven_days_ago(app: Backend) -> None:
    runner = JobRunner(app.executor)
    done = _schedule(app, "jobs:bump", {"name": "old"})
    runner.run(done, _record_of(runner, done))
    pending = _schedule(app, "jobs:bump", {"name": "p"}, delay=1e12)
    now = _job(app, done)["completedTime"]
    assert runner.trim(now + 1000) == 0
    week = SCHEDULED_RETENTION_SECONDS * 1000
    assert runner.trim(now + week + 1000) == 1
    assert app.database.query(lambda tx: tx.get(done)).value is None
    assert _job(app, pending)["state"] == {"kind": "pending"}
    ids = app.database.query(
        lambda tx: [d["_id"] for d in tx.query(JOBS_TABLE, system=True).collect()]
    ).value
    assert ids == [pending]


# ---- the embedded timer ------------------------------------------------------------------


def test_the_timer_runs_a_job_due_now_and_wakes_for_it(app: Backend) -> None:
    runner = JobRunner(app.executor)
    source = JobSource(runner)
    timer = Timer([source])
    source.wake = timer.notify
    app.executor.on_scheduled = timer.notify
    done = threading.Event()
    app.add_listener(lambda r: done.set() if r.path == "jobs:bump" and r.ok else None)
    timer.start()
    try:
        job_id = _schedule(app, "jobs:bump", {"name": "timer"})
        assert done.wait(60)
    finally:
        timer.stop(10)
    assert _runs(app, "timer") == 1
    assert _job(app, job_id)["state"]["kind"] == "success"


def test_a_sleeping_timer_wakes_for_an_earlier_job(app: Backend) -> None:
    """The timer sleeps until its earliest job (an hour away); a commit that
    schedules an earlier one wakes it (no polling, no waiting for the hour)."""
    far = _schedule(app, "jobs:bump", {"name": "far"}, delay=3_600_000.0)
    done = threading.Event()
    app.add_listener(lambda r: done.set() if r.path == "jobs:bump" and r.ok else None)
    timer = app.start_timer()
    try:
        assert timer.sources  # the job queue and the crons
        soon = _schedule(app, "jobs:bump", {"name": "soon"}, delay=200.0)
        assert done.wait(60)
    finally:
        app.stop_timer(10)
    assert _runs(app, "soon") == 1 and _runs(app, "far") == 0
    assert _job(app, soon)["state"]["kind"] == "success"
    assert _job(app, far)["state"] == {"kind": "pending"}
