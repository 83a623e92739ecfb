"""SQLite adapter specifics: persistence, timestamps across restarts, threads, two handles."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from runtime.store.port import Put, StoreError, TransactionConflict
from runtime.store.sqlite import SqliteStore


def test_data_and_timestamps_survive_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "db.sqlite3")
    store = SqliteStore(path, clock=lambda: 1000)
    first = store.transact([Put(("p", b"k"), b"v", feed=True)]).ts
    store.close()
    again = SqliteStore(path, clock=lambda: 5)  # a clock that went backwards
    assert again.get([("p", b"k")])[0].value == b"v"  # type: ignore[union-attr]
    assert again.transact([Put(("p", b"k"), b"w")]).ts > first
    assert [c.new_value for c in again.read_changes().changes] == [b"v"]
    again.close()


def test_threads_lose_no_increment(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "db.sqlite3"))
    key = ("c", b"")
    store.transact([Put(key, b"0", expect=0)])

    def work() -> None:
        for _ in range(200):
            while True:
                item = store.get([key])[0]
                assert item is not None
                try:
                    store.transact(
                        [Put(key, str(int(item.value) + 1).encode(), expect=item.version)]
                    )
                    break
                except TransactionConflict:
                    continue

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get([key])[0].value == b"1600"  # type: ignore[union-attr]


def test_one_committer_per_file(tmp_path: Path) -> None:
    """The committer keeps range versions in memory, so a second store on
    the same file (this process or another) is refused; closing frees it."""
    path = str(tmp_path / "db.sqlite3")
    a = SqliteStore(path)
    a.transact([Put(("p", b"1"), b"a")])
    with pytest.raises(StoreError, match="open in another store"):
        SqliteStore(path)
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from runtime.store.sqlite import SqliteStore; SqliteStore({path!r})",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert other.returncode != 0 and "open in another store" in other.stderr
    ta = a.transact([Put(("p", b"3"), b"")]).ts
    a.close()
    b = SqliteStore(path)
    assert [i.value for i in b.scan("p")] == [b"a", b""]
    assert b.transact([Put(("p", b"4"), b"")]).ts > ta
    b.close()


def test_a_snapshot_is_a_fixed_view_with_its_feed_position(tmp_path: Path) -> None:
    from runtime.store.port import Put

    store = SqliteStore(str(tmp_path / "snap.sqlite3"))
    store.transact([Put(("d:a", b""), b"1", feed=True)])
    with store.snapshot() as snap:
        first_ts = snap.ts
        store.transact([Put(("d:a", b""), b"2", feed=True), Put(("d:b", b""), b"3", feed=True)])
        (a,) = snap.get([("d:a", b"")])
        assert a is not None and a.value == b"1"  # the later commit is not visible
        assert snap.get([("d:b", b"")]) == [None]
        assert [c.new_value for c in snap.read_changes(None).changes] == [b"1"]
        with pytest.raises(Exception, match="read-only"):
            snap.transact([Put(("d:c", b""), b"x")])
    with store.snapshot() as later:
        assert later.ts > first_ts
        assert [c.new_value for c in later.read_changes(None).changes] == [b"1", b"2", b"3"]
        assert later.read_changes(later.position).changes == []
    store.close()
