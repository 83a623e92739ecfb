"""The per-connection state machine on its own: versions, acknowledgements,
and a state that survives a JSON round trip (the AWS shell stores it)."""

from __future__ import annotations

import json

from runtime.sync.messages import parse_client_message
from runtime.sync.session import Fatal, QueryResult, QuerySetChanged, SyncSession


def msg(**fields: object) -> object:
    return parse_client_message(json.dumps(fields))


def add(base: int, *ids: int) -> object:
    mods = [
        {
            "type": "Add",
            "queryId": i,
            "udfPath": "m:q",
            "args": [{"n": {"$integer": "AQAAAAAAAAA="}}],
        }
        for i in ids
    ]
    return msg(type="ModifyQuerySet", baseVersion=base, newVersion=base + 1, modifications=mods)


def result(v: str) -> QueryResult:
    return QueryResult(True, v, digest=v.encode())


def test_acknowledges_a_query_set_only_with_all_its_results() -> None:
    s = SyncSession()
    assert s.receive(add(0, 1, 2)) == [QuerySetChanged((1, 2))]
    early = s.transition({1: result("a")}, ts=5)  # query 2 has no result yet
    assert (
        early is not None and early["endVersion"]["querySet"] == 0 and early["modifications"] == []
    )
    t = s.transition({1: result("a"), 2: result("b")}, ts=5)
    assert t is not None and t["endVersion"]["querySet"] == 1
    assert [m["queryId"] for m in t["modifications"]] == [1, 2]
    # Unchanged results are not sent again; a changed one is.
    assert s.transition({1: result("a"), 2: result("b")}, ts=6) is not None  # ts moved
    t = s.transition({1: result("a"), 2: result("c")}, ts=6)
    assert t is not None and [m["queryId"] for m in t["modifications"]] == [2]


def test_versions_chain_and_bad_bases_are_fatal() -> None:
    s = SyncSession()
    s.receive(add(0, 1))
    first = s.transition({1: result("a")}, ts=1)
    s.receive(
        msg(
            type="ModifyQuerySet",
            baseVersion=1,
            newVersion=2,
            modifications=[{"type": "Remove", "queryId": 1}],
        )
    )
    second = s.transition({}, ts=2)
    assert first is not None and second is not None
    assert second["startVersion"] == first["endVersion"]
    assert second["modifications"] == [{"type": "QueryRemoved", "queryId": 1}]
    (fatal,) = s.receive(add(0, 3))
    assert isinstance(fatal, Fatal) and "does not follow" in fatal.reason


def test_state_round_trips_through_json() -> None:
    s = SyncSession()
    s.receive(msg(type="Connect", sessionId="abc", connectionCount=0))
    s.receive(add(0, 1, 2))
    s.transition({1: result("a"), 2: result("b")}, ts=9)
    s.receive(
        msg(
            type="ModifyQuerySet",
            baseVersion=1,
            newVersion=2,
            modifications=[{"type": "Remove", "queryId": 2}],
        )
    )
    copy = SyncSession.from_json(json.loads(json.dumps(s.to_json())))
    assert copy == s
    assert copy.queries[1].args == {"n": 1}


def test_large_transitions_are_split_and_still_chain() -> None:
    from runtime.sync.session import MAX_MESSAGE_BYTES

    s = SyncSession()
    s.receive(add(0, *range(10)))
    big = {i: QueryResult(True, "x" * 30_000 + str(i), digest=b"a%d" % i) for i in range(10)}
    first = s.messages(big, ts=1)  # the acknowledging Transition: it carries every new result
    assert len(first) >= 1 and first[-1]["endVersion"]["querySet"] == 1
    s.receive(add(1, 10))
    changed = {i: QueryResult(True, "y" * 30_000 + str(i), digest=b"b%d" % i) for i in range(10)}
    changed[10] = QueryResult(True, "new", digest=b"new")
    parts = s.messages(changed, ts=2)
    assert len(parts) > 1
    assert all(len(json.dumps(p, separators=(",", ":"))) <= MAX_MESSAGE_BYTES for p in parts)
    version = first[-1]["endVersion"]
    for p in parts:
        assert p["startVersion"] == version
        version = p["endVersion"]
    assert [p["endVersion"] for p in parts[:-1]] == [parts[0]["startVersion"]] * (len(parts) - 1)
    assert (
        parts[-1]["endVersion"]["querySet"] == 2
        and parts[-1]["endVersion"]["ts"] != parts[0]["startVersion"]["ts"]
    )
    assert {
        "type": "QueryUpdated",
        "queryId": 10,
        "value": "new",
        "logLines": [],
        "journal": None,
    } in parts[-1]["modifications"]
    assert sorted(m["queryId"] for p in parts for m in p["modifications"]) == list(range(11))
