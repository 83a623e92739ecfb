"""The fan-out path's per-connection work: a Transition is encoded once
(measured for the size limit, then sent as that text), and the hub's many
sends of one step reach the event loop in one wake-up."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from runtime.http.sync_ws import _Mailbox
from runtime.sync.messages import parse_client_message
from runtime.sync.session import QueryResult, SyncSession
from runtime.sync.wire_text import message_text


def test_a_transition_is_encoded_once_for_its_size_and_its_sending() -> None:
    s = SyncSession()
    s.receive(
        parse_client_message(
            json.dumps(
                {
                    "type": "ModifyQuerySet",
                    "baseVersion": 0,
                    "newVersion": 1,
                    "modifications": [
                        {"type": "Add", "queryId": 1, "udfPath": "m:list", "args": [{}]}
                    ],
                }
            )
        )
    )
    (message,) = s.messages({1: QueryResult(True, ["a", "b"], digest=b"ab")}, ts=5)
    text = message_text(message)
    assert message_text(message) is text  # the text written for the size check, reused
    assert json.loads(text) == json.loads(json.dumps(dict(message)))
    assert json.loads(text)["modifications"][0]["value"] == ["a", "b"]


def test_calls_posted_from_a_thread_run_in_order_in_one_loop_wake_up() -> None:
    loop = asyncio.new_event_loop()
    wakes = 0
    real = loop.call_soon_threadsafe

    def counting(callback: Any, *args: Any) -> Any:
        nonlocal wakes
        wakes += 1
        return real(callback, *args)

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
    mailbox = _Mailbox(loop)
    got: list[int] = []
    sender = threading.Thread(target=lambda: [mailbox.post(got.append, i) for i in range(1000)])
    sender.start()
    sender.join()
    try:
        loop.run_until_complete(asyncio.sleep(0))
        assert got == list(range(1000))
        assert wakes == 1
        mailbox.post(got.append, 1000)  # the next batch wakes the loop again
        loop.run_until_complete(asyncio.sleep(0))
        assert got[-1] == 1000 and wakes == 2
    finally:
        loop.close()


def _watching(query_id: int) -> SyncSession:
    s = SyncSession()
    add = {
        "type": "ModifyQuerySet",
        "baseVersion": 0,
        "newVersion": 1,
        "modifications": [{"type": "Add", "queryId": query_id, "udfPath": "m:list", "args": [{}]}],
    }
    s.receive(parse_client_message(json.dumps(add)))
    return s


def test_sessions_at_the_same_versions_share_one_transition_text() -> None:
    """A thousand sockets watching one query get the same Transition: it is
    written once per result, and a session elsewhere gets its own, correct."""
    shared = QueryResult(True, ["a"], digest=b"a")
    first, second, other_id, later = _watching(0), _watching(0), _watching(7), _watching(0)
    later.messages({0: QueryResult(True, ["x"], digest=b"x")}, ts=3)  # already moved on
    texts = [
        message_text(m)
        for s in (first, second, other_id, later)
        for m in s.messages({0: shared, 7: shared}, ts=5)
    ]
    assert texts[0] is texts[1]  # one text, two sockets
    for s_text in texts:
        assert json.loads(s_text)["modifications"][0]["value"] == ["a"]
    assert json.loads(texts[2])["modifications"][0]["queryId"] == 7
    assert json.loads(texts[3])["startVersion"] != json.loads(texts[0])["startVersion"]
    assert texts[3] is not texts[0]
