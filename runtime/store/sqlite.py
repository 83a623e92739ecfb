"""The SQLite adapter of the storage port: the embedded default.

One table of items keyed by (partition, sort key), a change-log table written
in the same transaction as the items (the change feed), and a meta row with
the last commit timestamp so timestamps keep increasing across restarts.
The change log keeps the last `change_log_entries` changes (older ones are
deleted as commits add new ones); a reader asking for changes after a
position that was trimmed gets `FeedTrimmed` and resyncs, never a silent gap.
Commits run under `BEGIN IMMEDIATE`, so SQLite serializes writers; the
expectations are checked inside that transaction. One connection, guarded by
a lock (correct for `:memory:` too; the GIL serializes Python anyway); WAL and
a busy timeout let other processes share a file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence

from runtime.limits import CHANGE_LOG_ENTRIES
from runtime.search.port import SearchEntry

from .port import (
    Bump,
    Change,
    ChangeBatch,
    Check,
    CommitResult,
    Delete,
    FeedTrimmed,
    Item,
    Key,
    Op,
    Put,
    SearchWrite,
    StoreError,
    TransactionConflict,
    ensure_one_op_per_key,
)
from .sqlite_search import SqliteSearch

__all__ = ["SqliteSnapshot", "SqliteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL, sk BLOB NOT NULL, value BLOB NOT NULL, version INTEGER NOT NULL,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL,
    pk TEXT NOT NULL, sk BLOB NOT NULL, old_value BLOB, new_value BLOB
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class SqliteStore:
    def __init__(
        self,
        path: str = ":memory:",
        *,
        max_transaction_items: int | None = None,
        clock: Callable[[], int] = time.time_ns,
        change_log_entries: int = CHANGE_LOG_ENTRIES,
    ) -> None:
        self.path = path
        self.change_log_entries = max(1, change_log_entries)
        """Changes kept at least (the last one always: it is the feed's position)."""
        self.max_transaction_items = max_transaction_items
        self._clock = clock
        self._lock = threading.RLock()
        self._readers: list[sqlite3.Connection] = []
        """Idle connections kept for snapshots (opening one costs ~0.2 ms)."""
        self._closed = False
        try:
            if path not in (":memory:", "") and not path.startswith("file:"):
                _private_files(path)
            self._conn = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            if path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            self.search = SqliteSearch(self._conn, lock=self._lock)
            """The embedded search engine: FTS5 tables in this file, written by
            `transact` (its `SearchWrite` ops) with the documents."""
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"cannot open SQLite store at {path}: {e}") from e

    def get(self, keys: Sequence[Key]) -> list[Item | None]:
        if not keys:
            return []
        with self._lock:
            found = _versions(self._conn, keys, with_values=True)
        return [Item(k, found[k][1], found[k][0]) if k in found else None for k in keys]

    def versions(self, keys: Sequence[Key]) -> list[int]:
        # Under the lock no commit is half applied; the SELECTs see one state.
        with self._lock:
            found = _versions(self._conn, keys, with_values=False) if keys else {}
        return [found[k][0] if k in found else 0 for k in keys]

    def scan(
        self,
        partition: str,
        lo: bytes = b"",
        hi: bytes | None = None,
        *,
        reverse: bool = False,
        limit: int = 100,
    ) -> list[Item]:
        with self._lock:
            return _scan(self._conn, partition, lo, hi, reverse, limit)

    def snapshot(self) -> SqliteSnapshot:
        """A read-only view of the store as of now, with the feed position
        and commit timestamp it reflects (WAL gives a reader a fixed
        snapshot; an in-memory store is held locked while the view is open)."""
        if self.path == ":memory:":
            self._lock.acquire()
            return SqliteSnapshot(self, self._conn, self._lock.release)
        with self._lock:
            conn = self._readers.pop() if self._readers else None
        if conn is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
        conn.execute("BEGIN")

        def release(conn: sqlite3.Connection = conn) -> None:
            conn.execute("ROLLBACK")  # ends the read transaction
            with self._lock:
                if len(self._readers) < 4 and not self._closed:
                    self._readers.append(conn)
                    return
            conn.close()

        return SqliteSnapshot(self, conn, release)

    def transact(self, ops: Sequence[Op]) -> CommitResult:
        ensure_one_op_per_key(ops)
        items = sum(not isinstance(op, SearchWrite) for op in ops)
        if self.max_transaction_items is not None and items > self.max_transaction_items:
            raise StoreError(
                f"a transaction of {items} items; the store takes at most "
                f"{self.max_transaction_items}"
            )
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise StoreError(f"SQLite could not start a transaction: {e}") from e
            try:
                result = self._apply(ops)
                conn.execute("COMMIT")
            except sqlite3.Error as e:
                # any failure mid-commit (reading versions, writing,
                # committing) rolls the whole commit back, of any size
                _rollback(conn)
                raise StoreError(f"SQLite failed to apply a transaction: {e}") from e
            except BaseException:
                _rollback(conn)
                raise
            return result

    def _apply(self, all_ops: Sequence[Op]) -> CommitResult:
        conn = self._conn
        entries: list[SearchEntry] = []
        ops: list[Check | Put | Delete | Bump] = []
        for op in all_ops:
            if isinstance(op, SearchWrite):
                entries.append(op.entry)
            else:
                ops.append(op)
        values = any(
            (isinstance(op, Put | Delete) and op.feed)
            or (isinstance(op, Bump) and op.value is not None)
            for op in ops
        )
        current = _versions(conn, [op.key for op in ops], with_values=values)
        failed = []
        for op in ops:
            expect = op.version if isinstance(op, Check) else op.expect
            version, value = current.get(op.key, (0, b""))
            if (expect is not None and version != expect) or (
                isinstance(op, Bump) and op.value is not None and bytes(value) != op.value
            ):
                failed.append(op.key)
        if failed:
            raise TransactionConflict(failed, "expected versions changed")
        (last,) = conn.execute(
            "SELECT coalesce(max(value), 0) FROM meta WHERE name = 'ts'"
        ).fetchone()
        ts = max(self._clock(), last + 1)
        upserts = []
        deletes = []
        bumps = []
        old_values = current
        changes: list[tuple[int, str, bytes, bytes | None, bytes | None]] = []
        for op in ops:
            if isinstance(op, Put):
                upserts.append((op.key[0], op.key[1], op.value, ts if op.recreate else 1))
                if op.feed:
                    old = old_values.get(op.key)
                    changes.append((ts, op.key[0], op.key[1], old[1] if old else None, op.value))
            elif isinstance(op, Delete):
                deletes.append(op.key)
                if op.feed and op.key in old_values:
                    changes.append((ts, op.key[0], op.key[1], old_values[op.key][1], None))
            elif isinstance(op, Bump):
                bumps.append((op.key[0], op.key[1], b""))
        try:
            if upserts:
                conn.executemany(
                    "INSERT INTO items (pk, sk, value, version) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (pk, sk) DO UPDATE SET value = excluded.value, version = version + 1",
                    upserts,
                )
            if bumps:
                conn.executemany(
                    "INSERT INTO items (pk, sk, value, version) VALUES (?, ?, ?, 1) "
                    "ON CONFLICT (pk, sk) DO UPDATE SET version = version + 1",
                    bumps,
                )
            if deletes:
                conn.executemany("DELETE FROM items WHERE pk = ? AND sk = ?", deletes)
            if changes:
                conn.executemany(
                    "INSERT INTO changes (ts, pk, sk, old_value, new_value) VALUES (?, ?, ?, ?, ?)",
                    changes,
                )
                self._trim_changes()
            if entries:
                self.search.apply(entries)
            conn.execute(
                "INSERT INTO meta (name, value) VALUES ('ts', ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (ts,),
            )
        except sqlite3.Error as e:
            raise StoreError(f"SQLite failed to apply a transaction: {e}") from e
        return CommitResult(ts)

    def _trim_changes(self) -> None:
        """Delete changes older than the last `change_log_entries`, a tenth
        of them at a time (so a commit rarely pays for it), recording the
        last position deleted for `read_changes` to detect readers that fell
        behind. Runs in the committing transaction."""
        conn, keep = self._conn, self.change_log_entries
        (last,) = conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()
        trimmed = _trimmed(conn)
        if last - trimmed <= keep + max(1, keep // 10):
            return
        upto = last - keep
        conn.execute("DELETE FROM changes WHERE seq <= ?", (upto,))
        conn.execute(
            "INSERT INTO meta (name, value) VALUES ('trimmed', ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (upto,),
        )

    def read_changes(self, after: str | None = None, limit: int = 1000) -> ChangeBatch:
        """Changes after `after` (None: the oldest the log still holds).
        Raises `FeedTrimmed` if changes after `after` were trimmed."""
        with self._lock:
            return _read_changes(self._conn, after, limit)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for reader in self._readers:
                reader.close()
            self._readers.clear()
            self._conn.close()


def _private_files(path: str) -> None:
    """Make the database file readable by its owner only (0600) before SQLite
    opens it: SQLite creates the -wal and -shm files with the main file's
    mode, so they follow. Files left by an earlier run are tightened too."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    for name in (path, path + "-wal", path + "-shm"):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if os.stat(name).st_mode & 0o077:
                os.chmod(name, 0o600)


def _versions(
    conn: sqlite3.Connection, keys: Sequence[Key], *, with_values: bool
) -> dict[Key, tuple[int, bytes]]:
    out: dict[Key, tuple[int, bytes]] = {}
    cols = "pk, sk, version, value" if with_values else "pk, sk, version, NULL"
    # Group the keys so each query is an IN over one column with the other
    # fixed: the planner then walks the primary key (an OR chain or a
    # row-value IN is much slower). Documents share sk b"", range versions
    # a pk; pick whichever grouping makes fewer queries.
    by_sk: dict[bytes, list[str]] = {}
    by_pk: dict[str, list[bytes]] = {}
    for pk, sk in keys:
        by_sk.setdefault(sk, []).append(pk)
        by_pk.setdefault(pk, []).append(sk)
    queries: list[tuple[str, list[object]]] = []
    if len(by_sk) <= len(by_pk):
        for sk, pks in by_sk.items():
            for i in range(0, len(pks), 500):
                pk_part = pks[i : i + 500]
                marks = ",".join("?" * len(pk_part))
                queries.append((f"sk = ? AND pk IN ({marks})", [sk, *pk_part]))
    else:
        for pk, sks in by_pk.items():
            for i in range(0, len(sks), 500):
                sk_part = sks[i : i + 500]
                marks = ",".join("?" * len(sk_part))
                queries.append((f"pk = ? AND sk IN ({marks})", [pk, *sk_part]))
    for where, params in queries:
        for pk, sk, version, value in conn.execute(
            f"SELECT {cols} FROM items WHERE {where}", params
        ):
            out[(pk, bytes(sk))] = (version, value)
    return out


def _scan(
    conn: sqlite3.Connection,
    partition: str,
    lo: bytes,
    hi: bytes | None,
    reverse: bool,
    limit: int,
) -> list[Item]:
    sql = "SELECT sk, value, version FROM items WHERE pk = ? AND sk >= ?"
    params: list[object] = [partition, lo]
    if hi is not None:
        sql += " AND sk < ?"
        params.append(hi)
    sql += f" ORDER BY sk {'DESC' if reverse else 'ASC'} LIMIT ?"
    params.append(limit)
    rows = conn.execute(sql, params).fetchall()
    return [Item((partition, bytes(sk)), value, version) for sk, value, version in rows]


def _read_changes(
    conn: sqlite3.Connection, after: str | None, limit: int, upto: int | None = None
) -> ChangeBatch:
    seq = int(after) if after else 0
    trimmed = _trimmed(conn)
    if after and seq < trimmed:
        raise FeedTrimmed(
            f"the change log no longer holds the changes after position {seq} (it keeps the "
            f"last {CHANGE_LOG_ENTRIES:,} by default, CHANGE_LOG_ENTRIES, and was trimmed up "
            f"to {trimmed}): resync from a fresh position"
        )
    seq = max(seq, trimmed)
    rows = conn.execute(
        "SELECT seq, ts, pk, sk, old_value, new_value FROM changes "
        "WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
        (seq, upto if upto is not None else 2**63 - 1, limit),
    ).fetchall()
    changes = [Change((pk, bytes(sk)), old, new, ts) for _, ts, pk, sk, old, new in rows]
    return ChangeBatch(changes, str(rows[-1][0]) if rows else str(seq))


def _trimmed(conn: sqlite3.Connection) -> int:
    """The last change-log position deleted (0: none)."""
    (trimmed,) = conn.execute(
        "SELECT coalesce(max(value), 0) FROM meta WHERE name = 'trimmed'"
    ).fetchone()
    return int(trimmed)


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not already: an
    interrupted write, SQLITE_FULL or an I/O error roll the whole transaction
    back on their own, and a ROLLBACK then fails and would hide the error."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


class SqliteSnapshot:
    """A read-only, fixed view of a SqliteStore (see `SqliteStore.snapshot`)."""

    def __init__(
        self, store: SqliteStore, conn: sqlite3.Connection, release: Callable[[], None]
    ) -> None:
        self.max_transaction_items = store.max_transaction_items
        self._conn = conn
        self.search = SqliteSearch(conn, create=False)
        """Search as of this view (the FTS5 tables are in the same file)."""
        self._release: Callable[[], None] | None = release
        (seq,) = conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()
        (ts,) = conn.execute(
            "SELECT coalesce(max(value), 0) FROM meta WHERE name = 'ts'"
        ).fetchone()
        self._seq = int(seq)
        self.position = str(seq)
        """The feed position of the last change this view holds."""
        self.ts = int(ts)
        """The commit timestamp of the last commit this view holds (0: none)."""

    def get(self, keys: Sequence[Key]) -> list[Item | None]:
        found = _versions(self._conn, keys, with_values=True) if keys else {}
        return [Item(k, found[k][1], found[k][0]) if k in found else None for k in keys]

    def versions(self, keys: Sequence[Key]) -> list[int]:
        found = _versions(self._conn, keys, with_values=False) if keys else {}
        return [found[k][0] if k in found else 0 for k in keys]

    def scan(
        self,
        partition: str,
        lo: bytes = b"",
        hi: bytes | None = None,
        *,
        reverse: bool = False,
        limit: int = 100,
    ) -> list[Item]:
        return _scan(self._conn, partition, lo, hi, reverse, limit)

    def transact(self, ops: Sequence[Op]) -> CommitResult:
        raise StoreError("a snapshot is read-only")

    def read_changes(self, after: str | None = None, limit: int = 1000) -> ChangeBatch:
        """Changes after `after`, up to this view's position only."""
        return _read_changes(self._conn, after, limit, self._seq)

    def close(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()

    def __enter__(self) -> SqliteSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
