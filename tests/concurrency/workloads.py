"""Concurrent workloads and the checker that verifies their invariants.

Each workload runs many threads of mutations against one `Database`, records
what each thread believes it committed, and returns the violations found
afterwards (an empty list means every invariant held). Used bounded by
`tests/concurrency/` and at scale by `bench/database.py`.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.database import Database, OccConflictError, Transaction
from runtime.schema import define_schema, define_table
from runtime.values import v

SCHEMA = define_schema(
    {
        "counters": define_table({"name": v.string(), "n": v.int64()}).index("by_name", ["name"]),
        "accounts": define_table({"owner": v.string(), "balance": v.int64()}).index(
            "by_owner", ["owner"]
        ),
        "users": define_table({"email": v.string()}).index("by_email", ["email"]),
        "members": define_table({"group": v.string(), "who": v.int64()}).index(
            "by_group", ["group"]
        ),
        "posts": define_table({"group": v.string(), "body": v.string()}).search_index(
            "search_body", search_field="body", filter_fields=["group"]
        ),
    }
)


@dataclass
class Report:
    name: str
    committed: int = 0
    gave_up: int = 0
    violations: list[str] = field(default_factory=list)


def run_threads(threads: int, body: Callable[[int, random.Random], None], seed: int = 1) -> None:
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            body(i, random.Random(seed * 1000 + i))
        except BaseException as e:  # surfaced below, with the thread's own traceback
            errors.append(e)

    ts = [threading.Thread(target=target, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=600)
    if errors:
        raise errors[0]


def _attempt(report: Report, lock: threading.Lock, fn: Callable[[], Any]) -> Any:
    try:
        value = fn()
    except OccConflictError:
        with lock:
            report.gave_up += 1
        return None
    with lock:
        report.committed += 1
    return value


def transfer(tx: Transaction, a: str, b: str, amount: int) -> bool:
    """Move `amount` from account `a` to `b` unless `a` has less."""
    src, dst = tx.get(a), tx.get(b)
    if src["balance"] < amount:
        return False
    tx.patch(a, {"balance": src["balance"] - amount})
    tx.patch(b, {"balance": dst["balance"] + amount})
    return True


def run_with_reader(
    threads: int,
    body: Callable[[int, random.Random], None],
    reader: Callable[[], None],
    stop: threading.Event,
) -> None:
    """The writer threads, with `reader` looping beside them until they end."""
    r = threading.Thread(target=reader)
    r.start()
    try:
        run_threads(threads, body)
    finally:
        stop.set()
        r.join(timeout=60)


def check_balances(db: Database, ids: list[str], start: int, report: Report) -> None:
    """Money conserved, no account negative."""
    balances = db.query(lambda tx: [tx.get(i)["balance"] for i in ids]).value
    if sum(balances) != start * len(ids):
        report.violations.append(f"total {sum(balances)} != {start * len(ids)}")
    report.violations += [f"account {i} negative: {b}" for i, b in enumerate(balances) if b < 0]


def counters(db: Database, threads: int, ops: int, hot: int) -> Report:
    """Increments of `hot` counters: no increment is lost."""
    report = Report("counters")
    lock = threading.Lock()
    ids = db.mutation(
        lambda tx: [tx.insert("counters", {"name": f"c{i}", "n": 0}) for i in range(hot)]
    ).value
    done = [0] * hot

    def body(t: int, rng: random.Random) -> None:
        for _ in range(ops):
            k = rng.randrange(hot)

            def inc(tx: Transaction, k: int = k) -> None:
                tx.patch(ids[k], {"n": tx.get(ids[k])["n"] + 1})

            if _attempt(report, lock, lambda: db.mutation(inc)) is not None:
                with lock:
                    done[k] += 1

    run_threads(threads, body)
    final = db.query(lambda tx: [tx.get(i)["n"] for i in ids]).value
    for k in range(hot):
        if final[k] != done[k]:
            report.violations.append(f"counter {k}: {final[k]} != {done[k]} committed increments")
    return report


def transfers(db: Database, threads: int, ops: int, accounts: int) -> Report:
    """Transfers keep the total; no balance goes negative; a reader of the
    two accounts of pair 0 never sees a half-applied transfer between them."""
    report = Report("transfers")
    lock = threading.Lock()
    start = 100
    ids = db.mutation(
        lambda tx: [
            tx.insert("accounts", {"owner": f"a{i}", "balance": start}) for i in range(accounts)
        ]
    ).value
    stop = threading.Event()

    def body(t: int, rng: random.Random) -> None:
        for _ in range(ops):
            # Even threads trade within the pair (0, 1), which the reader
            # watches; odd threads among the other accounts.
            a, b = rng.sample([0, 1] if t % 2 == 0 else range(2, accounts), 2)
            amount = rng.randrange(1, 60)
            _attempt(
                report,
                lock,
                lambda a=a, b=b, amount=amount: db.mutation(
                    lambda tx: transfer(tx, ids[a], ids[b], amount)
                ),
            )

    def reader() -> None:
        # The pair (0, 1) only trades within itself: its sum is invariant
        # at every snapshot, so a reader of the two must always see 2 * start.
        while not stop.is_set():
            try:
                pair = db.query(
                    lambda tx: tx.get(ids[0])["balance"] + tx.get(ids[1])["balance"]
                ).value
            except OccConflictError:
                continue  # the pair kept moving for every attempt: no snapshot, no claim
            if pair != 2 * start:
                with lock:
                    report.violations.append(f"reader saw a half-applied transfer: {pair}")

    run_with_reader(threads, body, reader, stop)
    check_balances(db, ids, start, report)
    return report


def unique_users(db: Database, threads: int, ops: int, emails: int) -> Report:
    """'Look up by index, insert if absent' never creates a duplicate."""
    report = Report("unique_users")
    lock = threading.Lock()

    def get_or_create(tx: Transaction, email: str) -> str:
        found = tx.query("users").with_index("by_email", lambda q: q.eq("email", email)).unique()
        if found is not None:
            return str(found["_id"])
        return tx.insert("users", {"email": email})

    def body(t: int, rng: random.Random) -> None:
        for _ in range(ops):
            email = f"u{rng.randrange(emails)}@x"
            _attempt(report, lock, lambda e=email: db.mutation(lambda tx: get_or_create(tx, e)))

    run_threads(threads, body)
    rows = db.query(lambda tx: [d["email"] for d in tx.query("users").collect()]).value
    for email in set(rows):
        if rows.count(email) > 1:
            report.violations.append(f"{email} inserted {rows.count(email)} times")
    return report


def capped_groups(db: Database, threads: int, ops: int, groups: int, cap: int) -> Report:
    """'Count a range, insert if under N' never exceeds N."""
    report = Report("capped_groups")
    lock = threading.Lock()

    def join(tx: Transaction, group: str, who: int) -> bool:
        members = (
            tx.query("members").with_index("by_group", lambda q: q.eq("group", group)).collect()
        )
        if len(members) >= cap:
            return False
        tx.insert("members", {"group": group, "who": who})
        return True

    def body(t: int, rng: random.Random) -> None:
        for i in range(ops):
            g = f"g{rng.randrange(groups)}"
            _attempt(
                report, lock, lambda g=g, i=i: db.mutation(lambda tx: join(tx, g, t * 10_000 + i))
            )

    run_threads(threads, body)
    rows = db.query(lambda tx: [d["group"] for d in tx.query("members").collect()]).value
    for g in set(rows):
        if rows.count(g) > cap:
            report.violations.append(f"{g} has {rows.count(g)} members, cap {cap}")
    return report


def capped_search(db: Database, threads: int, ops: int, groups: int, cap: int) -> Report:
    """'Count a search's results, insert a matching document if under N' never
    exceeds N: a search inside a mutation must conflict with a concurrent
    insert that it would have found (a phantom of the search)."""
    report = Report("capped_search")
    lock = threading.Lock()

    def post(tx: Transaction, group: str, who: int) -> bool:
        found = (
            tx.query("posts")
            .with_search_index(
                "search_body", lambda q: q.search("body", "entry").eq("group", group)
            )
            .collect()
        )
        if len(found) >= cap:
            return False
        tx.insert("posts", {"group": group, "body": f"entry number {who}"})
        return True

    def body(t: int, rng: random.Random) -> None:
        for i in range(ops):
            g = f"g{rng.randrange(groups)}"
            _attempt(
                report, lock, lambda g=g, i=i: db.mutation(lambda tx: post(tx, g, t * 10_000 + i))
            )

    run_threads(threads, body)
    rows = db.query(lambda tx: [d["group"] for d in tx.query("posts").collect()]).value
    for g in set(rows):
        if rows.count(g) > cap:
            report.violations.append(f"{g} has {rows.count(g)} posts, cap {cap}")
    return report


def large_transfers(
    db: Database, threads: int, ops: int, accounts: int = 200, rounds: int = 3
) -> Report:
    """Small transfers between random accounts while one thread, `rounds`
    times, moves 1 from each account of one half to each of the other half
    in ONE mutation (every account patched: past DynamoDB's 100-item
    transaction, so the large-commit path). Money is conserved, no balance
    goes negative, and a reader of every account at once never sees a
    half-applied commit (any partial rotation changes the total)."""
    report = Report("large_transfers")
    lock = threading.Lock()
    start = 100
    ids: list[str] = []
    for first in range(0, accounts, 50):  # seeded in small mutations
        ids += db.mutation(
            lambda tx, first=first: [
                tx.insert("accounts", {"owner": f"a{i}", "balance": start})
                for i in range(first, min(first + 50, accounts))
            ]
        ).value
    stop = threading.Event()
    large_done = [0]

    def rotate(tx: Transaction, round_: int) -> bool:
        half = accounts // 2
        giving = ids[:half] if round_ % 2 == 0 else ids[half:]
        taking = ids[half:] if round_ % 2 == 0 else ids[:half]
        docs = {i: tx.get(i) for i in ids}
        if any(docs[g]["balance"] < 1 for g in giving):
            return False
        for g, t in zip(giving, taking, strict=True):
            tx.patch(g, {"balance": docs[g]["balance"] - 1})
            tx.patch(t, {"balance": docs[t]["balance"] + 1})
        return True

    def body(t: int, rng: random.Random) -> None:
        if t == 0:
            for round_ in range(rounds):
                committed = _attempt(
                    report, lock, lambda r=round_: db.mutation(lambda tx: rotate(tx, r))
                )
                if committed is not None and committed.value:
                    with lock:
                        large_done[0] += 1
            return
        for _ in range(ops):
            # A pause between transfers leaves the large one windows to commit
            # in (under a steady stream of writes to its accounts, OCC would
            # starve it: it re-runs on every conflict, as Convex's does).
            time.sleep(rng.uniform(0, 0.02))
            a, b = rng.sample(range(accounts), 2)
            amount = rng.randrange(1, 30)
            _attempt(
                report,
                lock,
                lambda a=a, b=b, amount=amount: db.mutation(
                    lambda tx: transfer(tx, ids[a], ids[b], amount)
                ),
            )

    def reader() -> None:
        while not stop.is_set():
            try:
                total = db.query(lambda tx: sum(tx.get(i)["balance"] for i in ids)).value
            except OccConflictError:
                continue
            if total != start * accounts:
                with lock:
                    report.violations.append(f"reader saw a half-applied commit: total {total}")

    run_with_reader(threads, body, reader, stop)
    check_balances(db, ids, start, report)
    if large_done[0] == 0:
        report.violations.append("no large transfer committed: the workload proved nothing")
    return report


def run_all(db: Database, threads: int, ops: int) -> list[Report]:
    return [
        counters(db, threads, ops, hot=4),
        transfers(db, threads, ops, accounts=6),
        unique_users(db, threads, ops, emails=5),
        capped_groups(db, threads, ops, groups=3, cap=5),
        *(
            [capped_search(db, threads, ops, groups=3, cap=5)]
            if getattr(db.store, "search", None) is not None
            else []
        ),
        large_transfers(db, threads, ops),
    ]
