"""The sync hub in-process, a step at a time: which queries a write re-runs,
what each connection is sent, and in what order."""

from __future__ import annotations

import base64
import contextlib
import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.database import Database
from runtime.functions import load_functions
from runtime.functions.executor import Executor
from runtime.store.sqlite import SqliteStore
from runtime.sync.hub import SyncHub

APP = Path(__file__).resolve().parents[1] / "integration" / "apps" / "chat"


class Client:
    """One connection: what the hub sent it, and helpers to speak the protocol."""

    def __init__(self, hub: SyncHub) -> None:
        self.hub = hub
        self.inbox: list[dict[str, Any]] = []
        self.closed: str | None = None
        self.id = hub.connect(self.inbox.append, self._close)
        self.query_set = 0
        self.version = {"querySet": 0, "identity": 0, "ts": base64.b64encode(bytes(8)).decode()}
        self.send({"type": "Connect", "sessionId": f"s{self.id}", "connectionCount": 0})

    def _close(self, reason: str) -> None:
        self.closed = reason

    def send(self, message: dict[str, Any]) -> None:
        self.hub.receive(self.id, json.dumps(message))

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
        out, self.inbox[:] = list(self.inbox), []
        for m in out:
            if m["type"] == "Transition":
                assert m["startVersion"] == self.version, "versions must chain"
                self.version = m["endVersion"]
        return out


def ts_of(encoded: str) -> int:
    return int(struct.unpack("<Q", base64.b64decode(encoded))[0])


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[SyncHub, Executor]]:
    store = SqliteStore(str(tmp_path / "db.sqlite3"))
    registry = load_functions(APP, namespace="_hub_chat")
    db = Database(store)
    db.set_schema(registry.schema)
    executor = Executor(db, registry)
    hub = SyncHub(db, executor, store.snapshot)
    hub.start()  # the loop thread also runs steps; tests call step() to be sure
    yield hub, executor
    hub.stop()
    store.close()


def values(messages: list[dict[str, Any]]) -> dict[int, Any]:
    return {
        m["queryId"]: m.get("value", m.get("errorMessage"))
        for t in messages
        if t["type"] == "Transition"
        for m in t["modifications"]
    }


def test_a_write_reruns_only_the_queries_it_touches(setup: tuple[SyncHub, Executor]) -> None:
    hub, ex = setup
    a, b = Client(hub), Client(hub)
    a.add(1, "messages:list", {"channel": "red"})
    b.add(1, "messages:list", {"channel": "blue"})
    hub.step()
    assert values(a.take()) == {1: []} and values(b.take()) == {1: []}
    runs = hub.runs
    ex.call("messages:send", {"channel": "red", "body": "hi"})
    hub.step()
    assert hub.runs == runs + 1  # only the red channel's query
    assert values(a.take()) == {1: ["hi"]} and b.take() == []
    ex.call("messages:send", {"channel": "green", "body": "nobody listens"})
    runs = hub.runs
    hub.step()
    assert hub.runs == runs  # no subscription covers green
    assert a.take() == [] and b.take() == []


def test_queries_with_the_same_arguments_share_one_run(setup: tuple[SyncHub, Executor]) -> None:
    hub, ex = setup
    clients = [Client(hub) for _ in range(20)]
    for c in clients:
        c.add(7, "messages:list", {"channel": "all"})
    hub.step()
    runs = hub.runs
    ex.call("messages:send", {"channel": "all", "body": "x"})
    hub.step()
    assert hub.runs == runs + 1
    assert all(values(c.take()) == {7: ["x"]} for c in clients)


def test_point_reads_and_truncated_ranges_are_precise(setup: tuple[SyncHub, Executor]) -> None:
    hub, ex = setup
    one = ex.call("messages:new_counter", {}).value
    two = ex.call("messages:new_counter", {}).value
    for i in range(5):
        ex.call("messages:send", {"channel": "c", "body": str(i)})
    watcher = Client(hub)
    watcher.add(1, "messages:counter", {"id": one})
    watcher.add(2, "messages:latest", {"channel": "c", "n": 2.0})
    hub.step()
    assert values(watcher.take()) == {1: 0.0, 2: ["4", "3"]}
    runs = hub.runs
    ex.call("messages:bump", {"id": two})  # another document: not read
    hub.step()
    assert hub.runs == runs
    ex.call("messages:bump", {"id": one})
    hub.step()
    assert hub.runs == runs + 1 and values(watcher.take()) == {1: 1.0}
    ex.call("messages:send", {"channel": "c", "body": "5"})  # enters the top 2
    hub.step()
    assert values(watcher.take()) == {2: ["5", "4"]}


def test_mutation_response_comes_before_a_transition_that_includes_it(
    setup: tuple[SyncHub, Executor],
) -> None:
    hub, _ = setup
    c = Client(hub)
    c.add(1, "messages:list", {"channel": "m"})
    hub.step()
    c.take()
    c.send(
        {
            "type": "Mutation",
            "requestId": 0,
            "udfPath": "messages:send",
            "args": [{"channel": "m", "body": "b"}],
        }
    )
    deadline = time.monotonic() + 30  # a bound, not a measurement
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not any(m["type"] == "Transition" for m in seen):
        hub.step()
        seen += c.take()
        time.sleep(0.002)
    kinds = [m["type"] for m in seen]
    assert kinds == ["MutationResponse", "Transition"]
    response, transition = seen
    assert response["success"] is True
    assert ts_of(transition["endVersion"]["ts"]) >= ts_of(response["ts"])
    assert values([transition]) == {1: ["b"]}


def test_failures_and_bad_messages(setup: tuple[SyncHub, Executor]) -> None:
    hub, _ = setup
    c = Client(hub)
    c.add(1, "messages:boom", {})
    c.add(2, "messages:hidden", {})
    c.add(3, "messages:nope", {})
    hub.step()
    out = values(c.take())
    assert (
        "query failed" in out[1] and "Could not find public function" in out[2] and "nope" in out[3]
    )
    bystander = Client(hub)
    bystander.add(1, "messages:list", {"channel": "x"})
    for bad, expected in [
        ("not json", "not JSON"),
        (json.dumps({"type": "Shout"}), "unknown message type"),
        (
            json.dumps(
                {"type": "ModifyQuerySet", "baseVersion": 9, "newVersion": 10, "modifications": []}
            ),
            "does not follow",
        ),
    ]:
        victim = Client(hub)
        hub.receive(victim.id, bad)
        fatal = [m for m in victim.take() if m["type"] == "FatalError"]
        assert fatal and expected in fatal[0]["error"] and victim.closed is not None
    hub.step()
    assert values(bystander.take()) == {1: []}


def test_too_many_subscriptions_end_the_connection(setup: tuple[SyncHub, Executor]) -> None:
    hub, _ = setup
    c = Client(hub)
    mods = [
        {"type": "Add", "queryId": i, "udfPath": "messages:list", "args": [{"channel": str(i)}]}
        for i in range(10_000)
    ]
    c.send({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": mods})
    fatal = [m for m in c.take() if m["type"] == "FatalError"]
    assert fatal and "too many subscriptions" in fatal[0]["error"]


def test_user_tokens_get_auth_error(setup: tuple[SyncHub, Executor]) -> None:
    hub, _ = setup
    c = Client(hub)
    c.send({"type": "Authenticate", "baseVersion": 0, "tokenType": "User", "value": "x.y.z"})
    assert [m["type"] for m in c.take()] == ["AuthError"]
    c.send({"type": "Authenticate", "baseVersion": 0, "tokenType": "None"})
    hub.step()
    (t,) = c.take()
    assert t["endVersion"]["identity"] == 1


def test_a_resent_mutation_is_applied_once(setup: tuple[SyncHub, Executor]) -> None:
    hub, ex = setup

    def send_and_wait(client: Client) -> dict[str, Any]:
        client.send(
            {
                "type": "Mutation",
                "requestId": 3,
                "udfPath": "messages:send",
                "args": [{"channel": "once", "body": "x"}],
            }
        )
        for _ in range(400):
            hub.step()
            got = [m for m in client.take() if m["type"] == "MutationResponse"]
            if got:
                return got[0]
        raise AssertionError("no MutationResponse")

    first = Client(hub)
    first.send({"type": "Connect", "sessionId": "same-session", "connectionCount": 0})
    original = send_and_wait(first)
    hub.disconnect(first.id)
    # The client reconnects with the same session and re-sends the request.
    again = Client(hub)
    again.send({"type": "Connect", "sessionId": "same-session", "connectionCount": 1})
    replay = send_and_wait(again)
    assert original["success"] and replay["success"]
    assert replay["result"] == original["result"]  # the same document id
    assert ex.call("messages:list", {"channel": "once"}).value == ["x"]
    # Another session with the same request id is another mutation.
    other = Client(hub)
    other.send({"type": "Connect", "sessionId": "other-session", "connectionCount": 0})
    send_and_wait(other)
    assert ex.call("messages:list", {"channel": "once"}).value == ["x", "x"]


def test_pages_keep_their_boundaries_as_documents_come_and_go(
    setup: tuple[SyncHub, Executor],
) -> None:
    hub, ex = setup
    for rank in (10.0, 20.0, 30.0, 40.0, 50.0):
        ex.call("ranked:add", {"rank": rank})
    c = Client(hub)

    def ranks(result: dict[str, Any]) -> list[float]:
        return [d["rank"] for d in result["page"]]

    pages: dict[int, dict[str, Any]] = {}
    journals: dict[int, Any] = {}

    def settle() -> None:
        hub.step()
        for t in c.take():
            for m in t.get("modifications", []):
                pages[m["queryId"]] = m["value"]
                journals[m["queryId"]] = m["journal"]

    c.add(1, "ranked:page", {"paginationOpts": {"numItems": 2.0, "cursor": None}})
    settle()
    c.add(
        2,
        "ranked:page",
        {"paginationOpts": {"numItems": 2.0, "cursor": pages[1]["continueCursor"]}},
    )
    settle()
    c.add(
        3,
        "ranked:page",
        {"paginationOpts": {"numItems": 2.0, "cursor": pages[2]["continueCursor"]}},
    )
    settle()
    assert [ranks(pages[i]) for i in (1, 2, 3)] == [[10, 20], [30, 40], [50]]
    assert [pages[i]["isDone"] for i in (1, 2, 3)] == [False, False, True]
    assert json.loads(journals[1])["endCursors"] == [pages[1]["continueCursor"]]
    # The last page ends at the end cursor: it takes in every later insert.
    assert json.loads(journals[3])["endCursors"] == [pages[3]["continueCursor"]]

    def all_pages() -> list[list[float]]:
        settle()
        return [ranks(pages[i]) for i in (1, 2, 3)]

    ex.call("ranked:add", {"rank": 15.0})
    assert all_pages() == [[10, 15, 20], [30, 40], [50]]  # page 1 grows; page 2 does not shift
    ex.call("ranked:add", {"rank": 35.0})
    assert all_pages() == [[10, 15, 20], [30, 35, 40], [50]]
    ex.call("ranked:remove", {"rank": 20.0})  # the document at page 1's boundary
    assert all_pages() == [[10, 15], [30, 35, 40], [50]]
    ex.call("ranked:add", {"rank": 25.0})  # between the old boundary and page 2
    assert all_pages() == [[10, 15, 25], [30, 35, 40], [50]] or all_pages() == [
        [10, 15],
        [25, 30, 35, 40],
        [50],
    ]
    ex.call("ranked:add", {"rank": 60.0})
    assert all_pages()[2] == [50, 60]
    seen = [r for p in all_pages() for r in p]
    assert seen == [10, 15, 25, 30, 35, 40, 50, 60]  # no gap, no overlap


def test_with_nobody_watching_a_step_takes_no_snapshot(tmp_path: Path) -> None:
    """HTTP writes with no socket open: the hub skips its steps (no read
    transaction per commit); a watcher that comes later still sees them all
    and is pushed the writes after it."""
    store = SqliteStore(str(tmp_path / "db.sqlite3"))
    registry = load_functions(APP, namespace="_hub_idle")
    db = Database(store)
    db.set_schema(registry.schema)
    executor = Executor(db, registry)
    taken = [0]

    def snapshot() -> Any:
        taken[0] += 1
        return store.snapshot()

    hub = SyncHub(db, executor, snapshot)
    with store.snapshot() as snap:  # no loop thread: steps by hand
        hub._position, hub._ts = snap.position, snap.ts
    try:
        for i in range(5):
            executor.call("messages:send", {"channel": "late", "body": str(i)})
            hub.step()
        assert taken[0] == 0
        watcher = Client(hub)
        watcher.add(1, "messages:list", {"channel": "late"})
        hub.step()
        assert values(watcher.take()) == {1: ["0", "1", "2", "3", "4"]}
        executor.call("messages:send", {"channel": "late", "body": "5"})
        hub.step()
        assert values(watcher.take()) == {1: ["0", "1", "2", "3", "4", "5"]}
        assert taken[0] == 2
    finally:
        store.close()


def test_a_steps_pushes_are_sent_inside_one_hold(setup: tuple[SyncHub, Executor]) -> None:
    """Every message a step pushes goes out inside the step's `hold_sends`
    (the socket layer hands the batch to its loop when the hold ends)."""
    hub, executor = setup
    hub.stop()  # steps by hand only: the holds counted below are this test's
    holding = False
    holds = 0
    sent: list[tuple[bool, dict[str, Any]]] = []

    @contextlib.contextmanager
    def hold() -> Iterator[None]:
        nonlocal holding, holds
        holding, holds = True, holds + 1
        try:
            yield
        finally:
            holding = False

    hub.hold_sends = hold
    add = {"type": "Add", "queryId": 0, "udfPath": "messages:list", "args": [{"channel": "held"}]}
    for c in range(3):
        conn = hub.connect(lambda m: sent.append((holding, m)), lambda reason: None)
        hub.receive(
            conn, json.dumps({"type": "Connect", "sessionId": f"h{c}", "connectionCount": 0})
        )
        hub.receive(conn, json.dumps({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                                      "modifications": [add]}))  # fmt: skip
    hub.step()
    executor.call("messages:send", {"channel": "held", "body": "hi"})
    sent.clear()
    before = holds
    hub.step()
    assert holds == before + 1
    assert len(sent) == 3 and all(held for held, _ in sent)
    assert all(values([m])[0] == ["hi"] for _, m in sent)
