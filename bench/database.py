"""Database core benchmarks: core vs raw store, item costs, throughput under contention.

Figures (medians over repeats, ratios from the same run):
- sqlite_insert_core_us / sqlite_insert_raw_us / sqlite_insert_ratio: one
  mutation inserting one document into a table with one index, vs a raw
  sqlite3 INSERT + COMMIT into an indexed table with the same pragmas.
- sqlite_query100_core_us / _raw_us / _ratio: an index range of 100 documents.
- sqlite_insert_core_us / sqlite_insert_raw_same_indexes_us /
  sqlite_insert_ratio_same_indexes: the same insert vs a raw table with the
  core's three indexes (id, by_creation_time, by_list); sqlite_insert16_*:
  16 threads inserting (the committer groups their commits; per_group_commit
  is how many share one) vs 16 threads each committing one raw insert at a
  time on a shared connection; the `_full` variants with synchronous=FULL
  (an fsync per commit) on both sides.
- sqlite_insert_sql_us / sqlite_insert_python_us: of the core's insert, the
  median time inside sqlite3's `execute` / `executemany` (the store's
  connection timed through a proxy) and the rest (the core's Python).
- sqlite_insert_layout_us / sqlite_insert_layout_ratio: the SQLite work of
  the core's insert written by hand (the store's tables and statements,
  the same rows, keys made beforehand) vs the raw insert with the same
  indexes: the ratio the key-value layout costs with no Python at all.
- sqlite_insert16_sql_us (and `_full`): the same time inside sqlite3's calls
  during the 16-thread run, per mutation. A call releases the GIL and must
  take it back from the threads running their mutations' Python, so this
  counts the committer's wait for the GIL too: set beside
  sqlite_insert_sql_us, it shows what group commit saves and what the GIL
  takes back.
- ddb_* : the same on DynamoDB Local (raw = one TransactWriteItems with a
  conditional Put of the document and a Put of its index entry; a Query of 100
  items plus a BatchGetItem of them for the range).
- items_*: transaction items for the common shapes.
- sqlite_uncontended_mps / sqlite_contended_mps / contended_ratio, and the
  conflict rate: 16 threads incrementing their own counters vs 10 hot ones.
- ddb_delete1000_* (issue 15's goal): deleting 1,000 documents in ONE mutation
  (the large-commit protocol) vs in 10 mutations of 100 (each also past 100
  items), medians of 3 on fresh data; the items the one mutation cost.
- ddb_insert_before_us / ddb_insert_after_us / ddb_insert_before_ratio
  (`--before REV`): one-document inserts by this tree and by the git revision
  REV (checked out in a temporary worktree), on the same DynamoDB Local,
  alternated, each a median; the small path must not get slower.

Run: `python bench/database.py [--quick] [--no-dynamodb] [--before REV]`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime.database import Database, OccConflictError, Transaction
from runtime.schema import define_schema, define_table
from runtime.store import sqlite as sqlite_store
from runtime.store.port import Store
from runtime.store.sqlite import SqliteStore
from runtime.values import dumps, encode_key, make_id, v

SCHEMA = define_schema(
    {
        "items": define_table({"list": v.int64(), "name": v.string()}).index("by_list", ["list"]),
        "two": define_table({"a": v.string(), "b": v.string()})
        .index("by_a", ["a"])
        .index("by_b", ["b"]),
        "counters": define_table({"n": v.int64()}),
    }
)


def figure(name: str, value: float, unit: str) -> None:
    print(f"figure {name} {value:.4g} {unit}", flush=True)


def median_us(fn: Callable[[], Any], n: int, warmup: int = 20) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e6)
    return statistics.median(samples)


# ---- SQLite --------------------------------------------------------------------


class _TimedConnection:
    """The store's sqlite3 connection, adding up the time of its statements."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn, self.spent = conn, 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)

    def _timed(self, call: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        start = time.perf_counter()
        try:
            return call(*args)
        finally:
            self.spent += time.perf_counter() - start

    def execute(self, *args: Any) -> Any:
        return self._timed(self.conn.execute, args)

    def executemany(self, *args: Any) -> Any:
        return self._timed(self.conn.executemany, args)


@contextlib.contextmanager
def timed_statements(store: SqliteStore) -> Iterator[_TimedConnection]:
    """The store's statements timed while inside (only its committer, under
    the store's lock, runs them, so one sum serves every thread)."""
    timed = _TimedConnection(store._conn)
    store._conn = timed  # type: ignore[assignment]
    try:
        yield timed
    finally:
        store._conn = timed.conn


def sql_us(store: SqliteStore, fn: Callable[[], Any], n: int) -> float:
    """Median time per call of `fn` spent in the store's SQLite statements."""
    samples = []
    with timed_statements(store) as timed:
        for _ in range(n):
            timed.spent = 0.0
            fn()
            samples.append(timed.spent * 1e6)
    return statistics.median(samples)


def _connect(path: str, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """A WAL-mode connection as the store opens its own (the raw baselines')."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


def sqlite_raw(path: str) -> sqlite3.Connection:
    conn = _connect(path)
    conn.execute(
        "CREATE TABLE items(id TEXT PRIMARY KEY, creation REAL, list INTEGER, name TEXT, body TEXT)"
    )
    conn.execute("CREATE INDEX items_by_list ON items(list, creation, id)")
    return conn


def sqlite_raw_same_indexes(path: str, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """A hand-written table with the core's indexes on `items`: by id (the
    primary key), by_creation_time and by_list."""
    conn = _connect(path, synchronous)
    conn.execute(
        "CREATE TABLE items(id TEXT PRIMARY KEY, creation REAL, list INTEGER, name TEXT, body TEXT)"
    )
    conn.execute("CREATE INDEX items_by_creation ON items(creation, id)")
    conn.execute("CREATE INDEX items_by_list ON items(list, creation, id)")
    return conn


def raw_inserter(conn: sqlite3.Connection) -> Callable[[], None]:
    """One insert, one commit, serialized by a lock (the fastest a
    threadpool app sharing one connection can do)."""
    lock = threading.Lock()

    def insert() -> None:
        body = '{"list":1,"name":"x"}'
        with lock:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO items VALUES (?,?,?,?,?)",
                (uuid.uuid4().hex, time.time() * 1000, 1, "x", body),
            )
            conn.execute("COMMIT")

    return insert


def layout_inserter(path: str, count: int) -> Callable[[], None]:
    """What the core's insert asks of SQLite, written by hand: the store's
    own tables and statements, the rows one insert writes (the document,
    its `by_creation_time` and `by_list` entries, its change-log row), for
    up to `count` inserts whose keys and values are made beforehand. The
    floor of the key-value layout, with none of the core's Python."""
    conn = _connect(path)
    conn.executescript(sqlite_store._SCHEMA)
    prepared = []
    for i in range(1, count + 1):
        doc_id = make_id("items", os.urandom(16))
        created = time.time() * 1000 + i * 0.001
        doc = {"_id": doc_id, "_creationTime": created, "list": 1.0, "name": "x"}
        value = b"items\n" + dumps(doc)
        entries = [
            ("i:items:by_creation_time", encode_key([created, doc_id]), doc_id.encode(), 1),
            ("i:items:by_list", encode_key([1.0, created, doc_id]), doc_id.encode(), 1),
        ]
        change = (i, f"d:{doc_id}", b"", None, value)
        prepared.append(([(f"d:{doc_id}", b"", value, 1)], entries, [change]))
    rows = iter(prepared)

    def insert() -> None:
        document, entries, change = next(rows)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sqlite_store._INSERT, document)
        conn.executemany(sqlite_store._UPSERT, entries)
        conn.executemany(sqlite_store._LOG_CHANGE, change)
        conn.execute("COMMIT")

    return insert


def threads_rate(fn: Callable[[], Any], threads: int, per_thread: int) -> float:
    """Calls per second of `fn` from `threads` threads, `per_thread` each."""

    def body() -> None:
        for _ in range(per_thread):
            fn()

    workers = [threading.Thread(target=body) for _ in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return threads * per_thread / (time.perf_counter() - start)


def bench_sqlite_committer(n: int, per_thread: int) -> None:
    """16 threads inserting (the committer's group commit) vs 16 threads doing
    one raw commit each, with synchronous NORMAL (the default) and FULL (an
    fsync per commit, on both sides); and with FULL, one insert vs raw."""
    with tempfile.TemporaryDirectory() as d:
        for sync in ("normal", "full"):
            suffix = "" if sync == "normal" else "_full"
            store = SqliteStore(os.path.join(d, f"core{sync}.db"), synchronous=sync)
            db = Database(store, SCHEMA)
            raw = sqlite_raw_same_indexes(os.path.join(d, f"raw{sync}.db"), sync.upper())
            raw_insert = raw_inserter(raw)

            def core_insert(db: Database = db) -> None:
                db.mutation(lambda tx: tx.insert("items", {"list": 1, "name": "x"}))

            if sync == "full":
                core = median_us(core_insert, n)
                base = median_us(raw_insert, n)
                figure("sqlite_insert_full_core_us", core, "us")
                figure("sqlite_insert_full_raw_same_indexes_us", base, "us")
                figure("sqlite_insert_ratio_same_indexes_full", core / base, "x")
            before = store.group_commits
            with timed_statements(store) as timed:
                core_rate = threads_rate(core_insert, 16, per_thread)
            per_group = 16 * per_thread / max(1, store.group_commits - before)
            raw_rate = threads_rate(raw_insert, 16, per_thread)
            figure(f"sqlite_insert16{suffix}_core_mps", core_rate, "mutations/s")
            figure(f"sqlite_insert16{suffix}_raw_mps", raw_rate, "inserts/s")
            figure(f"sqlite_insert16{suffix}_ratio", core_rate / raw_rate, "x")
            figure(f"sqlite_insert16{suffix}_per_group_commit", per_group, "transactions")
            figure(f"sqlite_insert16{suffix}_sql_us", timed.spent * 1e6 / (16 * per_thread), "us")
            store.close()
            raw.close()


def bench_sqlite(n: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        store = SqliteStore(os.path.join(d, "core.db"))
        db = Database(store, SCHEMA)
        raw = sqlite_raw(os.path.join(d, "raw.db"))
        lock = threading.Lock()
        counter = iter(range(10**9))

        def core_insert() -> None:
            db.mutation(lambda tx: tx.insert("items", {"list": 1, "name": "x"}))

        def raw_insert() -> None:
            i = next(counter)
            body = '{"list":1,"name":"x"}'
            with lock:
                raw.execute("BEGIN IMMEDIATE")
                raw.execute(
                    "INSERT INTO items VALUES (?,?,?,?,?)",
                    (uuid.uuid4().hex, time.time() * 1000 + i, 1, "x", body),
                )
                raw.execute("COMMIT")

        same = raw_inserter(sqlite_raw_same_indexes(os.path.join(d, "same.db")))
        layout = layout_inserter(os.path.join(d, "layout.db"), n + 20)
        core = median_us(core_insert, n)
        base = median_us(raw_insert, n)
        base_same = median_us(same, n)
        figure("sqlite_insert_core_us", core, "us")
        figure("sqlite_insert_raw_us", base, "us")
        figure("sqlite_insert_ratio", core / base, "x")
        figure("sqlite_insert_raw_same_indexes_us", base_same, "us")
        figure("sqlite_insert_ratio_same_indexes", core / base_same, "x")
        sql = sql_us(store, core_insert, n)
        figure("sqlite_insert_sql_us", sql, "us")
        figure("sqlite_insert_python_us", core - sql, "us")
        floor = median_us(layout, n)
        figure("sqlite_insert_layout_us", floor, "us")
        figure("sqlite_insert_layout_ratio", floor / base_same, "x")

        def core_query() -> None:
            db.query(
                lambda tx: (
                    tx.query("items").with_index("by_list", lambda q: q.eq("list", 1)).take(100)
                )
            )

        def raw_query() -> None:
            rows = raw.execute(
                "SELECT body FROM items WHERE list = ? ORDER BY creation, id LIMIT 100", (1,)
            ).fetchall()
            docs = [json.loads(body) for (body,) in rows]  # what an app would do with them
            assert len(docs) == 100

        core = median_us(core_query, n)
        base = median_us(raw_query, n)
        figure("sqlite_query100_core_us", core, "us")
        figure("sqlite_query100_raw_us", base, "us")
        figure("sqlite_query100_ratio", core / base, "x")
        store.close()
        raw.close()


# ---- item costs -----------------------------------------------------------------


def bench_items() -> None:
    db = Database(SqliteStore(":memory:"), SCHEMA)
    inserted = db.mutation(lambda tx: tx.insert("two", {"a": "x", "b": "y"}))
    assert inserted.plan is not None
    figure("items_insert_two_indexes", inserted.plan.items, "items")
    doc_id = inserted.value
    out = db.mutation(lambda tx: tx.patch(doc_id, {}))
    assert out.plan is not None
    figure("items_patch_keeping_keys", out.plan.items, "items")
    db.mutation(lambda tx: [tx.insert("items", {"list": 2, "name": "n"}) for _ in range(14)])
    for _ in range(6):
        db.mutation(lambda tx: [tx.insert("items", {"list": 2, "name": "n"}) for _ in range(14)])

    def read_then_insert(tx: Transaction) -> None:
        got = tx.query("items").with_index("by_list", lambda q: q.eq("list", 2)).take(100)
        assert len(got) == 98
        tx.insert("items", {"list": 2, "name": "m"})

    out = db.mutation(read_then_insert)
    assert out.plan is not None
    figure("items_read_range100_then_insert", out.plan.items, "items")

    def scan_then_insert(tx: Transaction) -> None:
        tx.query("two").collect()
        tx.insert("two", {"a": "p", "b": "q"})

    out = db.mutation(scan_then_insert)
    assert out.plan is not None
    figure("items_read_table_then_insert", out.plan.items, "items")


# ---- throughput -------------------------------------------------------------------


def throughput(db: Database, threads: int, per_thread: int, hot: int | None) -> tuple[float, float]:
    """Mutations per second and conflicts per committed mutation."""
    count = hot if hot is not None else threads
    ids = db.mutation(lambda tx: [tx.insert("counters", {"n": 0}) for _ in range(count)]).value
    before = db.conflicts
    gave_up = 0
    lock = threading.Lock()

    def body(t: int) -> None:
        nonlocal gave_up
        for i in range(per_thread):
            target = ids[(t * 7 + i) % count] if hot is not None else ids[t]

            def inc(tx: Transaction, target: str = target) -> None:
                doc = tx.get(target)
                assert doc is not None
                tx.patch(target, {"n": doc["n"] + 1})

            try:
                db.mutation(inc)
            except OccConflictError:
                with lock:
                    gave_up += 1

    start = time.perf_counter()
    ts = [threading.Thread(target=body, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    elapsed = time.perf_counter() - start
    done = threads * per_thread - gave_up

    def counters(tx: Transaction) -> list[float]:
        docs = [tx.get(i) for i in ids]
        return [doc["n"] for doc in docs if doc is not None]

    total = sum(db.query(counters).value)
    assert total == done, f"lost updates: {total} != {done}"
    return done / elapsed, (db.conflicts - before) / max(done, 1)


def bench_throughput(prefix: str, make_db: Callable[[], Database], per_thread: int) -> None:
    un, _ = throughput(make_db(), 16, per_thread, None)
    co, conflicts = throughput(make_db(), 16, per_thread, 10)
    figure(f"{prefix}_uncontended_mps", un, "mutations/s")
    figure(f"{prefix}_contended_mps", co, "mutations/s")
    figure(f"{prefix}_contended_ratio", co / un, "x")
    figure(f"{prefix}_contended_conflicts_per_mutation", conflicts, "conflicts")


# ---- DynamoDB Local -----------------------------------------------------------------


@contextlib.contextmanager
def dynamodb_local() -> Iterator[tuple[str, Any]]:
    from tests.support.dynamodb_local import running_dynamodb_local

    with running_dynamodb_local() as endpoint:
        import boto3

        client = boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        yield endpoint, client


def ddb_store(client: Any, name: str, *, stream: bool = True) -> Store:
    from runtime.store.dynamodb import DynamoDBStore, create_table

    create_table(client, name, stream=stream)
    return DynamoDBStore(name, client=client)


def bench_large_delete(client: Any, repeats: int = 3) -> None:
    """Issue 15's goal: one 1,000-document delete vs ten 100-document ones.
    Tables without a stream: DynamoDB Local slows down for the rest of its
    life as stream records pile up (AWS does not), which would bias whichever
    case runs later."""
    names = iter(range(1000))
    one: list[float] = []
    ten: list[float] = []
    items = 0
    for _ in range(repeats):
        for case in ("one", "ten"):
            db = Database(ddb_store(client, f"large{next(names)}", stream=False), SCHEMA)
            ids: list[str] = []
            for _ in range(10):
                ids += db.mutation(
                    lambda tx: [tx.insert("items", {"list": 2, "name": "d"}) for _ in range(100)]
                ).value
            started = time.perf_counter()
            if case == "one":
                out = db.mutation(lambda tx, ids=ids: [tx.delete(i) for i in ids])  # type: ignore[misc]
                items = out.plan.items if out.plan is not None else 0
            else:
                for k in range(0, 1000, 100):
                    db.mutation(
                        lambda tx, k=k, ids=ids: [tx.delete(i) for i in ids[k : k + 100]]  # type: ignore[misc]
                    )
            (one if case == "one" else ten).append((time.perf_counter() - started) * 1000)
            left = db.query(lambda tx: tx.query("items").take(1)).value
            assert left == [], "the delete left documents behind"
    figure("ddb_delete1000_one_mutation_ms", statistics.median(one), "ms")
    figure("ddb_delete1000_ten_mutations_ms", statistics.median(ten), "ms")
    figure("ddb_delete1000_ratio", statistics.median(one) / statistics.median(ten), "x")
    figure("ddb_delete1000_items", items, "items")


_INSERT_PROBE = """
import statistics, sys, time, boto3
from runtime.database import Database
from runtime.schema import define_schema, define_table
from runtime.store.dynamodb import DynamoDBStore, create_table
from runtime.values import v
endpoint, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="bench", aws_secret_access_key="bench")
create_table(client, name)
schema = define_schema({"items": define_table({"list": v.int64(), "name": v.string()})
                        .index("by_list", ["list"])})
db = Database(DynamoDBStore(name, client=client), schema)
times = []
for i in range(n + 20):
    t = time.perf_counter()
    db.mutation(lambda tx: tx.insert("items", {"list": 1, "name": "x"}))
    if i >= 20:
        times.append(time.perf_counter() - t)
print(statistics.median(times) * 1e6)
"""


def bench_insert_before(endpoint: str, rev: str, n: int, rounds: int = 3) -> None:
    """One-document inserts by REV and by this tree, alternated on one
    DynamoDB Local, each round a fresh table per side; medians of the rounds'
    medians. REV is checked out in a temporary git worktree."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        tree = os.path.join(tmp, "before")
        subprocess.run(
            ["git", "-C", str(root), "worktree", "add", "--detach", tree, rev],
            check=True,
            capture_output=True,
        )
        try:
            sides: dict[str, list[float]] = {"before": [], "after": []}
            for r in range(rounds):
                for side, path in (("before", tree), ("after", str(root))):
                    out = subprocess.run(
                        [sys.executable, "-c", _INSERT_PROBE, endpoint, f"{side}{r}", str(n)],
                        check=True,
                        capture_output=True,
                        text=True,
                        cwd=path,
                        env={**os.environ, "PYTHONPATH": path},
                    )
                    sides[side].append(float(out.stdout.split()[-1]))
        finally:
            subprocess.run(
                ["git", "-C", str(root), "worktree", "remove", "--force", tree],
                check=False,
                capture_output=True,
            )
    before, after = statistics.median(sides["before"]), statistics.median(sides["after"])
    figure("ddb_insert_before_us", before, "us")
    figure("ddb_insert_after_us", after, "us")
    figure("ddb_insert_before_ratio", after / before, "x")


def bench_dynamodb(n: int, per_thread: int, before: str | None = None) -> None:
    with dynamodb_local() as (endpoint, client):
        if before is not None:
            bench_insert_before(endpoint, before, n)
        bench_large_delete(client)
        db = Database(ddb_store(client, "bench_core"), SCHEMA)
        client.create_table(
            TableName="bench_raw",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "B"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        seq = iter(range(10**9))

        def core_insert() -> None:
            db.mutation(lambda tx: tx.insert("items", {"list": 1, "name": "x"}))

        def raw_insert() -> None:
            i = next(seq)
            doc_id = uuid.uuid4().hex
            client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": "bench_raw",
                            "Item": {
                                "pk": {"S": f"d:{doc_id}"},
                                "sk": {"B": b"\x00"},
                                "v": {"B": b'{"list":1,"name":"x"}'},
                            },
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": "bench_raw",
                            "Item": {
                                "pk": {"S": "i:items:by_list"},
                                "sk": {"B": b"\x01" + i.to_bytes(8, "big")},
                                "v": {"B": doc_id.encode()},
                            },
                        }
                    },
                ]
            )

        core = median_us(core_insert, n)
        base = median_us(raw_insert, n)
        figure("ddb_insert_core_us", core, "us")
        figure("ddb_insert_raw_us", base, "us")
        figure("ddb_insert_ratio", core / base, "x")
        for _ in range(100):  # at least 100 documents in each range read below
            core_insert()
            raw_insert()

        def core_query() -> None:
            db.query(
                lambda tx: (
                    tx.query("items").with_index("by_list", lambda q: q.eq("list", 1)).take(100)
                )
            )

        def raw_query() -> None:
            got = client.query(
                TableName="bench_raw",
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": {"S": "i:items:by_list"}},
                Limit=100,
                ConsistentRead=True,
            )["Items"]
            keys = [{"pk": {"S": f"d:{it['v']['B'].decode()}"}, "sk": {"B": b"\x00"}} for it in got]
            docs = client.batch_get_item(
                RequestItems={"bench_raw": {"Keys": keys, "ConsistentRead": True}}
            )["Responses"]["bench_raw"]
            assert len(docs) == 100

        core = median_us(core_query, max(20, n // 4))
        base = median_us(raw_query, max(20, n // 4))
        figure("ddb_query100_core_us", core, "us")
        figure("ddb_query100_raw_us", base, "us")
        figure("ddb_query100_ratio", core / base, "x")

        names = iter(range(1000))
        bench_throughput(
            "ddb", lambda: Database(ddb_store(client, f"tp{next(names)}"), SCHEMA), per_thread
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts, under a minute")
    parser.add_argument("--no-dynamodb", action="store_true", help="skip DynamoDB Local")
    parser.add_argument(
        "--before",
        metavar="REV",
        help="also time one-document inserts by this git revision against this tree",
    )
    args = parser.parse_args()
    n = 200 if args.quick else 2000
    per_thread = 10 if args.quick else 60
    bench_items()
    bench_sqlite(n)
    bench_sqlite_committer(n, per_thread * 10)
    with tempfile.TemporaryDirectory() as d:
        names = iter(range(1000))
        bench_throughput(
            "sqlite",
            lambda: Database(SqliteStore(os.path.join(d, f"tp{next(names)}.db")), SCHEMA),
            per_thread * 4,
        )
    if not args.no_dynamodb:
        bench_dynamodb(n // 4, per_thread, args.before)


if __name__ == "__main__":
    main()
