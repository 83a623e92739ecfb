"""The store-backed sync (the AWS shell's live queries) on every store:
sessions, shared queries and read-set filings kept in the store, pushes
after writes found through the filings, leases that lose no push.

The poster records what would go to API Gateway's Management API; the
Lambda handlers over the real one are tested in tests/aws."""

from __future__ import annotations

import base64
import json
import struct
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from runtime.database import Database
from runtime.functions import dedupe, load_functions
from runtime.functions.executor import Executor
from runtime.functions.platform_store import PlatformStore
from runtime.limits import MUTATION_RECORD_RETENTION_SECONDS
from runtime.store.port import Store
from runtime.sync.lease import Held, Leases
from runtime.sync.stored import StoredSync

APP = Path(__file__).resolve().parents[1] / "integration" / "apps" / "chat"


class RecordingPoster:
    def __init__(self) -> None:
        self.inbox: dict[str, list[dict[str, Any]]] = {}
        self.gone: set[str] = set()
        self.closed: list[str] = []
        self.lock = threading.Lock()

    def post(self, connection_id: str, message: dict[str, Any]) -> bool:
        if connection_id in self.gone:
            return False
        with self.lock:
            self.inbox.setdefault(connection_id, []).append(json.loads(json.dumps(message)))
        return True

    def close(self, connection_id: str) -> None:
        self.closed.append(connection_id)


class Client:
    """One connection's side: what it was sent, checked for chaining."""

    def __init__(self, sync: StoredSync, poster: RecordingPoster, conn_id: str) -> None:
        self.sync, self.poster, self.id = sync, poster, conn_id
        self.version = {"querySet": 0, "identity": 0, "ts": base64.b64encode(bytes(8)).decode()}
        self.query_set = 0
        self.values: dict[int, Any] = {}
        sync.connect(conn_id)
        self.send({"type": "Connect", "sessionId": f"session-{conn_id}", "connectionCount": 0})

    def send(self, message: dict[str, Any]) -> None:
        self.sync.receive(self.id, json.dumps(message))

    def add(self, query_id: int, path: str, args: dict[str, Any]) -> None:
        self.send(
            {
                "type": "ModifyQuerySet",
                "baseVersion": self.query_set,
                "newVersion": self.query_set + 1,
                "modifications": [
                    {"type": "Add", "queryId": query_id, "udfPath": path, "args": [args]}
                ],
            }
        )
        self.query_set += 1

    def take(self) -> list[dict[str, Any]]:
        with self.poster.lock:
            out = self.poster.inbox.pop(self.id, [])
        for m in out:
            if m["type"] == "Transition":
                assert m["startVersion"] == self.version, "Transitions must chain"
                self.version = m["endVersion"]
                for mod in m["modifications"]:
                    if mod["type"] == "QueryUpdated":
                        self.values[mod["queryId"]] = mod["value"]
        return out


@pytest.fixture
def shell(store: Store) -> tuple[StoredSync, RecordingPoster, Executor]:
    registry = load_functions(APP, namespace="_stored_chat")
    db = Database(PlatformStore(store))
    db.set_schema(registry.schema)
    executor = Executor(db, registry)
    poster = RecordingPoster()
    return StoredSync(db, executor, store, poster, holder="test"), poster, executor


def stream_worker_holding_the_query(store: Store) -> tuple[Leases, Held]:
    """Another worker's lease on the one shared query in the store."""
    (owner,) = [item.key[1] for item in store.scan("s:query", limit=10)]
    other = Leases(store, "stream-worker")
    held = other.acquire(("s:query", owner), ("s:query-mark", owner))
    assert held is not None and not isinstance(held, Exception)
    return other, held


def ts_of(encoded: str) -> int:
    return int(struct.unpack("<Q", base64.b64decode(encoded))[0])


def feed(store: Store, sync: StoredSync, position: str | None) -> str:
    """What the stream Lambda does: hand the new commits to the sync."""
    batch = store.read_changes(position, 1000)
    sync.on_changes(batch.changes)
    return batch.position


def test_subscribe_then_a_write_elsewhere_is_pushed(store: Store, shell: Any) -> None:
    sync, poster, executor = shell
    position = store.read_changes(None, 1000).position
    a = Client(sync, poster, "conn-a")
    a.add(0, "messages:list", {"channel": "c"})
    first = a.take()
    assert [m["type"] for m in first] == ["Transition"]
    assert first[0]["endVersion"]["querySet"] == 1 and a.values[0] == []
    b = Client(sync, poster, "conn-b")
    b.add(5, "messages:list", {"channel": "c"})  # the same query: one shared record
    b.take()
    runs = sync.runs
    executor.call("messages:send", {"channel": "c", "body": "hi"})
    executor.call("messages:send", {"channel": "other", "body": "elsewhere"})
    position = feed(store, sync, position)
    assert sync.runs == runs + 1  # one run for both connections; the other channel touched nothing
    a.take(), b.take()
    assert a.values[0] == ["hi"] and b.values[5] == ["hi"]
    feed(store, sync, position)  # nothing new: nothing sent
    assert a.take() == [] and b.take() == []


def test_a_mutation_over_the_socket_answers_then_shows_its_effects(
    store: Store, shell: Any
) -> None:
    sync, poster, _ = shell
    a = Client(sync, poster, "conn-m")
    a.add(0, "messages:list", {"channel": "m"})
    a.take()
    watcher = Client(sync, poster, "conn-w")
    watcher.add(1, "messages:list", {"channel": "m"})
    watcher.take()
    mutation = {"type": "Mutation", "requestId": 7, "udfPath": "messages:send"}
    a.send({**mutation, "args": [{"channel": "m", "body": "mine"}]})
    response, transition = a.take()
    assert response["type"] == "MutationResponse" and response["success"] is True
    assert ts_of(transition["endVersion"]["ts"]) >= ts_of(response["ts"])
    assert transition["modifications"][0]["value"] == ["mine"]
    watcher.take()  # pushed by the socket's handler, without the feed
    assert watcher.values[1] == ["mine"]
    # Re-sent after a reconnect (same session, same request id): applied once.
    a.send({**mutation, "args": [{"channel": "m", "body": "mine"}]})
    again = a.take()
    assert again[0]["success"] is True
    assert a.values[0] == ["mine"]


def test_errors_and_removal(store: Store, shell: Any) -> None:
    sync, poster, _ = shell
    a = Client(sync, poster, "conn-e")
    a.add(0, "messages:boom", {})
    a.add(1, "messages:nope", {})
    out = a.take()
    failed = [mod for m in out for mod in m["modifications"] if mod["type"] == "QueryFailed"]
    assert {f["queryId"] for f in failed} == {0, 1}
    a.send(
        {
            "type": "ModifyQuerySet",
            "baseVersion": 2,
            "newVersion": 3,
            "modifications": [{"type": "Remove", "queryId": 0}],
        }
    )
    (removed,) = a.take()
    assert removed["modifications"] == [{"type": "QueryRemoved", "queryId": 0}]
    a.send({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": []})
    (fatal,) = a.take()
    assert fatal["type"] == "FatalError" and poster.closed == ["conn-e"]
    # The connection is forgotten: a later message is refused.
    a.send({"type": "Event", "eventType": "x", "event": None})
    assert a.take()[0] == {"type": "FatalError", "error": "unknown connection"}


def test_a_gone_connection_is_cleaned_up(store: Store, shell: Any) -> None:
    sync, poster, executor = shell
    position = store.read_changes(None, 1000).position
    a = Client(sync, poster, "conn-gone")
    a.add(0, "messages:list", {"channel": "g"})
    a.take()
    poster.gone.add("conn-gone")
    executor.call("messages:send", {"channel": "g", "body": "x"})
    position = feed(store, sync, position)
    assert store.get([("s:conn", b"conn-gone")]) == [None]
    # Its query has no subscribers left: the next write touching it deletes it.
    executor.call("messages:send", {"channel": "g", "body": "y"})
    runs = sync.runs
    feed(store, sync, position)
    assert sync.runs == runs
    assert not [k for k in store.scan("s:query", limit=10)]


def test_disconnect_drops_subscriptions(store: Store, shell: Any) -> None:
    sync, poster, _ = shell
    a = Client(sync, poster, "conn-d")
    a.add(0, "messages:list", {"channel": "d"})
    a.take()
    (owner,) = [item.key[1] for item in store.scan("s:query", limit=10)]
    assert sync.subscribers(owner) == {"conn-d"}
    sync.disconnect("conn-d")
    assert sync.subscribers(owner) == set()
    assert store.get([("s:conn", b"conn-d")]) == [None]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_marks_lose_no_work_under_contention(store: Store) -> None:
    """Threads bump a counter's "wanted" value and ask for the work; the
    lease holder copies wanted to done. When all are finished, done must
    equal the last wanted: a mark left while the holder worked was seen."""
    leases = Leases(store, "t")
    key, mark = ("s:test", b"rec"), ("s:test-mark", b"rec")
    wanted = [0]
    lock = threading.Lock()

    def work() -> None:
        held = leases.acquire_or_mark(key, mark)
        while held is not None:
            with lock:
                held.data["done"] = wanted[0]
            if leases.release(held):
                return

    created = leases.acquire(key, mark, create={"done": 0})
    assert created is not None and not isinstance(created, Exception)
    assert leases.release(created)

    def bump() -> None:
        for _ in range(20):
            with lock:
                wanted[0] += 1
            work()

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    record = json.loads(store.get([key])[0].value)  # type: ignore[union-attr]
    assert record["done"] == wanted[0] == 80 and "lease" not in record


@pytest.mark.parametrize("backend", ["sqlite", "dynamodb_local"])
def test_the_transition_after_a_mutation_waits_for_a_busy_refresh(store: Store, shell: Any) -> None:
    """A stream worker is refreshing the query (from reads older than the
    commit) when a mutation over the socket lands: the Transition after
    the MutationResponse must still carry the mutation's effects."""
    sync, poster, _ = shell
    a = Client(sync, poster, "conn-busy")
    a.add(0, "messages:list", {"channel": "busy"})
    a.take()
    other, held = stream_worker_holding_the_query(store)
    timer = threading.Timer(0.3, lambda: other.release(held))  # its stale result kept
    timer.start()
    try:
        a.send(
            {
                "type": "Mutation",
                "requestId": 1,
                "udfPath": "messages:send",
                "args": [{"channel": "busy", "body": "now"}],
            }
        )
    finally:
        timer.join()
    response, transition = a.take()[:2]
    assert response["type"] == "MutationResponse"
    assert transition["modifications"][0]["value"] == ["now"]


@pytest.mark.parametrize("backend", ["sqlite", "dynamodb_local"])
def test_a_message_that_overtook_the_one_before_it_waits_for_it(store: Store, shell: Any) -> None:
    """Concurrent Lambdas may run a connection's messages out of order: the
    second ModifyQuerySet, handled first, waits for the first."""
    sync, poster, _ = shell
    a = Client(sync, poster, "conn-order")

    def modify(base: int, query_id: int) -> dict[str, Any]:
        add = {"type": "Add", "queryId": query_id, "udfPath": "messages:list",
               "args": [{"channel": f"o{query_id}"}]}  # fmt: skip
        return {"type": "ModifyQuerySet", "baseVersion": base, "newVersion": base + 1,
                "modifications": [add]}  # fmt: skip

    second = threading.Thread(target=a.send, args=(modify(1, 1),))
    second.start()
    time.sleep(0.2)
    a.send(modify(0, 0))
    second.join(10)
    out = a.take()
    assert not [m for m in out if m["type"] == "FatalError"]
    assert a.version["querySet"] == 2 and a.values == {0: [], 1: []}


@pytest.mark.parametrize("backend", ["sqlite", "dynamodb_local"])
def test_a_mutation_that_overtook_an_earlier_request_waits_for_it(store: Store, shell: Any) -> None:
    """Requests 1 and 2 handled before request 0 (concurrent Lambdas): they
    wait, and the writes land in the order the client sent them."""
    sync, poster, _ = shell
    a = Client(sync, poster, "conn-requests")
    a.add(0, "messages:list", {"channel": "seq"})

    def mutation(request_id: int) -> dict[str, Any]:
        return {"type": "Mutation", "requestId": request_id, "udfPath": "messages:send",
                "args": [{"channel": "seq", "body": f"m{request_id}"}]}  # fmt: skip

    a.send(mutation(0))
    later = [threading.Thread(target=a.send, args=(mutation(i),)) for i in (3, 2)]
    for t in later:
        t.start()
        time.sleep(0.2)
    a.send(mutation(1))
    for t in later:
        t.join(10)
    responses = [m for m in a.take() if m["type"] == "MutationResponse"]
    assert [r["requestId"] for r in responses] == [0, 1, 2, 3]
    assert a.values[0] == ["m0", "m1", "m2", "m3"]


class CountingStore:
    """The store under test, counting the requests made through it."""

    def __init__(self, store: Store) -> None:
        self.inner, self.calls = store, 0
        self.by_name: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name in {"get", "versions", "scan", "transact"}:

            def counted(*args: Any, **kwargs: Any) -> Any:
                self.calls += 1
                self.by_name[name] = self.by_name.get(name, 0) + 1
                return attr(*args, **kwargs)

            return counted
        return attr


def counted_shell(store: Store, clock: Any = time.time_ns) -> tuple[StoredSync, Any, Any]:
    counting = CountingStore(store)
    registry = load_functions(APP, namespace="_stored_chat")
    db = Database(PlatformStore(counting))
    db.set_schema(registry.schema)
    poster = RecordingPoster()
    sync = StoredSync(db, Executor(db, registry), counting, poster, holder="t", clock=clock)
    return sync, poster, counting


def send(client: Client, request_id: int, channel: str, body: str) -> None:
    client.send({"type": "Mutation", "requestId": request_id, "udfPath": "messages:send",
                 "args": [{"channel": channel, "body": body}]})  # fmt: skip


def test_a_socket_mutation_leaves_other_connections_to_the_feed(store: Store) -> None:
    """The writer is answered without re-running anyone else's query: the
    watcher's refresh and push come from the change feed, once."""
    sync, poster, counting = counted_shell(store)
    position = store.read_changes(None, 1000).position
    watcher = Client(sync, poster, "conn-watch")
    watcher.add(0, "messages:latest", {"channel": "f", "n": 1.0})
    watcher.take()
    writer = Client(sync, poster, "conn-write")
    send(writer, 1, "f", "warm")  # the first sweep of the session
    writer.take()
    position = feed(store, sync, position)
    watcher.take()
    runs, counting.calls = sync.runs, 0
    send(writer, 2, "f", "hello")
    response, transition = writer.take()
    assert response["type"] == "MutationResponse" and response["success"] is True
    assert transition["type"] == "Transition"
    assert sync.runs == runs and watcher.take() == []
    # The lease taken and given back, the request record read, the commit.
    assert counting.calls <= 5
    feed(store, sync, position)
    assert sync.runs == runs + 1
    watcher.take()
    assert watcher.values[0] == ["hello"]


def test_a_socket_mutation_reruns_only_its_own_touched_queries(store: Store) -> None:
    sync, poster, _ = counted_shell(store)
    a = Client(sync, poster, "conn-own")
    a.add(0, "messages:list", {"channel": "mine"})
    a.add(1, "messages:list", {"channel": "untouched"})
    a.add(2, "messages:latest", {"channel": "mine", "n": 1.0})  # a bounded range
    send(a, 9, "untouched-too", "y")
    a.take()
    sharer = Client(sync, poster, "conn-sharer")
    sharer.add(3, "messages:list", {"channel": "mine"})  # shares query 0's run
    sharer.take()
    runs = sync.runs
    send(a, 1, "mine", "x")
    response, transition = a.take()
    assert sync.runs == runs + 2  # queries 0 and 2, found from their own filings
    assert response["success"] is True
    assert {m["queryId"]: m["value"] for m in transition["modifications"]} == {0: ["x"], 2: ["x"]}
    sharer.take()
    assert sharer.values[3] == ["x"]  # the shared result changed: pushed at once


@pytest.mark.parametrize("backend", ["sqlite"])
def test_socket_mutations_sweep_expired_records_once_a_minute_when_few(store: Store) -> None:
    offset = [0]
    sync, poster, _ = counted_shell(store, clock=lambda: time.time_ns() + offset[0])
    db = Database(PlatformStore(store))
    retention = int(MUTATION_RECORD_RETENTION_SECONDS * 1e9)
    a = Client(sync, poster, "conn-sweep")
    send(a, 1, "s", "first")  # sweeps: nothing expired, so not again for a minute

    def expired(i: int) -> None:
        key = dedupe.request_key("session-conn-sweep", 100 + i)
        old = time.time_ns() + offset[0] - retention - 10**9
        db.mutation(lambda tx: dedupe.record(tx, key, b"f" * 16, 1.0, now=old))

    expired(0)
    send(a, 2, "s", "second")
    assert store.get([dedupe.request_key("session-conn-sweep", 100)]) != [None]
    offset[0] = 61 * 10**9
    expired(1)
    send(a, 3, "s", "third")
    for i in (100, 101):
        assert store.get([dedupe.request_key("session-conn-sweep", i)]) == [None]


def test_a_query_run_for_the_stored_sync_is_validated_once_by_its_caller(store: Store) -> None:
    """`validate=False` (the refresh validates after filing): the run reads
    no versions at its end, and its read set still shows a later write."""
    counting = CountingStore(store)
    registry = load_functions(APP, namespace="_stored_chat")
    db = Database(PlatformStore(counting))
    db.set_schema(registry.schema)
    executor = Executor(db, registry)
    executor.call("messages:send", {"channel": "v", "body": "a"})
    counting.by_name.clear()
    call = executor.query_at(db, "messages:list", {"channel": "v"}, None, validate=False)
    assert call.value == ["a"] and call.reads is not None
    assert counting.by_name.get("versions", 0) == 0
    assert db.still_valid(call.reads)
    executor.call("messages:send", {"channel": "v", "body": "b"})
    assert not db.still_valid(call.reads)
    counting.by_name.clear()
    executor.query_at(db, "messages:list", {"channel": "v"}, None)
    assert counting.by_name.get("versions", 0) == 1  # validated by the query itself


class SlowPoster(RecordingPoster):
    """Posts (Management API calls) counting how many are in flight at
    once; posts to `failing` connections raise.

    Once `expect_overlap` is called, a post lasts until a second one is
    in flight (or `OVERLAP_WAIT` seconds): pushes that run at once always
    overlap here, however slowly a loaded machine starts them, and pushes
    made one at a time never do."""

    OVERLAP_WAIT = 2.0

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = self.most_in_flight = 0
        self.failing: set[str] = set()
        self.overlapped = threading.Event()
        self.overlapped.set()  # no waiting until expect_overlap

    def expect_overlap(self) -> None:
        self.most_in_flight = 0
        self.overlapped.clear()

    def post(self, connection_id: str, message: dict[str, Any]) -> bool:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            if self.in_flight > 1:
                self.overlapped.set()
        try:
            self.overlapped.wait(self.OVERLAP_WAIT)
            if connection_id in self.failing:
                raise RuntimeError(f"posting to {connection_id} failed")
            return super().post(connection_id, message)
        finally:
            with self.lock:
                self.in_flight -= 1


@pytest.mark.parametrize("backend", ["sqlite", "dynamodb_local"])
def test_pushes_go_out_several_at_once_and_a_failed_one_spares_the_rest(store: Store) -> None:
    registry = load_functions(APP, namespace="_stored_chat")
    db = Database(PlatformStore(store))
    db.set_schema(registry.schema)
    executor = Executor(db, registry)
    poster = SlowPoster()
    sync = StoredSync(db, executor, store, poster, holder="test")
    position = store.read_changes(None, 1000).position
    clients = [Client(sync, poster, f"conn-p{i}") for i in range(6)]
    for c in clients:
        c.add(0, "messages:list", {"channel": "many"})
        c.take()
    poster.expect_overlap()
    poster.failing = {"conn-p3"}
    executor.call("messages:send", {"channel": "many", "body": "all"})
    with pytest.raises(RuntimeError, match="conn-p3"):
        feed(store, sync, position)
    assert poster.most_in_flight > 1
    for c in clients:
        c.take()
    assert [c.values[0] for c in clients] == [["all"]] * 3 + [[]] + [["all"]] * 2
    # The failed push gave its lease back: the next one need not wait for it
    # to expire, and it starts from what the client had.
    poster.failing = set()
    sync.push("conn-p3")
    clients[3].take()
    assert clients[3].values[0] == ["all"]


@pytest.mark.parametrize("backend", ["sqlite", "dynamodb_local"])
def test_a_socket_mutation_waits_for_a_refresh_whose_filings_are_not_recorded_yet(
    store: Store, shell: Any
) -> None:
    """Another worker is re-running the writer's query and has filed reads
    its record does not list yet: the writer cannot tell from the record
    whether the commit touches it, so it waits for the lease and runs it."""
    sync, poster, _ = shell
    a = Client(sync, poster, "conn-unlisted")
    a.add(0, "messages:list", {"channel": "unlisted"})
    a.take()
    other, held = stream_worker_holding_the_query(store)
    filed = held.data["filed"]
    held.data["filed"] = []  # its new filings are in the store, not yet in the record
    other.save(held)

    def finish() -> None:  # the record lists them as it is released
        held.data["filed"] = filed
        while not other.release(held):
            pass

    timer = threading.Timer(0.3, finish)
    timer.start()
    try:
        send(a, 1, "unlisted", "seen")
    finally:
        timer.join()
    response, transition = a.take()[:2]
    assert response["type"] == "MutationResponse"
    assert transition["modifications"][0]["value"] == ["seen"]


def test_a_stored_result_older_than_a_write_is_not_handed_to_a_new_subscriber(
    store: Store, shell: Any
) -> None:
    """The shared result waits for the change feed; a subscriber joining
    before the feed caught up (here: the writer itself, right after its
    mutation) gets the query run again, not the result from before."""
    sync, poster, _ = shell
    a = Client(sync, poster, "conn-old-result")
    a.add(0, "messages:list", {"channel": "lag"})
    a.take()
    a.send({"type": "ModifyQuerySet", "baseVersion": 1, "newVersion": 2,
            "modifications": [{"type": "Remove", "queryId": 0}]})  # fmt: skip
    a.query_set = 2
    a.take()
    send(a, 1, "lag", "after")  # nobody subscribed: no refresh until the feed
    a.take()
    runs = sync.runs
    a.add(1, "messages:list", {"channel": "lag"})  # the same query, its record kept
    a.take()
    assert a.values[1] == ["after"] and sync.runs == runs + 1
    b = Client(sync, poster, "conn-joins-current")
    b.add(0, "messages:list", {"channel": "lag"})  # now current: shared, not run
    b.take()
    assert b.values[0] == ["after"] and sync.runs == runs + 1


@pytest.mark.parametrize("backend", ["sqlite", "dynamodb_local"])
def test_a_new_subscriber_waits_for_a_refresh_in_progress(store: Store, shell: Any) -> None:
    """A stream worker is re-running the query from reads older than the
    client's own write when the client subscribes to it: the client's first
    result is not the one that worker saves, but a run after its write."""
    sync, poster, _ = shell
    a = Client(sync, poster, "conn-joins-busy")
    a.add(0, "messages:list", {"channel": "joinbusy"})
    a.send({"type": "ModifyQuerySet", "baseVersion": 1, "newVersion": 2,
            "modifications": [{"type": "Remove", "queryId": 0}]})  # fmt: skip
    a.query_set = 2
    a.take()
    other, held = stream_worker_holding_the_query(store)
    send(a, 1, "joinbusy", "mine")
    a.take()

    def finish() -> None:  # saves its stale result; works again while marked
        while not other.release(held):
            pass

    timer = threading.Timer(0.3, finish)
    timer.start()
    try:
        a.add(1, "messages:list", {"channel": "joinbusy"})
    finally:
        timer.join()
    a.take()
    assert a.values[1] == ["mine"]
