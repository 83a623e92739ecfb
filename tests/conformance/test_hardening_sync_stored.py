"""The store-backed sync (the AWS shell) against hostile clients, on every
store: reused request ids, made-up journals, bad messages, production log
redaction, and the trimming of mutation records."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from runtime.database import Database
from runtime.functions import dedupe, load_functions
from runtime.functions.executor import Executor
from runtime.functions.logs import install as install_logs
from runtime.functions.platform_store import PlatformStore
from runtime.store.port import Store
from runtime.sync.stored import StoredSync
from tests.conformance.test_stored_sync import Client, RecordingPoster, feed
from tests.support.sync_messages import forged_journal_adds

APPS = Path(__file__).resolve().parents[1] / "integration" / "apps"


def make(
    store: Store, app: str, *, prod: bool = False
) -> tuple[StoredSync, RecordingPoster, Executor]:
    registry = load_functions(APPS / app, namespace=f"_hard_stored_{app}")
    db = Database(PlatformStore(store))
    db.set_schema(registry.schema)
    executor = Executor(db, registry, prod=prod)
    poster = RecordingPoster()
    return StoredSync(db, executor, store, poster, holder="test"), poster, executor


def responses(client: Client) -> list[dict[str, Any]]:
    return [m for m in client.take() if m["type"] != "Transition"]


def test_a_reused_request_id_answers_only_the_same_mutation(store: Store) -> None:
    sync, poster, executor = make(store, "chat")
    a = Client(sync, poster, "conn-r")
    mutation = {"type": "Mutation", "requestId": 4, "udfPath": "messages:send"}
    a.send({**mutation, "args": [{"channel": "r", "body": "first"}]})
    (first,) = responses(a)
    a.send({**mutation, "args": [{"channel": "r", "body": "first"}]})  # re-sent: replayed
    (again,) = responses(a)
    assert first["success"] is again["success"] is True and again["result"] == first["result"]
    a.send({**mutation, "args": [{"channel": "r", "body": "second"}]})  # another mutation
    (refused,) = responses(a)
    assert refused["success"] is False and "REQUEST_ID_REUSED" in refused["result"]
    assert executor.call("messages:list", {"channel": "r"}).value == ["first"]


def test_made_up_journals_share_one_run(store: Store) -> None:
    sync, poster, executor = make(store, "chat")
    position = store.read_changes(None, 1000).position
    a = Client(sync, poster, "conn-j")
    a.send(forged_journal_adds(20, "j"))
    a.take()
    assert len(a.values) == 20
    runs = sync.runs
    executor.call("messages:send", {"channel": "j", "body": "one"})
    feed(store, sync, position)
    assert sync.runs == runs + 1  # one run for all twenty
    a.take()
    assert a.values == {i: ["one"] for i in range(20)}


@pytest.mark.parametrize("backend", ["sqlite", "moto"])
def test_bad_input_gets_a_fatal_error_and_others_are_served(store: Store) -> None:
    sync, poster, executor = make(store, "chat")
    position = store.read_changes(None, 1000).position
    bystander = Client(sync, poster, "conn-by")
    bystander.add(0, "messages:list", {"channel": "by"})
    bystander.take()
    bad = [
        '{"type":"ModifyQuerySet","baseVersion":1e999,"newVersion":1,"modifications":[]}',
        '{"type":"ModifyQuerySet","baseVersion":NaN,"newVersion":1,"modifications":[]}',
        '{"type":"Mutation","requestId":-1,"udfPath":"messages:send","args":[{}]}',
        '{"type":"Mutation","requestId":18446744073709551616,"udfPath":"m:f","args":[{}]}',
        "[" * 10_000 + "]" * 10_000,
        '{"type":"Mutation","requestId":1,"udfPath":"m:f","args":[{"n":' + "1" * 5000 + "}]}",
        '{"type":"Mutation","requestId":1,"udfPath":"messages:send",'
        '"args":[{"channel":"\\ud800","body":"x"}]}',
    ]
    for i, text in enumerate(bad):
        victim = Client(sync, poster, f"conn-bad-{i}")
        sync.receive(victim.id, text)
        out = victim.take()
        assert [m["type"] for m in out] == ["FatalError"], text[:60]
        assert victim.id in poster.closed
    executor.call("messages:send", {"channel": "by", "body": "still here"})
    feed(store, sync, position)
    bystander.take()
    assert bystander.values == {0: ["still here"]}


@pytest.mark.parametrize("backend", ["sqlite", "moto"])
@pytest.mark.parametrize("prod", [False, True])
def test_prod_keeps_log_lines_off_the_socket(store: Store, prod: bool) -> None:
    install_logs()  # over the stdout pytest swapped in for this test
    sync, poster, _ = make(store, "sync_hardening", prod=prod)
    a = Client(sync, poster, "conn-p")
    a.add(0, "notes:listed", {"topic": "t"})
    a.send({"type": "Mutation", "requestId": 0, "udfPath": "notes:add",
            "args": [{"topic": "t", "body": "b"}]})  # fmt: skip
    a.send({"type": "Action", "requestId": 1, "udfPath": "notes:shout", "args": [{}]})
    out = a.take()
    lines = [m["logLines"] for m in out if m["type"] != "Transition"]
    lines += [mod["logLines"] for m in out if m["type"] == "Transition"
              for mod in m["modifications"]]  # fmt: skip
    assert len(lines) >= 4  # the query twice, the mutation, the action
    assert all(got == [] for got in lines) if prod else all(got for got in lines)


def test_mutation_records_expire_and_are_swept(store: Store) -> None:
    sync, poster, executor = make(store, "chat")
    db = executor.database
    retention = int(dedupe.MUTATION_RECORD_RETENTION_SECONDS * 1e9)
    old = time.time_ns() - retention - 10**9
    for i in range(6):
        key = dedupe.request_key("conn-old", i)
        db.mutation(lambda tx, key=key: dedupe.record(tx, key, b"f" * 16, 1.0, now=old))
    a = Client(sync, poster, "conn-old")  # its session id is "session-conn-old"
    a.send({"type": "Connect", "sessionId": "conn-old", "connectionCount": 1})
    for request_id in (10, 11):
        a.send({"type": "Mutation", "requestId": request_id, "udfPath": "messages:send",
                "args": [{"channel": "o", "body": str(request_id)}]})  # fmt: skip
    later = time.time_ns() + retention + 10**9
    # The two socket mutations swept the six expired records; the two new
    # ones are live until their own retention is over.
    assert dedupe.sweep(store, "conn-old") == 0
    assert dedupe.sweep(store, "conn-old", now=later) == 2
    assert dedupe.sweep(store, "conn-old", now=later) == 0
    for i in (0, 5, 10, 11):
        assert store.get([dedupe.request_key("conn-old", i)]) == [None]
