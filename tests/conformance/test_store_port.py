"""The storage port's contract, on every adapter."""

from __future__ import annotations

import pytest

from runtime.store.port import (
    Bump,
    Check,
    Delete,
    Put,
    Store,
    StoreError,
    TransactionConflict,
)


def test_get_put_versions(store: Store) -> None:
    a, b = ("p", b"a"), ("p", b"b")
    assert store.get([a, b]) == [None, None]
    store.transact([Put(a, b"1", expect=0)])
    store.transact([Put(a, b"2", expect=1), Put(b, b"x")])
    got = store.get([b, a, ("q", b"a")])
    assert [(i.value, i.version) if i else None for i in got] == [(b"x", 1), (b"2", 2), None]


def test_failed_expectation_applies_nothing_and_names_keys(store: Store) -> None:
    a, b, c = ("p", b"a"), ("p", b"b"), ("p", b"c")
    store.transact([Put(a, b"1"), Put(b, b"1")])
    with pytest.raises(TransactionConflict) as err:
        store.transact([Put(a, b"2", expect=1), Check(b, 5), Put(c, b"new")])
    assert err.value.keys == [b]
    assert [i.value if i else None for i in store.get([a, b, c])] == [b"1", b"1", None]
    with pytest.raises(TransactionConflict):
        store.transact([Put(a, b"2", expect=0)])
    with pytest.raises(TransactionConflict):
        store.transact([Delete(c, expect=1)])
    store.transact([Check(c, 0), Check(a, 1)])


def test_bump_and_delete(store: Store) -> None:
    v = ("v", b"\x01")
    store.transact([Bump(v)])
    store.transact([Bump(v, expect=1)])
    item = store.get([v])[0]
    assert item is not None and item.version == 2 and item.value == b""
    with pytest.raises(TransactionConflict):
        store.transact([Bump(v, expect=1)])
    store.transact([Delete(v, expect=2)])
    assert store.get([v]) == [None]
    store.transact([Delete(("v", b"absent"))])


def test_one_op_per_key_and_cap(store: Store) -> None:
    k = ("p", b"k")
    with pytest.raises(ValueError):
        store.transact([Check(k, 0), Put(k, b"x")])
    cap = store.max_transaction_items
    if cap is not None:  # None: any size (tests/conformance/test_large_mutations.py)
        with pytest.raises(StoreError):
            store.transact([Bump(("p", bytes([i]))) for i in range(cap + 1)])


def test_scan_bounds_order_resume(store: Store) -> None:
    keys = [
        b"",
        b"\x00",
        b"\x00\x00",
        b"\x01",
        b"a",
        b"a\x00",
        b"a\xff",
        b"b",
        b"\xff",
        b"\xff\xff",
    ]
    store.transact([Put(("s", k), k) for k in keys] + [Put(("sx", b"a"), b"other")])
    assert [i.key[1] for i in store.scan("s", limit=100)] == keys
    assert [i.key[1] for i in store.scan("s", reverse=True, limit=100)] == keys[::-1]
    assert [i.key[1] for i in store.scan("s", b"a", b"b", limit=100)] == [b"a", b"a\x00", b"a\xff"]
    assert [i.key[1] for i in store.scan("s", b"a", b"b", reverse=True, limit=2)] == [
        b"a\xff",
        b"a\x00",
    ]
    assert store.scan("s", b"b", b"a") == []
    seen: list[bytes] = []
    lo = b""
    while True:
        page = store.scan("s", lo, None, limit=3)
        seen += [i.key[1] for i in page]
        if len(page) < 3:
            break
        lo = page[-1].key[1] + b"\x00"
    assert seen == keys
    seen, hi = [], None
    while True:
        page = store.scan("s", b"", hi, reverse=True, limit=4)
        seen += [i.key[1] for i in page]
        if len(page) < 4:
            break
        hi = page[-1].key[1]
    assert seen == keys[::-1]
    assert [i.value for i in store.scan("sx")] == [b"other"]


def test_commit_ts_increases(store: Store) -> None:
    ts = [store.transact([Bump(("t", b"x"))]).ts for _ in range(5)]
    assert ts == sorted(set(ts))


def test_large_values(store: Store) -> None:
    big = bytes(range(256)) * 3000  # 768 KB: chunked on DynamoDB
    k = ("d", b"")
    store.transact([Put(k, big, expect=0, feed=True)])
    item = store.get([k])[0]
    assert item is not None and item.value == big
    smaller = b"y" * 400_000
    store.transact([Put(k, smaller, expect=1, feed=True)])
    assert store.get([k])[0].value == smaller  # type: ignore[union-attr]
    assert [i.value for i in store.scan("d")] == [smaller]


def test_change_feed(store: Store) -> None:
    a, b = ("d:a", b""), ("d:b", b"")
    store.transact([Put(a, b"1", feed=True), Put(("i", b"x"), b"not in the feed")])
    first = store.read_changes(None)
    assert [(c.key, c.old_value, c.new_value) for c in first.changes] == [(a, None, b"1")]
    store.transact([Put(a, b"2", expect=1, feed=True), Put(b, b"b", feed=True)])
    store.transact([Delete(a, expect=2, feed=True)])
    rest = store.read_changes(first.position)
    got = sorted((c.key, c.old_value, c.new_value, c.ts) for c in rest.changes)
    assert [g[:3] for g in got] == [(a, b"1", b"2"), (a, b"2", None), (b, None, b"b")]
    per_a = [c for c in rest.changes if c.key == a]
    assert [c.new_value for c in per_a] == [b"2", None]  # commit order per key
    assert store.read_changes(rest.position).changes == []
