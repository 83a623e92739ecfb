"""Client messages the sync protocol must refuse cleanly (a ProtocolError,
which the shells turn into a FatalError), and the per-connection cap on
subscriptions; the pure parts, no server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.limits import SYNC_ID_MAX, SYNC_QUERIES_PER_CONNECTION
from runtime.sync.journal import Journals
from runtime.sync.messages import ModifyQuerySet, Mutation, ProtocolError, parse_client_message
from runtime.sync.session import Fatal, QuerySetChanged, SyncSession


def mutation(request_id: Any = 0, args: Any = None) -> str:
    return json.dumps(
        {"type": "Mutation", "requestId": request_id, "udfPath": "m:f", "args": [args or {}]}
    )


def modify(base: Any) -> str:
    return json.dumps({"type": "ModifyQuerySet", "baseVersion": base, "newVersion": 1,
                       "modifications": []})  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [
        modify(1e999).replace("Infinity", "1e999"),  # json.dumps writes Infinity
        modify(float("nan")),  # NaN
        modify(-1),
        modify(2**64),
        modify(1.5),
        modify("0"),
        mutation(-1),
        mutation(2**64),
        mutation(SYNC_ID_MAX + 1),
        mutation(float("inf")),
    ],
)
def test_out_of_range_ids_and_versions_are_refused(text: str) -> None:
    with pytest.raises(ProtocolError, match="must be an integer from 0 to"):
        parse_client_message(text)


def test_the_largest_id_is_accepted() -> None:
    parsed = parse_client_message(mutation(SYNC_ID_MAX))
    assert isinstance(parsed, Mutation) and parsed.request_id == SYNC_ID_MAX
    assert isinstance(parse_client_message(modify(0.0)), ModifyQuerySet)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[" * 5000 + "]" * 5000, "deeper than"),
        (
            '{"type": "Mutation", "requestId": 0, "udfPath": "m:f", "args": [{"a": '
            + "[" * 3000
            + "]" * 3000
            + "}]}",
            "deeper than",
        ),
        (mutation().replace('"args": [{}]', '"args": [{"n": ' + "9" * 5000 + "}]"), "digits"),
        (mutation().replace('"args": [{}]', '"args": [{"s": "\\ud800"}]'), "lone surrogate"),
        (mutation().replace('"m:f"', '"m:\\udfff"'), "lone surrogate"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_hostile_json_is_refused(text: str | bytes, says: str) -> None:
    with pytest.raises(ProtocolError, match=says):
        parse_client_message(text)


@pytest.mark.parametrize("session_id", ["", "x" * 129, "has space", "caf\u00e9"])
def test_session_ids_are_short_printable_ascii(session_id: str) -> None:
    text = json.dumps({"type": "Connect", "sessionId": session_id, "connectionCount": 0})
    with pytest.raises(ProtocolError, match="sessionId"):
        parse_client_message(text)


def test_the_subscription_cap_is_the_sessions() -> None:
    assert SyncSession().max_queries == SYNC_QUERIES_PER_CONNECTION
    session = SyncSession(max_queries=2)
    adds = [{"type": "Add", "queryId": i, "udfPath": "m:q", "args": [{}]} for i in range(3)]
    two = {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": adds[:2]}
    assert isinstance(session.receive(parse_client_message(json.dumps(two)))[0], QuerySetChanged)
    three = {"type": "ModifyQuerySet", "baseVersion": 1, "newVersion": 2, "modifications": adds[2:]}
    (fatal,) = session.receive(parse_client_message(json.dumps(three)))
    assert isinstance(fatal, Fatal) and "too many subscriptions" in fatal.reason


def test_journals_verify_only_what_this_key_signed_for_this_query() -> None:
    journals = Journals(b"k" * 32)
    signed = journals.sign("m:q", {"a": 1.0}, ["cursor", None])
    assert signed is not None
    assert journals.verify("m:q", {"a": 1.0}, signed) == ["cursor", None]
    assert journals.verify("m:q", {"a": 2.0}, signed) is None  # another query's
    assert journals.verify("m:other", {"a": 1.0}, signed) is None
    assert Journals(b"o" * 32).verify("m:q", {"a": 1.0}, signed) is None  # another key
    forged = json.dumps({"endCursors": ["cursor", None]})
    assert journals.verify("m:q", {"a": 1.0}, forged) is None
    altered = signed.replace("cursor", "cursos")
    assert journals.verify("m:q", {"a": 1.0}, altered) is None
    for junk in ["", "null", "[]", "{", '{"endCursors": 5, "mac": "x"}']:
        assert journals.verify("m:q", {"a": 1.0}, junk) is None
    assert journals.sign("m:q", {}, None) is None and journals.sign("m:q", {}, []) is None
