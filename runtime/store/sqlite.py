"""The SQLite adapter of the storage port: the embedded default.

One table of items keyed by (partition, sort key), a change-log table written
in the same transaction as the items (the change feed), and a meta row with
the last commit timestamp so timestamps keep increasing across restarts.
The change log keeps the last `change_log_entries` changes (older ones are
deleted as commits add new ones); a reader asking for changes after a
position that was trimmed gets `FeedTrimmed` and resyncs, never a silent gap.

The committer. One process owns a database file (a lock file next to it;
a second store on the same file is refused), so one writer validates every
commit, the way Convex's committer does:
- range versions (`RANGE_VERSION_PARTITIONS`) are held in memory
  (`range_versions.py`), not read and written as rows;
- the last timestamp and change-log position are known without reading them;
- an insert's "must be absent" is checked by the INSERT itself;
- group commit: transactions that arrive while a commit runs wait, and the
  next commit applies them together in one SQLite transaction, each
  validated in turn against the state the ones before it left (so each is
  serializable as if committed alone) and each acknowledged only when the
  SQLite COMMIT returned. A failed commit fails every transaction in it.
`synchronous="normal"` (the default, WAL) survives a crash of the process;
`"full"` also survives a crash of the machine, at an fsync per group commit.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from runtime.limits import CHANGE_LOG_ENTRIES, GROUP_COMMIT_TRANSACTIONS, RANGE_VERSIONS_HELD
from runtime.search.port import SearchEntry

from .port import (
    RANGE_VERSION_PARTITIONS,
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
from .range_versions import RangeVersions, is_range_key
from .sqlite_search import SqliteSearch

__all__ = ["SqliteSnapshot", "SqliteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL, sk BLOB NOT NULL, value BLOB NOT NULL, version INTEGER NOT NULL,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL,
    pk TEXT NOT NULL, sk BLOB NOT NULL, old_value BLOB, new_value BLOB
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

_UPSERT = (
    "INSERT INTO items (pk, sk, value, version) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (pk, sk) DO UPDATE SET value = excluded.value, version = version + 1"
)
_INSERT = "INSERT INTO items (pk, sk, value, version) VALUES (?, ?, ?, ?)"
_LOG_CHANGE = "INSERT INTO changes (ts, pk, sk, old_value, new_value) VALUES (?, ?, ?, ?, ?)"
_BUMP = (
    "INSERT INTO items (pk, sk, value, version) VALUES (?, ?, ?, 1) "
    "ON CONFLICT (pk, sk) DO UPDATE SET version = version + 1"
)
_SYNCHRONOUS = ("normal", "full")
_ONE = "SELECT version, NULL FROM items WHERE pk = ? AND sk = ?"
_ONE_WITH_VALUE = "SELECT version, value FROM items WHERE pk = ? AND sk = ?"


@dataclass
class _Waiting:
    """One transaction waiting for the committer. Its thread sleeps on
    `wake` (a lock held from the start, released once by whoever wakes it):
    either its group committed (`done`) or it leads the next one (`group`).
    Each waiter is woken once, so a commit costs its own group's wake-ups,
    not one for every thread in the queue."""

    ops: Sequence[Op]
    done: bool = False
    result: CommitResult | None = None
    error: BaseException | None = None
    group: list[_Waiting] | None = None
    wake: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Group:
    """The state one group commit builds on top of the store's: what its
    transactions wrote so far, seen by the ones after them, adopted by the
    store only once SQLite committed."""

    ts: int
    seq: int
    last_change_ts: int = 0
    """The timestamp of the last of its transactions that wrote change rows."""
    ranges: dict[Key, int] = field(default_factory=dict)
    range_values: dict[Key, bytes] = field(default_factory=dict)


class _InsertCollision(Exception):
    """An INSERT of a key that must be absent found it present."""


class SqliteStore:
    def __init__(
        self,
        path: str = ":memory:",
        *,
        max_transaction_items: int | None = None,
        clock: Callable[[], int] = time.time_ns,
        change_log_entries: int = CHANGE_LOG_ENTRIES,
        synchronous: str = "normal",
        range_versions_held: int = RANGE_VERSIONS_HELD,
    ) -> None:
        if synchronous not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {_SYNCHRONOUS}, not {synchronous!r}")
        self.path = path
        self.change_log_entries = max(1, change_log_entries)
        """Changes kept at least (the last one always: it is the feed's position)."""
        self.max_transaction_items = max_transaction_items
        self._clock = clock
        self._lock = threading.RLock()
        self._readers: list[sqlite3.Connection] = []
        """Idle connections kept for snapshots (opening one costs ~0.2 ms)."""
        self._ranges_lock = threading.Lock()
        """Guards the range-version map: readers take it, not the commit's lock."""
        self._closed = False
        self._queue: list[_Waiting] = []
        self._queue_lock = threading.Lock()
        self._committing = False
        self.group_commits = 0
        """SQLite transactions that committed (tests and benchmarks read it)."""
        self._owner: _FileOwner | None = None
        try:
            if path not in (":memory:", "") and not path.startswith("file:"):
                _private_files(path)
                self._owner = _FileOwner(path)
            self._conn = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            if path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self._conn.executescript(_SCHEMA)
            self.search = SqliteSearch(self._conn, lock=self._lock)
            """The embedded search engine: FTS5 tables in this file, written by
            `transact` (its `SearchWrite` ops) with the documents."""
            ts = _last_ts(self._conn)
            (seq,) = self._conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()
            self._trimmed = _trimmed(self._conn)
        except (sqlite3.Error, OSError) as e:
            if self._owner is not None:
                self._owner.release()
            raise StoreError(f"cannot open SQLite store at {path}: {e}") from e
        self._ts = int(ts)
        """The last commit timestamp (every later one is larger)."""
        self._seq = int(seq)
        """The change log's last position."""
        self._ranges = RangeVersions(self._ts, range_versions_held)
        self._range_values: dict[Key, bytes] = {}
        """Stored values of range keys, read once (a table's index set)."""

    # ---- reads ---------------------------------------------------------------------

    def get(self, keys: Sequence[Key]) -> list[Item | None]:
        if not keys:
            return []
        ranged = [k for k in keys if is_range_key(k)]
        rows = [k for k in keys if not is_range_key(k)] if ranged else keys
        found: dict[Key, tuple[int, bytes]] = {}
        if rows:
            with self._lock:
                found = _versions(self._conn, rows, with_values=True)
        if ranged:
            # Range versions are read without waiting for a commit's I/O
            # (`_ranges_lock` only guards the map); values are read once.
            values = self._range_values
            if any(k not in values for k in ranged):
                with self._lock:
                    self._values_of(ranged)
            with self._ranges_lock:
                versions = self._ranges.versions(ranged)
            for k, version in zip(ranged, versions, strict=True):
                found[k] = (version, values[k])
        return [Item(k, found[k][1], found[k][0]) if k in found else None for k in keys]

    def versions(self, keys: Sequence[Key]) -> list[int]:
        # Under the lock no commit is half applied: the SELECTs see one state.
        # Range versions come from memory, at another instant; that is enough
        # for `Database.still_valid` (commit.py): versions only grow, so keys
        # found unchanged at either instant held their versions at the earlier.
        rows = [k for k in keys if not is_range_key(k)]
        found: dict[Key, tuple[int, bytes]] = {}
        if rows:
            with self._lock:
                found = _versions(self._conn, rows, with_values=False)
        if len(rows) == len(keys):
            return [found[k][0] if k in found else 0 for k in keys]
        with self._ranges_lock:
            ranges = self._ranges
            return [
                ranges.version(k) if is_range_key(k) else (found[k][0] if k in found else 0)
                for k in keys
            ]

    def _values_of(self, keys: Sequence[Key], group: _Group | None = None) -> dict[Key, bytes]:
        """The stored values of range keys (b"" for none), cached: only the
        committer writes them."""
        out: dict[Key, bytes] = {}
        missing = []
        for k in keys:
            if group is not None and k in group.range_values:
                out[k] = group.range_values[k]
            elif k in self._range_values:
                out[k] = self._range_values[k]
            else:
                missing.append(k)
        if missing:
            found = _versions(self._conn, missing, with_values=True)
            for k in missing:
                value = bytes(found[k][1]) if k in found else b""
                self._range_values[k] = out[k] = value
        return out

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
        snapshot; an in-memory store is held locked while the view is open).
        Range versions read through a view are the stored rows' (a view is
        never committed from)."""
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

    # ---- the committer -------------------------------------------------------------

    def transact(self, ops: Sequence[Op]) -> CommitResult:
        ensure_one_op_per_key(ops)
        cap = self.max_transaction_items
        items = 0 if cap is None else sum(type(op) is not SearchWrite for op in ops)
        if cap is not None and items > cap:
            raise StoreError(
                f"a transaction of {items} items; the store takes at most "
                f"{self.max_transaction_items}"
            )
        me = _Waiting(ops)
        me.wake.acquire()
        with self._queue_lock:
            if self._committing:
                self._queue.append(me)
            else:
                self._committing = True
                me.group = [me]
        if me.group is None:
            me.wake.acquire()  # until done, or handed the lead
        while not me.done:
            assert me.group is not None
            self._lead(me.group)
        if me.error is not None:
            raise me.error
        assert me.result is not None
        return me.result

    def _lead(self, group: list[_Waiting]) -> None:
        """Commit `group`, then hand the lead to the transaction waiting
        longest (with the ones queued behind it, up to
        GROUP_COMMIT_TRANSACTIONS) and wake every member of `group`."""
        failure: Exception | None = None
        try:
            self._commit_group(group)
        except Exception as e:
            failure = e
        finally:
            with self._queue_lock:
                nxt = self._queue[:GROUP_COMMIT_TRANSACTIONS]
                del self._queue[:GROUP_COMMIT_TRANSACTIONS]
                if nxt:
                    nxt[0].group = nxt
                else:
                    self._committing = False
            for waiting in group:
                if waiting.result is None and waiting.error is None:
                    waiting.error = failure or StoreError("the commit ended without an outcome")
                waiting.done = True
                waiting.wake.release()
            if nxt:
                nxt[0].wake.release()

    def _commit_group(self, group: list[_Waiting]) -> None:
        with self._lock:
            if self._closed:
                for w in group:
                    w.error = StoreError("the SQLite store is closed")
                return
            try:
                self._commit_together(group)
            except _InsertCollision:
                # A key an insert expected absent exists (a true conflict,
                # rare): redo each transaction alone, checking it first.
                for w in group:
                    w.result = w.error = None
                    self._commit_together([w], check_inserts=True)

    def _commit_together(self, group: list[_Waiting], *, check_inserts: bool = False) -> None:
        """One SQLite transaction for `group`; sets each one's result or error."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            for w in group:
                w.error = StoreError(f"SQLite could not start a transaction: {e}")
            return
        state = _Group(self._ts, self._seq)
        try:
            for w in group:
                try:
                    w.result = self._apply(w.ops, state, check_inserts)
                except TransactionConflict as conflict:
                    w.error = conflict
            if state.ts != self._ts:
                self._trim_changes(state)
                if state.last_change_ts != state.ts:
                    # The last commit's timestamp is persisted by its change
                    # row when it has one (the log keeps its last row), else here.
                    conn.execute(
                        "INSERT INTO meta (name, value) VALUES ('ts', ?) "
                        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                        (state.ts,),
                    )
                conn.execute("COMMIT")
            else:
                conn.execute("ROLLBACK")  # every one conflicted: nothing to write
        except _InsertCollision:
            _rollback(conn, self.search)
            raise
        except sqlite3.Error as e:
            # any failure mid-commit (reading versions, writing, committing)
            # rolls the whole group back, of any size
            _rollback(conn, self.search)
            for w in group:
                w.result, w.error = None, StoreError(f"SQLite failed to apply a transaction: {e}")
            return
        except BaseException as e:
            _rollback(conn, self.search)
            for w in group:
                w.result, w.error = None, e
            raise
        self.group_commits += 1
        self._ts, self._seq = state.ts, state.seq
        self._range_values.update(state.range_values)
        with self._ranges_lock:
            self._ranges.write(state.ranges)

    def _apply(self, all_ops: Sequence[Op], state: _Group, check_inserts: bool) -> CommitResult:
        """Validate one transaction against the group's state, then write it.
        Raises TransactionConflict having written nothing."""
        conn = self._conn
        entries: list[SearchEntry] = []
        ranged: list[Check | Put | Delete | Bump] = []
        rows: list[Check | Put | Delete | Bump] = []
        for op in all_ops:
            if isinstance(op, SearchWrite):
                entries.append(op.entry)
            elif op.key[0].startswith(RANGE_VERSION_PARTITIONS):  # is_range_key, inlined
                ranged.append(op)
            else:
                rows.append(op)
        failed = []
        if ranged:
            held = self._ranges
            values = self._values_of(
                [op.key for op in ranged if isinstance(op, Bump) and op.value is not None], state
            )
            for op in ranged:
                expect = op.version if isinstance(op, Check) else op.expect
                version = state.ranges.get(op.key) or held.version(op.key)
                if (expect is not None and version != expect) or (
                    isinstance(op, Bump) and op.value is not None and values[op.key] != op.value
                ):
                    failed.append(op.key)
        read = [op.key for op in rows if _needs_row(op, check_inserts)]
        current: dict[Key, tuple[int, bytes]] = {}
        if read:
            values_needed = any(isinstance(op, Put | Delete) and op.feed for op in rows) or any(
                isinstance(op, Bump) and op.value is not None for op in rows
            )
            current = _versions(conn, read, with_values=values_needed)
            for op in rows:
                expect = op.version if isinstance(op, Check) else op.expect
                version, value = current.get(op.key, (0, b""))
                if (expect is not None and version != expect) or (
                    isinstance(op, Bump) and op.value is not None and bytes(value) != op.value
                ):
                    failed.append(op.key)
        # (Nothing read: every op expects absence or nothing, and an insert
        # over an existing row fails in SQLite, raising _InsertCollision.)
        if failed:
            raise TransactionConflict(failed, "expected versions changed")
        ts = state.ts = max(self._clock(), state.ts + 1)
        inserts = []
        upserts = []
        deletes = []
        bumps = []
        changes: list[tuple[int, str, bytes, bytes | None, bytes | None]] = []
        for op in rows:
            if isinstance(op, Put):
                row = (op.key[0], op.key[1], op.value, ts if op.recreate else 1)
                if op.expect == 0:
                    inserts.append(row)
                else:
                    upserts.append(row)
                if op.feed:
                    old = current.get(op.key)
                    changes.append((ts, op.key[0], op.key[1], old[1] if old else None, op.value))
            elif isinstance(op, Delete):
                deletes.append(op.key)
                if op.feed and op.key in current:
                    changes.append((ts, op.key[0], op.key[1], current[op.key][1], None))
            elif isinstance(op, Bump):
                bumps.append((op.key[0], op.key[1], b""))
        for op in ranged:
            if isinstance(op, Check):
                continue
            state.ranges[op.key] = ts
            if isinstance(op, Put):
                upserts.append((op.key[0], op.key[1], op.value, 1))
                state.range_values[op.key] = op.value
            elif isinstance(op, Delete):
                deletes.append(op.key)
                state.range_values[op.key] = b""
        if inserts:
            try:
                conn.executemany(_INSERT, inserts)
            except sqlite3.IntegrityError as e:
                if check_inserts:
                    raise StoreError(f"SQLite refused an insert it had checked: {e}") from e
                raise _InsertCollision from e
        if upserts:
            conn.executemany(_UPSERT, upserts)
        if bumps:
            conn.executemany(_BUMP, bumps)
        if deletes:
            conn.executemany("DELETE FROM items WHERE pk = ? AND sk = ?", deletes)
        if changes:
            conn.executemany(_LOG_CHANGE, changes)
            state.seq += len(changes)
            state.last_change_ts = ts
        if entries:
            self.search.apply(entries)
        return CommitResult(ts)

    def _trim_changes(self, state: _Group) -> None:
        """Delete changes older than the last `change_log_entries`, a tenth
        of them at a time (so a commit rarely pays for it), recording the
        last position deleted for `read_changes` to detect readers that fell
        behind. Runs in the committing transaction."""
        keep = self.change_log_entries
        if state.seq - self._trimmed <= keep + max(1, keep // 10):
            return
        upto = state.seq - keep
        self._conn.execute("DELETE FROM changes WHERE seq <= ?", (upto,))
        self._conn.execute(
            "INSERT INTO meta (name, value) VALUES ('trimmed', ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (upto,),
        )
        self._trimmed = upto

    def read_changes(self, after: str | None = None, limit: int = 1000) -> ChangeBatch:
        """Changes after `after` (None: the oldest the log still holds).
        Raises `FeedTrimmed` if changes after `after` were trimmed."""
        with self._lock:
            return _read_changes(self._conn, after, limit)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for reader in self._readers:
                reader.close()
            self._readers.clear()
            self._conn.close()
            if self._owner is not None:
                self._owner.release()


def _needs_row(op: Check | Put | Delete | Bump, check_inserts: bool) -> bool:
    """Whether validating or logging `op` needs its row's current version or
    value. An insert (expect=0) does not: its INSERT fails if the row exists."""
    if isinstance(op, Check):
        return True
    if isinstance(op, Put):
        if op.expect == 0:
            return check_inserts
        return op.feed or op.expect is not None
    if isinstance(op, Delete):
        return op.feed or op.expect is not None
    return op.expect is not None or op.value is not None


class _FileOwner:
    """This process's claim on a database file: an exclusive lock on
    `<path>-lock`, held while the store is open (the committer keeps state
    in memory, so a second writer would break serializability)."""

    def __init__(self, path: str) -> None:
        self.path = path + "-lock"
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if sys.platform == "win32":  # pragma: no cover - no flock there
            return
        import fcntl

        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise StoreError(
                f"the SQLite store at {path} is open in another store (this process or another "
                "one, e.g. a dev server on the same data directory): stop it first, or use "
                "another data directory"
            ) from None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the lock


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
    if len(keys) == 1:  # the common case (a document read or checked): one lookup
        ((pk, sk),) = keys
        row = conn.execute(_ONE_WITH_VALUE if with_values else _ONE, (pk, sk)).fetchone()
        if row is not None:
            out[(pk, sk)] = (row[0], row[1])
        return out
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


def _last_ts(conn: sqlite3.Connection) -> int:
    """The last commit's timestamp: its change rows carry it, or (a commit
    that changed no feed item) the meta row does."""
    (ts,) = conn.execute(
        "SELECT max(coalesce((SELECT max(value) FROM meta WHERE name = 'ts'), 0), "
        "coalesce((SELECT ts FROM changes ORDER BY seq DESC LIMIT 1), 0))"
    ).fetchone()  # timestamps grow with positions: the last row has the largest
    return int(ts)


def _trimmed(conn: sqlite3.Connection) -> int:
    """The last change-log position deleted (0: none)."""
    (trimmed,) = conn.execute(
        "SELECT coalesce(max(value), 0) FROM meta WHERE name = 'trimmed'"
    ).fetchone()
    return int(trimmed)


def _rollback(conn: sqlite3.Connection, search: SqliteSearch | None = None) -> None:
    """Roll back the open transaction, if SQLite has not already: an
    interrupted write, SQLITE_FULL or an I/O error roll the whole transaction
    back on their own, and a ROLLBACK then fails and would hide the error."""
    if search is not None:
        search.forget()  # it may have created an index in the rolled-back transaction
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
        ts = _last_ts(conn)
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
