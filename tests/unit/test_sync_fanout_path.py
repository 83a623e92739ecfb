"""The fan-out path's per-connection work: a Transition is encoded once
(measured for the size limit, then sent as that text), and the hub's many
sends of one step reach the event loop in one wake-up."""

from __future__ import annotations

import asyncio
import json
import random
import threading
from typing import Any

from runtime.http.sync_ws import _Mailbox, held_posts
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


class _CountingLoop:
    """An event loop that counts its wake-ups from other threads
    (`call_soon_threadsafe`): what a mailbox costs its loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.wakes = 0
        real = self.loop.call_soon_threadsafe

        def counting(callback: Any, *args: Any) -> Any:
            self.wakes += 1
            return real(callback, *args)

        self.loop.call_soon_threadsafe = counting  # type: ignore[method-assign]

    def run_posted(self) -> None:
        self.loop.run_until_complete(asyncio.sleep(0))


def test_calls_posted_from_a_thread_run_in_order_in_one_loop_wake_up() -> None:
    counting = _CountingLoop()
    loop = counting.loop
    mailbox = _Mailbox(loop)
    got: list[int] = []
    sender = threading.Thread(target=lambda: [mailbox.post(got.append, i) for i in range(1000)])
    sender.start()
    sender.join()
    try:
        counting.run_posted()
        assert got == list(range(1000))
        assert counting.wakes == 1
        mailbox.post(got.append, 1000)  # the next batch wakes the loop again
        counting.run_posted()
        assert got[-1] == 1000 and counting.wakes == 2
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


def _script(rng: random.Random, steps: int) -> list[tuple[str, Any]]:
    """A random connection history: query adds and removes, pushes of
    results (which result each query has at a step), forced pushes."""
    out: list[tuple[str, Any]] = []
    live: set[int] = set()
    version = 0
    for step in range(steps):
        roll = rng.random()
        if roll < 0.25 or not live:
            query_id = rng.randrange(3)
            mods = []
            if roll < 0.05:
                pass  # a query set change with no modifications
            elif query_id in live:
                mods.append({"type": "Remove", "queryId": query_id})
                live.discard(query_id)
            else:
                mods.append({"type": "Add", "queryId": query_id, "udfPath": "m:list", "args": [{}]})
                live.add(query_id)
            out.append(("modify", {"type": "ModifyQuerySet", "baseVersion": version,
                                   "newVersion": version + 1, "modifications": mods}))  # fmt: skip
            version += 1
        else:
            # each query has one of two results at this step (a change or
            # not), or none yet; the timestamp moves on or stays
            have = {q: (step // 2, rng.randrange(2)) for q in live if rng.random() < 0.9}
            out.append(("push", (have, 10 + step // rng.choice((1, 3)), rng.random() < 0.1)))
    return out


def _run(
    session: SyncSession, script: list[tuple[str, Any]], result: Any, seen: dict[int, Any]
) -> tuple[list[dict[str, Any]], int]:
    """What `session` sends through `script`, as JSON, and how many of its
    messages were objects sent before (to another session: `seen`, which
    holds them so their ids stay theirs)."""
    sent: list[dict[str, Any]] = []
    reused = 0
    for kind, arg in script:
        if kind == "modify":
            session.receive(parse_client_message(json.dumps(arg)))
            continue
        have, ts, force = arg
        results = {q: result(q, *which) for q, which in have.items()}
        for m in session.messages(results, ts, force=force):
            reused += id(m) in seen
            seen[id(m)] = m
            sent.append(json.loads(message_text(m)))
    return sent, reused


def test_sessions_sharing_transitions_send_what_each_would_build_alone() -> None:
    """Sessions that find a Transition another session built (the fan-out's
    shortcut) send exactly what a session building every one itself sends,
    and end in the same state: random histories of adds, removes, results
    changing or not, timestamps moving or not, forced pushes."""
    rng = random.Random(7)
    shared: dict[tuple[int, int, int], QueryResult] = {}

    def shared_result(q: int, step: int, which: int) -> QueryResult:
        key = (q, step, which)
        if key not in shared:
            shared[key] = QueryResult(True, [q, step, which], digest=bytes([q, step % 256, which]))
        return shared[key]

    def fresh_result(q: int, step: int, which: int) -> QueryResult:
        return QueryResult(True, [q, step, which], digest=bytes([q, step % 256, which]))

    scripts = [_script(rng, 40) for _ in range(6)]
    seen: dict[int, Any] = {}
    reused = 0
    for _ in range(3):
        for script in scripts:
            alone, together = SyncSession(), SyncSession()
            expected, _ = _run(alone, script, fresh_result, {})
            got, found = _run(together, script, shared_result, seen)
            assert got == expected
            assert together.to_json() == alone.to_json()
            reused += found
    assert reused > 50  # the shortcut ran (the later rounds repeat the first's states)


def test_a_thousand_watchers_at_one_version_are_sent_one_message_object() -> None:
    sessions = [_watching(0) for _ in range(1000)]
    first = QueryResult(True, ["a"], digest=b"a")
    for s in sessions:
        s.messages({0: first}, ts=5)
    update = QueryResult(True, ["b"], digest=b"b")
    sent = [m for s in sessions for m in s.messages({0: update}, ts=6)]
    assert len(sent) == 1000 and all(m is sent[0] for m in sent)
    assert json.loads(message_text(sent[0]))["modifications"][0]["value"] == ["b"]
    assert len({id(s.sent) for s in sessions}) == 1  # the end version, shared too
    assert all(s.messages({0: update}, ts=6) == [] for s in sessions)  # nothing new


def test_a_session_that_moved_its_query_set_does_not_take_anothers_transition() -> None:
    """Two sessions at one version; one then sends a ModifyQuerySet that
    changes nothing. The next result's Transition acknowledges its new
    query set version; the other's does not (a Transition is shared only
    between sessions at the same start and end)."""
    still, moved = _watching(0), _watching(0)
    first = QueryResult(True, ["a"], digest=b"a")
    for s in (still, moved):
        s.messages({0: first}, ts=5)
    empty = {"type": "ModifyQuerySet", "baseVersion": 1, "newVersion": 2, "modifications": []}
    moved.receive(parse_client_message(json.dumps(empty)))
    update = QueryResult(True, ["b"], digest=b"b")
    (for_still,) = still.messages({0: update}, ts=6)
    (for_moved,) = moved.messages({0: update}, ts=6)
    assert json.loads(message_text(for_still))["endVersion"]["querySet"] == 1
    assert json.loads(message_text(for_moved))["endVersion"]["querySet"] == 2
    assert moved.sent.query_set == 2


def test_posts_held_by_a_thread_wake_the_loop_once_when_the_hold_ends() -> None:
    counting = _CountingLoop()
    loop = counting.loop
    first, second = _Mailbox(loop), _Mailbox(loop)
    got: list[tuple[str, int]] = []
    try:
        with held_posts():
            for i in range(500):
                first.post(got.append, ("first", i))
                second.post(got.append, ("second", i))
            with held_posts():  # nested: the outer hold wakes them
                first.post(got.append, ("first", 500))
            assert counting.wakes == 0
        assert counting.wakes == 2  # one a mailbox
        counting.run_posted()
        assert [i for who, i in got if who == "first"] == list(range(501))
        assert [i for who, i in got if who == "second"] == list(range(500))
        # a post from a thread not holding wakes at once and runs all queued
        with held_posts():
            first.post(got.append, ("first", 501))
            other = threading.Thread(target=first.post, args=(got.append, ("first", 502)))
            other.start()
            other.join()
            assert counting.wakes == 3
        assert counting.wakes == 3  # already due: the hold's end adds no second wake
        counting.run_posted()
        assert got[-2:] == [("first", 501), ("first", 502)]
    finally:
        loop.close()
