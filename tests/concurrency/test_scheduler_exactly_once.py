"""Exactly once under faults: scheduled mutations, each delivered to two
runners at once (OCC conflicts on the job document), some runners killed
between their commit and their acknowledgement (the record is delivered
again), some commits failing with a store error before or after they apply
(an ambiguous commit). Each job writes one `hits` document per run; the
checker counts them: exactly one per job, every job `success`, the queue
empty. On SQLite (1,000 jobs) and DynamoDB Local (bounded); moto loses
updates under concurrent transactions, so it is no witness here.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from runtime.backend import Backend
from runtime.scheduler.runner import JobRunner
from runtime.store.port import Key, Store, StoreError

FUNCTIONS = """\
from runtime import internal_mutation, mutation, v


@mutation(args={"start": v.float64(), "n": v.float64()})
def plan(ctx, args):
    for i in range(int(args["start"]), int(args["start"] + args["n"])):
        ctx.scheduler.run_after(0, hit, {"job": float(i)})


@internal_mutation(args={"job": v.float64()})
def hit(ctx, args):
    ctx.db.insert("hits", {"job": args["job"]})
"""

SIZES = {"sqlite": 1000, "dynamodb_local": 60}


class _Killed(BaseException):
    """The runner's process died at a fault point."""


class _Faulty:
    """A real store whose commits fail now and then with StoreError, before
    applying (nothing written) or after (written, yet reported failed)."""

    def __init__(self, inner: Store, rng: random.Random) -> None:
        self._inner = inner
        self._rng = rng
        self._lock = threading.Lock()
        self.rate = 0.0
        self.injected = Counter[str]()

    def transact(self, ops: Any) -> Any:
        with self._lock:
            roll = self._rng.random()
        if roll < self.rate / 2:
            self.injected["before"] += 1
            raise StoreError("injected before the commit")
        result = self._inner.transact(ops)
        if roll < self.rate:
            self.injected["after"] += 1
            raise StoreError("injected after the commit applied")
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture(params=list(SIZES))
def setup(
    request: pytest.FixtureRequest,
    store_factory: Callable[[str], Iterator[Store]],
    tmp_path: Path,
) -> Iterator[tuple[Backend, _Faulty, int]]:
    name: str = request.param
    if name == "sqlite":
        from runtime.store.sqlite import SqliteStore

        inner: Store = SqliteStore(str(tmp_path / "db.sqlite3"))
        it: Iterator[Store] | None = None
    else:
        it = store_factory(name)
        inner = next(it)
    folder = tmp_path / "functions"
    folder.mkdir()
    (folder / "jobs.py").write_text(FUNCTIONS)
    faulty = _Faulty(inner, random.Random(16))
    backend = Backend(faulty, folder, admin_key=None)  # type: ignore[arg-type]
    assert backend.reload().ok, backend.load_error
    yield backend, faulty, SIZES[name]
    if it is None:
        inner.close()
    else:
        for _ in it:
            pass


def test_scheduled_mutations_run_exactly_once_under_faults(
    setup: tuple[Backend, _Faulty, int],
) -> None:
    backend, faulty, n = setup
    _exactly_once(backend, faulty, n)


@pytest.mark.scale
def test_exactly_once_at_scale(setup: tuple[Backend, _Faulty, int]) -> None:
    """1,000 jobs on DynamoDB Local too (and 3,000 on SQLite)."""
    backend, faulty, n = setup
    _exactly_once(backend, faulty, max(1000, 3 * n))


def _exactly_once(backend: Backend, faulty: _Faulty, n: int) -> None:
    for start in range(0, n, 500):
        result = backend.executor.call(
            "jobs:plan", {"start": float(start), "n": float(min(500, n - start))}
        )
        assert result.ok, result.error_text
    rng = random.Random(7)
    rng_lock = threading.Lock()
    kills = Counter[str]()

    def faults(point: str) -> None:
        with rng_lock:
            die = point == "committed" and rng.random() < 0.1
        if die:
            kills[point] += 1
            raise _Killed(point)

    runners = [JobRunner(backend.executor, faults=faults) for _ in range(2)]
    # the runners' backoff is real time; the test delivers retried records at once
    faulty.rate = 0.1
    redeliver: list[tuple[str, Key]] = []
    outcomes = Counter[str]()
    lock = threading.Lock()

    def deliver(runner: JobRunner, job_id: str, key: Key) -> None:
        try:
            outcome = runner.run(job_id, key)
        except _Killed:
            outcome = "killed"
            with lock:
                redeliver.append((job_id, key))  # never acknowledged: SQS sends it again
        except StoreError:
            outcome = "store error"  # the record stays; the next round reaches it
        with lock:
            outcomes[outcome] += 1

    with ThreadPoolExecutor(8) as pool:
        for _ in range(200):  # a bound on a hang: each round makes progress
            records = runners[0].due(float(1 << 62), 200)
            again, redeliver[:] = list(redeliver), []
            if not records and not again:
                break
            futures = [
                pool.submit(deliver, runner, job_id, key)
                for job_id, key in records
                for runner in runners  # two runners of each job at once
            ]
            futures += [pool.submit(deliver, runners[0], job_id, key) for job_id, key in again]
            for f in futures:
                f.result()
        else:
            raise AssertionError(f"the queue did not drain: {outcomes}")
    faulty.rate = 0.0

    hits = backend.executor.database.query(
        lambda tx: Counter(d["job"] for d in tx.query("hits").collect())
    ).value
    assert sorted(hits) == [float(i) for i in range(n)]
    assert set(hits.values()) == {1}, {j: c for j, c in hits.items() if c != 1}
    states = backend.executor.database.query(
        lambda tx: Counter(
            d["state"]["kind"] for d in tx.query("_scheduled_functions", system=True).collect()
        )
    ).value
    assert states == {"success": n}
    assert runners[0].due(float(1 << 62), 10) == []
    # the faults did happen
    assert kills["committed"] > 0 and faulty.injected["before"] > 0
    assert faulty.injected["after"] > 0 and outcomes["skipped"] > 0
