"""The sync hub in-process against hostile or greedy clients: reused request
ids, made-up journals, bad messages, production log redaction, the change
log's window, the connection cap, slow actions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.database import Database
from runtime.functions import dedupe, load_functions
from runtime.functions.executor import Executor
from runtime.functions.logs import install as install_logs
from runtime.store.port import FeedTrimmed
from runtime.store.sqlite import SqliteStore
from runtime.sync.hub import SyncHub, TooManyConnections
from runtime.sync.messages import ProtocolError
from tests.support.sync_messages import forged_journal_adds
from tests.unit.test_sync_hub import Client, values

APPS = Path(__file__).resolve().parents[1] / "integration" / "apps"
CHAT, NOTES = APPS / "chat", APPS / "sync_hardening"


def make_hub(
    tmp_path: Path, app: Path, *, prod: bool = False, log: int = 100_000, **kw: Any
) -> tuple[SyncHub, Executor, SqliteStore]:
    store = SqliteStore(str(tmp_path / "db.sqlite3"), change_log_entries=log)
    registry = load_functions(app, namespace=f"_hard_{app.name}")
    db = Database(store)
    db.set_schema(registry.schema)
    executor = Executor(db, registry, prod=prod)
    return SyncHub(db, executor, store.snapshot, **kw), executor, store


@pytest.fixture
def chat(tmp_path: Path) -> Iterator[tuple[SyncHub, Executor, SqliteStore]]:
    hub, _, store = made = make_hub(tmp_path, CHAT)
    hub.start()
    yield made
    hub.stop()
    store.close()


def wait_for(client: Client, hub: SyncHub, kind: str) -> list[dict[str, Any]]:
    """Step the hub until `client` was sent a message of `kind` (bounded)."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while not any(m["type"] == kind for m in seen):
        assert time.monotonic() < deadline, f"no {kind} came; got {seen}"
        hub.step()
        seen += client.take()
        time.sleep(0.002)
    return seen


def send_mutation(c: Client, request_id: int, path: str, args: dict[str, Any]) -> None:
    c.send({"type": "Mutation", "requestId": request_id, "udfPath": path, "args": [args]})


def reconnect(hub: SyncHub, session_id: str) -> Client:
    c = Client(hub)
    c.send({"type": "Connect", "sessionId": session_id, "connectionCount": 1})
    return c


# ---- mutation dedupe -----------------------------------------------------------


def test_a_reused_request_id_answers_only_the_same_mutation(chat: Any) -> None:
    hub, ex, _ = chat
    a = Client(hub)
    send_mutation(a, 3, "messages:send", {"channel": "d", "body": "first"})
    (first,) = [m for m in wait_for(a, hub, "MutationResponse") if m["type"] == "MutationResponse"]
    assert first["success"] is True
    session = f"s{a.id}"
    # The same mutation re-sent after a reconnect: the recorded result, applied once.
    again = reconnect(hub, session)
    send_mutation(again, 3, "messages:send", {"channel": "d", "body": "first"})
    replay = [m for m in wait_for(again, hub, "MutationResponse") if m["type"] != "Transition"]
    assert replay[0]["success"] is True and replay[0]["result"] == first["result"]
    # Another mutation under the same (session, request id): refused, not applied.
    other = reconnect(hub, session)
    send_mutation(other, 3, "messages:send", {"channel": "d", "body": "second"})
    (refused,) = [m for m in wait_for(other, hub, "MutationResponse") if m["type"] != "Transition"]
    assert refused["success"] is False and "REQUEST_ID_REUSED" in refused["result"]
    send_mutation(other, 3, "messages:new_counter", {})
    (refused,) = [m for m in wait_for(other, hub, "MutationResponse") if m["type"] != "Transition"]
    assert refused["success"] is False and "REQUEST_ID_REUSED" in refused["result"]
    assert ex.call("messages:list", {"channel": "d"}).value == ["first"]
    # Another session may use the same request id for anything.
    b = Client(hub)
    send_mutation(b, 3, "messages:send", {"channel": "d", "body": "b's"})
    (ok,) = [m for m in wait_for(b, hub, "MutationResponse") if m["type"] != "Transition"]
    assert ok["success"] is True


def settled(check: Callable[[], bool]) -> None:
    """Wait (bounded) until `check` holds."""
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, "never settled"
        time.sleep(0.005)


def _records(store: SqliteStore) -> list[str]:
    rows = store._conn.execute(  # what the store holds: no API lists partitions
        "SELECT pk FROM items WHERE pk LIKE 's:mutreq%'"
    ).fetchall()
    return sorted(pk for (pk,) in rows)


def test_mutation_records_expire_and_are_swept_as_new_ones_are_written(chat: Any) -> None:
    hub, ex, store = chat
    db = ex.database
    old = time.time_ns() - int(dedupe.MUTATION_RECORD_RETENTION_SECONDS * 1e9) - 10**9
    session = "sweep-session"
    for i in range(6):  # six expired records of one session
        key = dedupe.request_key(session, i)
        db.mutation(lambda tx, key=key: dedupe.record(tx, key, b"f" * 16, 1.0, now=old))
    assert len(_records(store)) == 12  # a record and a time entry each
    fresh = reconnect(hub, session)
    send_mutation(fresh, 100, "messages:send", {"channel": "s", "body": "x"})
    wait_for(fresh, hub, "MutationResponse")
    # The new record swept up to MUTATION_RECORD_SWEEP expired ones (just
    # after the response went out).
    settled(lambda: len(_records(store)) == 2 * (6 - dedupe.MUTATION_RECORD_SWEEP) + 2)
    send_mutation(fresh, 101, "messages:send", {"channel": "s", "body": "y"})
    wait_for(fresh, hub, "MutationResponse")
    settled(lambda: len(_records(store)) == 2 * 2)  # the two live records and their entries
    assert dedupe.sweep(db.store, session) == 0  # nothing expired is left
    later = time.time_ns() + int(dedupe.MUTATION_RECORD_RETENTION_SECONDS * 1e9) + 10**9
    assert dedupe.sweep(db.store, session, now=later) == 2 and _records(store) == []


# ---- journals --------------------------------------------------------------------


def test_made_up_journals_share_one_run(chat: Any) -> None:
    hub, ex, _ = chat
    c = Client(hub)
    c.send(forged_journal_adds(20, "j"))
    hub.step()
    assert len(values(c.take())) == 20
    runs = hub.runs
    ex.call("messages:send", {"channel": "j", "body": "one"})
    hub.step()
    assert hub.runs == runs + 1  # one run for all twenty, not twenty
    assert values(c.take()) == {i: ["one"] for i in range(20)}


def test_a_journal_the_server_issued_keeps_its_pages(chat: Any) -> None:
    hub, ex, _ = chat
    for rank in (1.0, 2.0, 3.0):
        ex.call("ranked:add", {"rank": rank})
    opts = {"paginationOpts": {"numItems": 2.0, "cursor": None}}
    c = Client(hub)
    c.add(0, "ranked:page", opts)
    hub.step()
    (mod,) = [m for t in c.take() for m in t["modifications"]]
    journal = mod["journal"]
    assert journal and [d["rank"] for d in mod["value"]["page"]] == [1.0, 2.0]
    ex.call("ranked:add", {"rank": 1.5})  # lands inside the first page
    again = Client(hub)  # a reconnect re-sends the query with its journal
    add = {"type": "Add", "queryId": 0, "udfPath": "ranked:page", "args": [opts],
           "journal": journal}  # fmt: skip
    again.send(
        {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": [add]}
    )
    hub.step()
    (mod,) = [m for t in again.take() for m in t["modifications"]]
    # The page kept its end: the new document joins it (3 items, not 2).
    assert [d["rank"] for d in mod["value"]["page"]] == [1.0, 1.5, 2.0]


# ---- bad input -----------------------------------------------------------------


BAD = [
    '{"type":"ModifyQuerySet","baseVersion":1e999,"newVersion":1,"modifications":[]}',
    '{"type":"ModifyQuerySet","baseVersion":NaN,"newVersion":1,"modifications":[]}',
    '{"type":"Mutation","requestId":-1,"udfPath":"messages:send","args":[{}]}',
    '{"type":"Mutation","requestId":18446744073709551616,"udfPath":"messages:send","args":[{}]}',
    "[" * 10_000 + "]" * 10_000,
    '{"type":"Mutation","requestId":1,"udfPath":"messages:send","args":[{"channel":'
    + "1" * 5000
    + "}]}",
    '{"type":"Mutation","requestId":1,"udfPath":"messages:send","args":[{"channel":"\\ud800","body":"x"}]}',
    '{"type":"ModifyQuerySet","baseVersion":0,"newVersion":1,"modifications":[{"type":"Add",'
    '"queryId":0,"udfPath":"messages:list","args":[{"channel":"\\udc00"}]}]}',
]


@pytest.mark.parametrize("text", BAD)
def test_bad_input_gets_a_fatal_error_and_others_are_served(chat: Any, text: str) -> None:
    hub, ex, _ = chat
    bystander = Client(hub)
    bystander.add(1, "messages:list", {"channel": "by"})
    hub.step()
    bystander.take()
    victim = Client(hub)
    hub.receive(victim.id, text)
    out = victim.take()
    assert [m["type"] for m in out] == ["FatalError"] and victim.closed is not None
    ex.call("messages:send", {"channel": "by", "body": "still here"})
    hub.step()
    assert values(bystander.take()) == {1: ["still here"]}


def test_a_failure_inside_the_hub_ends_only_that_connection(chat: Any) -> None:
    hub, _, _ = chat
    victim = Client(hub)

    def broken(*_: Any) -> None:
        raise RuntimeError("a bug")

    hub._sync_subscriptions = broken  # type: ignore[method-assign]  # a bug, simulated
    victim.add(0, "messages:list", {"channel": "x"})
    (fatal,) = victim.take()
    assert fatal["type"] == "FatalError" and "RuntimeError" in fatal["error"]
    assert victim.closed is not None and hub.connections == 0


# ---- production ---------------------------------------------------------------------


@pytest.mark.parametrize("prod", [False, True])
def test_prod_keeps_log_lines_off_the_socket(tmp_path: Path, prod: bool) -> None:
    install_logs()  # over the stdout pytest swapped in for this test
    hub, _, store = make_hub(tmp_path, NOTES, prod=prod)
    hub.start()
    try:
        c = Client(hub)
        c.add(0, "notes:listed", {"topic": "t"})
        send_mutation(c, 0, "notes:add", {"topic": "t", "body": "b"})
        c.send({"type": "Action", "requestId": 1, "udfPath": "notes:shout", "args": [{}]})
        seen = wait_for(c, hub, "ActionResponse")
        seen += (
            wait_for(c, hub, "MutationResponse")
            if not any(m["type"] == "MutationResponse" for m in seen)
            else []
        )
        lines = [m["logLines"] for m in seen if m["type"] != "Transition"]
        lines += [mod["logLines"] for m in seen if m["type"] == "Transition"
                  for mod in m["modifications"]]  # fmt: skip
        assert len(lines) >= 3
        if prod:
            assert all(got == [] for got in lines)
        else:
            assert all(got for got in lines)
    finally:
        hub.stop()
        store.close()


# ---- the change log's window ----------------------------------------------------


def test_a_hub_that_fell_behind_the_change_log_resyncs(tmp_path: Path) -> None:
    hub, ex, store = make_hub(tmp_path, CHAT, log=5)  # started below: steps by hand
    with store.snapshot() as snap:
        hub._position, hub._ts = snap.position, snap.ts
    c = Client(hub)
    c.add(1, "messages:list", {"channel": "w"})
    hub.step()
    assert values(c.take()) == {1: []}
    behind = hub._position
    for i in range(20):  # more than the log keeps, between two steps
        ex.call("messages:send", {"channel": "w", "body": str(i)})
    with pytest.raises(FeedTrimmed):
        store.read_changes(behind)
    hub.step()
    assert hub.resyncs == 1
    assert values(c.take()) == {1: [str(i) for i in range(20)]}
    ex.call("messages:send", {"channel": "w", "body": "after"})
    hub.step()
    assert hub.resyncs == 1 and values(c.take())[1][-1] == "after"
    store.close()


def test_the_change_log_is_trimmed(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "log.sqlite3"), change_log_entries=10)
    from runtime.store.port import Put

    for i in range(100):
        store.transact([Put(("doc", str(i).encode()), b"v", feed=True)])
    (rows,) = store._conn.execute("SELECT count(*) FROM changes").fetchone()
    assert 10 <= rows <= 11 + 1  # bounded: the window and its slack
    tail = store.read_changes(None)  # None: the oldest still held
    assert [c.key[1] for c in tail.changes][-1] == b"99" and len(tail.changes) == rows
    assert store.read_changes(tail.position).changes == []
    with pytest.raises(FeedTrimmed, match="resync"):
        store.read_changes("3")
    store.close()


# ---- greedy clients ---------------------------------------------------------------


def test_the_connection_cap(tmp_path: Path) -> None:
    hub, _, store = make_hub(tmp_path, CHAT, max_connections=2)
    a, b = Client(hub), Client(hub)
    with pytest.raises(TooManyConnections) as refused:
        Client(hub)
    assert isinstance(refused.value, ProtocolError) and "SYNC_CONNECTIONS" in refused.value.message
    hub.disconnect(a.id)
    Client(hub)  # a place came free
    assert hub.connections == 2 and b.closed is None
    store.close()


def test_slow_actions_do_not_hold_up_mutations(tmp_path: Path) -> None:
    hub, _, store = make_hub(tmp_path, NOTES)
    hub.start()
    gate = tmp_path / "gates"
    gate.mkdir()
    try:
        greedy = Client(hub)
        n = 16 + 4  # the action pool's size and more
        for i in range(n):
            greedy.send({"type": "Action", "requestId": i, "udfPath": "notes:wait_for_gate",
                         "args": [{"folder": str(gate), "name": str(i)}]})  # fmt: skip
        deadline = time.monotonic() + 60
        while len(list(gate.glob("started-*"))) < 16:  # the pool is full of sleepers
            assert time.monotonic() < deadline
            time.sleep(0.01)
        other = Client(hub)
        send_mutation(other, 0, "notes:add", {"topic": "t", "body": "not starved"})
        (response,) = [
            m for m in wait_for(other, hub, "MutationResponse") if m["type"] != "Transition"
        ]
        assert response["success"] is True
        # ... while every action still sleeps: none has answered.
        assert not [m for m in greedy.inbox if m["type"] == "ActionResponse"]
    finally:
        (gate / "gate").write_text("")
    deadline = time.monotonic() + 60
    while len([m for m in greedy.inbox if m["type"] == "ActionResponse"]) < n:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    hub.stop()
    store.close()


# ---- a mutation's response comes before the Transition that shows it ---------------------


class _SlowToAnswer(Executor):
    """The real executor; a socket mutation's call returns (after its commit)
    only when the test says, so a hub step can run in between."""

    def __init__(self, inner: Executor) -> None:
        super().__init__(inner.database, inner.registry)
        self.committed = threading.Event()
        self.answer = threading.Event()

    def call(self, *args: Any, **kwargs: Any) -> Any:
        result = super().call(*args, **kwargs)
        if kwargs.get("kind") == "mutation":
            self.committed.set()
            assert self.answer.wait(30)
        return result


def test_no_transition_shows_a_mutation_before_its_response(tmp_path: Path) -> None:
    hub, inner, store = make_hub(tmp_path, CHAT)
    slow = _SlowToAnswer(inner)
    hub._executor = slow
    try:
        c = Client(hub)
        c.add(1, "messages:list", {"channel": "o"})
        hub.step()
        c.take()
        send_mutation(c, 0, "messages:send", {"channel": "o", "body": "b"})
        assert slow.committed.wait(30)
        hub.step()  # the commit is in the feed; the response is not out yet
        assert [m["type"] for m in c.take()] == []
        slow.answer.set()
        seen = wait_for(c, hub, "Transition")
        assert [m["type"] for m in seen] == ["MutationResponse", "Transition"]
        assert values([seen[1]]) == {1: ["b"]}
    finally:
        slow.answer.set()
        hub.stop()
        store.close()
