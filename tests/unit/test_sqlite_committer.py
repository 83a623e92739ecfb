"""The SQLite committer: group commit, range versions held in memory,
inserts checked by their INSERT (runtime/store/sqlite.py)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.store.port import Bump, Check, CommitResult, Item, Op, Put, TransactionConflict
from runtime.store.sqlite import SqliteStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(str(tmp_path / "db.sqlite3"))
    yield s
    s.close()


def _in_one_group(store: SqliteStore, batches: list[list[Op]]) -> list[CommitResult | Exception]:
    """Commit `batches` from threads such that all but the first wait while
    the first commits, so the committer takes them as one group."""
    out: list[CommitResult | Exception] = [RuntimeError("not run")] * len(batches)

    def run(i: int) -> None:
        try:
            out[i] = store.transact(batches[i])
        except Exception as e:
            out[i] = e

    def start(i: int) -> threading.Thread:
        t = threading.Thread(target=run, args=(i,))
        t.start()
        return t

    store._lock.acquire()  # the first leader blocks on it, holding the committer
    try:
        threads = [start(0)]
        _wait_for(lambda: store._committing)
        threads += [start(i) for i in range(1, len(batches))]
        _wait_for(lambda: len(store._queue) == len(batches) - 1)
    finally:
        store._lock.release()
    for t in threads:
        t.join(timeout=30)
    return out


def _wait_for(cond: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_waiting_transactions_commit_as_one_group_each_validated_in_turn(
    store: SqliteStore,
) -> None:
    a, b, c = ("p", b"a"), ("p", b"b"), ("f:t:x", b"1")
    store.transact([Put(a, b"0", expect=0), Put(b, b"0", expect=0)])
    (rv,) = store.versions([c])
    before = store.group_commits
    results = _in_one_group(
        store,
        [
            [Put(("p", b"first"), b"")],
            [Put(a, b"1", expect=1), Bump(c, expect=rv)],  # wins
            [Put(a, b"2", expect=1)],  # read a before the one above wrote it
            [Check(b, 1), Put(("p", b"other"), b"x")],  # unaffected
            [Bump(c, expect=rv)],  # the range moved in this very group
            [Put(b, b"1", expect=1)],
        ],
    )
    assert store.group_commits - before == 2  # the first alone, then five together
    ok = [r for r in results if isinstance(r, CommitResult)]
    assert [type(r).__name__ for r in results] == [
        "CommitResult",
        "CommitResult",
        "TransactionConflict",
        "CommitResult",
        "TransactionConflict",
        "CommitResult",
    ]
    assert len({r.ts for r in ok}) == len(ok) and [r.ts for r in ok] == sorted(r.ts for r in ok)
    conflict = results[2]
    assert isinstance(conflict, TransactionConflict) and conflict.keys == [a]
    got = store.get([a, b, ("p", b"other")])
    assert [(i.value, i.version) for i in got if i] == [(b"1", 2), (b"1", 2), (b"x", 1)]
    assert [ch.new_value for ch in store.read_changes().changes] == []  # none fed


def test_an_insert_colliding_in_a_group_fails_alone(store: SqliteStore) -> None:
    k = ("d:x", b"")
    results = _in_one_group(
        store,
        [
            [Put(("p", b"lead"), b"")],
            [Put(k, b"one", expect=0, feed=True)],
            [Put(k, b"two", expect=0, feed=True)],  # the same new key: a conflict
            [Put(("d:y", b""), b"y", expect=0, feed=True)],
        ],
    )
    assert isinstance(results[2], TransactionConflict) and results[2].keys == [k]
    assert all(isinstance(results[i], CommitResult) for i in (0, 1, 3))
    assert [c.new_value for c in store.read_changes().changes] == [b"one", b"y"]
    with pytest.raises(TransactionConflict):
        store.transact([Put(k, b"three", expect=0)])  # alone too


def test_range_versions_live_in_memory_and_never_repeat(tmp_path: Path) -> None:
    path = str(tmp_path / "db.sqlite3")
    store = SqliteStore(path)
    f = ("f:t:x", b"\x01")
    (never,) = store.versions([f])
    first = store.transact([Bump(f)]).ts
    assert store.versions([f]) == [first] and first > never
    rows = sqlite3.connect(path).execute("SELECT count(*) FROM items WHERE pk LIKE 'f:%'")
    assert rows.fetchone() == (0,)  # no row written for a range version
    store.close()
    again = SqliteStore(path)
    (reopened,) = again.versions([f])
    assert reopened >= first  # never back to an older version
    with pytest.raises(TransactionConflict):
        again.transact([Bump(f, expect=never)])
    assert again.transact([Bump(f, expect=reopened)]).ts > reopened
    again.close()


def test_a_dropped_range_version_can_only_cause_a_conflict(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "db.sqlite3"), range_versions_held=1)
    x, y, z = (("f:t:a", bytes([i])) for i in range(3))
    store.transact([Bump(x)])
    (seen,) = store.versions([x])  # a transaction reads x ...
    store.transact([Bump(y)])  # ... x is dropped from memory (one held) ...
    assert store.versions([x]) == [seen]  # the floor is its last version
    store.transact([Bump(z)])  # ... then y: the floor passes x's version
    assert store.versions([x])[0] > seen
    with pytest.raises(TransactionConflict):
        store.transact([Bump(x, expect=seen)])  # conservative: x did not move
    store.close()


def test_the_table_shard_value_check_uses_the_stored_index_set(store: SqliteStore) -> None:
    shard = ("v:t", b"\x00")
    store.transact([Put(shard, b'{"by_a":["a"]}')])
    store.transact([Bump(shard, value=b'{"by_a":["a"]}')])
    with pytest.raises(TransactionConflict):
        store.transact([Bump(shard, value=b"")])  # a writer on an older schema
    item = store.get([shard])[0]
    assert item is not None and item.value == b'{"by_a":["a"]}'


def test_range_versions_are_read_while_a_commit_holds_the_connection(
    store: SqliteStore,
) -> None:
    """A transaction records a range version before each scan: that read
    must not queue behind another commit's SQLite I/O."""
    shard = ("v:t", b"\x01")
    ts = store.transact([Bump(shard), Put(("d:x", b""), b"doc", expect=0)]).ts
    store.get([shard])  # its stored value is read once, then kept
    got: list[object] = []
    store._lock.acquire()  # a commit in progress holds the connection
    try:
        reader = threading.Thread(
            target=lambda: got.extend([store.get([shard])[0], store.versions([shard])[0]])
        )
        reader.start()
        reader.join(timeout=10)
        assert not reader.is_alive(), "the range read waited for the commit"
    finally:
        store._lock.release()
    item, version = got
    assert isinstance(item, Item) and item.version == version == ts


def test_a_group_whose_commit_raises_fails_alone_and_hands_on_the_lead(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leader's group gets the error; the transactions queued behind it
    are woken to commit as the next group, none left waiting."""
    real = store._commit_together
    calls = [0]

    def failing_once(group: list[object], **kwargs: object) -> None:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("the disk went away")
        real(group, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "_commit_together", failing_once)
    batches: list[list[Op]] = [[Put(("t", bytes([i])), b"v")] for i in range(5)]
    out = _in_one_group(store, batches)
    assert isinstance(out[0], RuntimeError)
    assert all(isinstance(r, CommitResult) for r in out[1:])
    assert calls[0] == 2  # the four waiting ones committed together
    assert [i is not None for i in store.get([("t", bytes([i])) for i in range(5)])] == [
        False, True, True, True, True
    ]  # fmt: skip
