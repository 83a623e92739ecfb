"""Running crons (runtime/scheduler/crons.py): a tick of a mutation cron runs
once even when two runners race it; an action cron never overlaps itself;
after downtime only the latest missed tick runs; reload forgets removed
crons; an interval cron runs on the embedded timer."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from runtime.backend import Backend
from runtime.functions.executor import CallResult
from runtime.scheduler.crons import (
    CRON_PARTITION,
    CronSource,
    CronState,
    run_cron,
    state_key,
)
from runtime.scheduler.timer import Timer
from runtime.store.port import Put, Store, scan_all
from runtime.store.sqlite import SqliteStore

FUNCTIONS = """\
import time

from runtime import internal_action, internal_mutation, internal_query, v

HOOK = None


def _counter(ctx, name):
    doc = ctx.db.query("counters").filter(lambda q: q.eq(q.field("name"), name)).first()
    if doc is None:
        ctx.db.insert("counters", {"name": name, "runs": 0, "running": 0, "most": 0})
        doc = ctx.db.query("counters").filter(lambda q: q.eq(q.field("name"), name)).first()
    return doc


@internal_mutation(args={})
def count(ctx, args):
    global HOOK
    hook, HOOK = HOOK, None
    if hook is not None:  # a second runner reaches the same tick meanwhile
        hook()
    doc = _counter(ctx, "count")
    ctx.db.patch(doc["_id"], {"runs": doc["runs"] + 1})


@internal_mutation(args={})
def broken(ctx, args):
    raise ValueError("broken cron")


@internal_mutation(args={"delta": v.number()})
def mark(ctx, args):
    doc = _counter(ctx, "slow")
    running = doc["running"] + args["delta"]
    runs = doc["runs"] + (1 if args["delta"] > 0 else 0)
    ctx.db.patch(doc["_id"], {"running": running, "runs": runs, "most": max(doc["most"], running)})


@internal_action(args={})
def slow(ctx, args):
    ctx.run_mutation("jobs:mark", {"delta": 1.0})
    time.sleep(1.5)
    ctx.run_mutation("jobs:mark", {"delta": -1.0})


@internal_query(args={"name": v.string()})
def read(ctx, args):
    return _counter_or_none(ctx, args["name"])


def _counter_or_none(ctx, name):
    return ctx.db.query("counters").filter(lambda q: q.eq(q.field("name"), name)).first()
"""

CRONS = """\
from runtime import cron_jobs

crons = cron_jobs()
crons.interval("count", {"seconds": 1}, "jobs:count")
crons.interval("slow", {"seconds": 1}, "jobs:slow")
crons.interval("broken", {"seconds": 1}, "jobs:broken")
"""


def _backend(store: Store, folder: Path, crons: str = CRONS) -> Backend:
    (folder / "jobs.py").write_text(
        FUNCTIONS.replace('args={"delta": v.number()}', 'args={"delta": v.number()}')
        .replace('args={"name": v.string()}', 'args={"name": v.string()}')
        .replace("from runtime import internal_action", "from runtime import v, internal_action")
    )
    (folder / "crons.py").write_text(crons)
    backend = Backend(store, folder, admin_key=None)
    report = backend.reload()
    assert report.ok, report.message
    return backend


def _counter(backend: Backend, name: str) -> dict[str, Any] | None:
    result = backend.executor.call("jobs:read", {"name": name}, public_only=False)
    assert result.ok, result.error_message
    return result.value  # type: ignore[no-any-return]


def _runs(backend: Backend, name: str) -> int:
    doc = _counter(backend, name)
    return 0 if doc is None else int(doc["runs"])


def _state(store: Store, name: str) -> CronState:
    (item,) = store.get([state_key(name)])
    return CronState.decode(item.value if item is not None else None)


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Store]:
    store = SqliteStore(str(tmp_path / "data.sqlite3"))
    yield store
    store.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "functions"
    path.mkdir()
    return path


# ---- one tick -----------------------------------------------------------------------


def test_a_mutation_tick_runs_once_when_two_runners_race_it(store: Store, folder: Path) -> None:
    """The second runner reaches the tick while the first is inside its
    transaction: it commits first; the first conflicts on the cron's state
    record, re-runs, sees the tick done and skips. The handler's writes land
    once."""
    backend = _backend(store, folder)
    tick = 1_700_000_000_000.0
    inner: list[str] = []
    sys.modules["_app_functions.jobs"].HOOK = lambda: inner.append(  # type: ignore[attr-defined]
        run_cron(backend.executor, "count", tick)
    )
    assert run_cron(backend.executor, "count", tick) == "skipped"
    assert inner == ["ran"]
    assert _runs(backend, "count") == 1
    assert _state(store, "count").last_tick == tick
    # the same tick again, or an older one (a late duplicate): skipped
    assert run_cron(backend.executor, "count", tick) == "skipped"
    assert run_cron(backend.executor, "count", tick - 1000) == "skipped"
    assert run_cron(backend.executor, "count", tick + 1000) == "ran"
    assert _runs(backend, "count") == 2


def test_an_action_tick_raced_by_two_runners_runs_once(store: Store, folder: Path) -> None:
    """Both claim the tick in a transaction on the cron's state record: one
    wins and runs the action, the other finds the tick taken."""
    backend = _backend(store, folder)
    tick = 1_700_000_000_000.0
    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda _: run_cron(backend.executor, "slow", tick), range(2)))
    assert sorted(outcomes) == ["ran", "skipped"]
    assert _runs(backend, "slow") == 1
    assert _state(store, "slow") == CronState(tick)  # the winner's lease released


def test_a_failed_run_consumes_its_tick_and_is_in_the_call_log(sqlite: Store, folder: Path) -> None:
    backend = _backend(sqlite, folder)
    calls: list[CallResult] = []
    backend.add_listener(calls.append)
    assert run_cron(backend.executor, "broken", 5000.0) == "failed"
    assert any(c.path == "jobs:broken" and "broken cron" in (c.error_text or "") for c in calls)
    assert _state(sqlite, "broken").last_tick == 5000.0
    assert run_cron(backend.executor, "broken", 5000.0) == "skipped"


def test_an_unknown_cron_runs_nothing(sqlite: Store, folder: Path) -> None:
    backend = _backend(sqlite, folder)
    assert run_cron(backend.executor, "gone", 1000.0) == "unknown"


def test_an_action_tick_while_a_run_holds_the_lease_is_behind(sqlite: Store, folder: Path) -> None:
    """A run whose worker died left its lease: the next ticks are skipped
    (not queued) until the lease expires, then the cron runs again."""
    backend = _backend(sqlite, folder)
    now = [1_000_000.0]
    sqlite.transact([Put(state_key("slow"), CronState(900_000.0, 1_000_500_000.0).encode())])
    assert run_cron(backend.executor, "slow", 999_000.0, clock=lambda: now[0]) == "behind"
    assert _state(sqlite, "slow") == CronState(999_000.0, 1_000_500_000.0)
    assert _runs(backend, "slow") == 0
    now[0] = 1_000_501.0  # the lease ran out
    assert run_cron(backend.executor, "slow", 1_000_000.0, clock=lambda: now[0]) == "ran"
    assert _runs(backend, "slow") == 1
    assert _state(sqlite, "slow") == CronState(1_000_000.0)  # lease released


# ---- the embedded source -------------------------------------------------------------


def _collect() -> tuple[list[Callable[[], None]], Callable[[Callable[[], None]], None]]:
    jobs: list[Callable[[], None]] = []
    return jobs, jobs.append


def test_after_downtime_only_the_latest_missed_tick_runs(sqlite: Store, folder: Path) -> None:
    backend = _backend(sqlite, folder, CRONS.replace('{"seconds": 1}', '{"seconds": 10}', 1))
    t0 = 1_700_000_000_000.0
    sqlite.transact([Put(state_key("count"), CronState(t0).encode())])
    now = t0 + 10.5 * 10_000  # ten ticks missed while the server was down
    source = CronSource(backend.executor, clock=lambda: now / 1000)
    assert source.next_due(now) == t0 + 10_000  # overdue: due at once
    jobs, submit = _collect()
    source.run_due(now, submit)
    ticks = [j for j in jobs]
    assert len(ticks) >= 1
    for job in ticks:
        job()
    assert _runs(backend, "count") == 1
    assert _state(sqlite, "count").last_tick == t0 + 100_000  # the latest, not the first
    assert source.next_due(now) is not None
    assert source.next_due(now) > now  # type: ignore[operator]


def test_a_tick_while_this_process_runs_the_cron_is_skipped(sqlite: Store, folder: Path) -> None:
    backend = _backend(sqlite, folder)
    now = [2_000_000.0]
    source = CronSource(backend.executor, clock=lambda: now[0] / 1000)
    jobs, submit = _collect()
    now[0] += 1000
    source.run_due(now[0], submit)
    names = len(jobs)
    assert names == 3  # count, slow, broken: one tick each
    now[0] += 1000
    source.run_due(now[0], submit)  # none has finished: every tick skipped
    assert len(jobs) == names
    for job in jobs:
        job()
    now[0] += 1000
    source.run_due(now[0], submit)
    assert len(jobs) == 2 * names


def test_reload_deletes_the_state_of_removed_crons(sqlite: Store, folder: Path) -> None:
    backend = _backend(sqlite, folder)
    source = CronSource(backend.executor)
    assert run_cron(backend.executor, "count", 1000.0) == "ran"
    assert run_cron(backend.executor, "broken", 1000.0) == "failed"
    (folder / "crons.py").write_text(
        "from runtime import cron_jobs\ncrons = cron_jobs()\n"
        'crons.daily("count", {"hourUTC": 1, "minuteUTC": 0}, "jobs:count")\n'
    )
    assert backend.reload().ok
    source.reload()
    assert [i.key[1] for i in scan_all(sqlite, CRON_PARTITION)] == [b"count"]
    assert _state(sqlite, "count").last_tick == 1000.0  # kept: the cron stays
    due = source.next_due(0)
    assert due is not None and time.gmtime(due / 1000).tm_hour == 1  # its new schedule


def test_a_failed_first_load_keeps_the_crons_state(sqlite: Store, folder: Path) -> None:
    """The dev server starts with a broken crons.py: its registry is empty,
    which must not read as "every cron removed"."""
    sqlite.transact([Put(state_key("count"), CronState(1000.0).encode())])
    (folder / "jobs.py").write_text(FUNCTIONS)
    (folder / "crons.py").write_text(CRONS + "crons.interval(\n")
    backend = Backend(sqlite, folder, admin_key=None)
    assert not backend.reload().ok
    source = CronSource(backend.executor)
    assert source.next_due(0) is None
    assert _state(sqlite, "count").last_tick == 1000.0
    (folder / "crons.py").write_text(CRONS)
    assert backend.reload().ok
    source.reload()
    assert _state(sqlite, "count").last_tick == 1000.0
    assert source.next_due(0) is not None


# ---- on a real clock ------------------------------------------------------------------


def _wait_for(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_an_interval_cron_runs_on_time(sqlite: Store, folder: Path) -> None:
    """On the dev server's timer (Backend.start_timer), real clock."""
    only_count = "from runtime import cron_jobs\ncrons = cron_jobs()\n" + (
        'crons.interval("count", {"seconds": 1}, "jobs:count")\n'
    )
    backend = _backend(sqlite, folder, only_count)
    backend.start_timer()
    try:
        # 3 one-second ticks: a bounded wait, generous (a loaded machine)
        assert _wait_for(lambda: _runs(backend, "count") >= 3, 30)
    finally:
        backend.stop_timer(5)


def test_a_slow_action_cron_never_overlaps_itself(sqlite: Store, folder: Path) -> None:
    """A 1.5 s action every second, ticked by two timers (two processes'
    timers on one store): the state record's lease keeps one run at a time;
    ticks that come meanwhile are skipped."""
    only_slow = "from runtime import cron_jobs\ncrons = cron_jobs()\n" + (
        'crons.interval("slow", {"seconds": 1}, "jobs:slow")\n'
    )
    backend = _backend(sqlite, folder, only_slow)
    timers = [Timer([CronSource(backend.executor)]) for _ in range(2)]
    for timer in timers:
        timer.start()
    try:
        assert _wait_for(lambda: _runs(backend, "slow") >= 3, 60)
    finally:
        for timer in timers:
            timer.stop(5)
    doc = _counter(backend, "slow")
    assert doc is not None and doc["most"] == 1, doc


def test_the_example_apps_cron_trims_only_old_messages(sqlite: Store) -> None:
    app = Path(__file__).resolve().parents[2] / "functions"
    backend = Backend(sqlite, app, admin_key=None)
    assert backend.reload().ok
    assert [j.path for j in backend.registry.crons] == ["maintenance:trim_messages"]
    for body in ("one", "two"):
        assert backend.executor.call("messages:send", {"body": body, "author": "a"}).ok
    assert run_cron(backend.executor, "trim old messages", 1000.0) == "ran"
    assert len(backend.executor.call("messages:list", {}).value) == 2  # younger than 30 days
    trimmed = backend.executor.call("maintenance:trim_messages", {"days": -1.0}, public_only=False)
    assert trimmed.value == 2
    assert backend.executor.call("messages:list", {}).value == []
