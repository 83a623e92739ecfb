"""The sync socket over real WebSockets against hostile or greedy clients:
the dev server (a subprocess) in production mode, with bad input and slow
actions; and an in-process server with small caps (connections, unsent
bytes)."""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from runtime.backend import Backend
from runtime.http.api import make_api_app
from runtime.local.ws_frames import DirectTextProtocol
from runtime.store.sqlite import SqliteStore
from runtime.sync.hub import SyncHub
from tests.support.devserver import DevServer, free_port, start_dev_server

APP = Path(__file__).parent / "apps" / "sync_hardening"
CHAT = Path(__file__).parent / "apps" / "chat"


@contextlib.contextmanager
def socket(url: str, **kwargs: Any) -> Iterator[ClientConnection]:
    with connect(url.replace("http://", "ws://") + "/api/sync", open_timeout=10, **kwargs) as ws:
        ws.send(
            json.dumps({"type": "Connect", "sessionId": secrets.token_hex(8), "connectionCount": 0})
        )
        yield ws


def receive_until(ws: ClientConnection, kind: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["type"] != kind:
        seen.append(json.loads(ws.recv(timeout=30)))
    return seen


def add(query_id: int, path: str, args: dict[str, Any], base: int = 0) -> str:
    return json.dumps({"type": "ModifyQuerySet", "baseVersion": base, "newVersion": base + 1,
                       "modifications": [{"type": "Add", "queryId": query_id, "udfPath": path,
                                          "args": [args]}]})  # fmt: skip


def post(url: str, path: str, args: dict[str, Any], kind: str) -> dict[str, Any]:
    body = json.dumps({"path": path, "args": args, "format": "json"}).encode()
    request = urllib.request.Request(
        f"{url}/api/{kind}", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as answer:
        result: dict[str, Any] = json.loads(answer.read())
        return result


@pytest.fixture(scope="module")
def prod_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    server = start_dev_server(APP, tmp_path_factory.mktemp("prod") / "data", prod=True)
    yield server
    server.stop()


def test_prod_keeps_log_lines_off_the_socket(prod_server: DevServer) -> None:
    with socket(prod_server.url) as ws:
        ws.send(add(0, "notes:listed", {"topic": "p"}))
        first = receive_until(ws, "Transition")
        ws.send(json.dumps({"type": "Mutation", "requestId": 0, "udfPath": "notes:add",
                            "args": [{"topic": "p", "body": "b"}]}))  # fmt: skip
        after = receive_until(ws, "Transition")
        ws.send(json.dumps({"type": "Action", "requestId": 1, "udfPath": "notes:shout",
                            "args": [{}]}))  # fmt: skip
        action = receive_until(ws, "ActionResponse")
    messages = first + after + action
    kinds = [m["type"] for m in messages]
    assert "MutationResponse" in kinds and kinds[-1] == "ActionResponse"
    lines = [m["logLines"] for m in messages if "logLines" in m]
    lines += [mod["logLines"] for m in messages if m["type"] == "Transition"
              for mod in m["modifications"]]  # fmt: skip
    assert len(lines) >= 4 and all(got == [] for got in lines)
    assert post(prod_server.url, "notes:shout", {}, "action")["logLines"] == []  # as on HTTP


BAD = [
    '{"type":"ModifyQuerySet","baseVersion":1e999,"newVersion":1,"modifications":[]}',
    '{"type":"ModifyQuerySet","baseVersion":NaN,"newVersion":1,"modifications":[]}',
    '{"type":"Mutation","requestId":-1,"udfPath":"notes:add","args":[{}]}',
    '{"type":"Mutation","requestId":18446744073709551616,"udfPath":"notes:add","args":[{}]}',
    "[" * 20_000 + "]" * 20_000,
    '{"type":"Mutation","requestId":1,"udfPath":"notes:add","args":[{"topic":' + "7" * 6000 + "}]}",
    '{"type":"Mutation","requestId":1,"udfPath":"notes:add",'
    '"args":[{"topic":"\\ud800","body":"x"}]}',
]


def test_the_dev_server_declines_per_message_compression(prod_server: DevServer) -> None:
    """A client offering permessage-deflate (the `websockets` client and
    browsers do) gets plain frames: every socket gets a shared result's one
    text as it is, not compressed once per socket."""
    with socket(prod_server.url) as ws:
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        ws.send(add(0, "notes:listed", {"topic": "plain"}))
        assert receive_until(ws, "Transition")[-1]["modifications"][0]["value"] == []


def test_a_connections_mutations_run_one_at_a_time_in_the_order_sent(
    prod_server: DevServer,
) -> None:
    """Forty mutations sent at once over one socket, every fifth one failing
    its argument validation: the writes land in the order sent and the
    responses come back in request order, failures included (as Convex
    runs a connection's mutations: one at a time, in order)."""
    with socket(prod_server.url) as ws:
        for i in range(40):
            args = {"topic": "in-order", "body": str(i)} if i % 5 else {"topic": "in-order"}
            ws.send(json.dumps({"type": "Mutation", "requestId": i, "udfPath": "notes:add",
                                "args": [args]}))  # fmt: skip
        responses = []
        while len(responses) < 40:
            message = json.loads(ws.recv(timeout=30))
            if message["type"] == "MutationResponse":
                responses.append(message)
        assert [r["requestId"] for r in responses] == list(range(40))
        assert [r["success"] for r in responses] == [bool(i % 5) for i in range(40)]
        ts = [
            int.from_bytes(base64.b64decode(r["ts"]), "little") for r in responses if r["success"]
        ]
        assert ts == sorted(ts) and len(set(ts)) == len(ts)
        assert all("ts" not in r for r in responses if not r["success"])
    bodies = post(prod_server.url, "notes:listed", {"topic": "in-order"}, "query")["value"]
    assert bodies == [str(i) for i in range(40) if i % 5]


def test_bad_input_gets_a_fatal_error_and_the_server_serves_others(prod_server: DevServer) -> None:
    with socket(prod_server.url) as bystander:
        bystander.send(add(0, "notes:listed", {"topic": "by"}))
        receive_until(bystander, "Transition")
        for text in BAD:
            with socket(prod_server.url) as victim:
                victim.send(text)
                (fatal,) = receive_until(victim, "FatalError")
                assert fatal["error"], text[:60]
                with pytest.raises(ConnectionClosed):
                    victim.recv(timeout=10)
        post(prod_server.url, "notes:add", {"topic": "by", "body": "still here"}, "mutation")
        (update,) = receive_until(bystander, "Transition")[-1]["modifications"]
        assert update["value"] == ["still here"]


def test_slow_actions_do_not_hold_up_other_clients_mutations(
    prod_server: DevServer, tmp_path: Path
) -> None:
    """More sleeping actions than the action pool holds, over HTTP (more than
    the HTTP API's 40 worker threads too) and over a socket; a mutation from
    another client, over each, completes while they all still sleep."""
    gate = tmp_path / "gate-folder"
    gate.mkdir()
    http_answers: list[dict[str, Any]] = []
    n_http, n_socket = 44, 20

    def http_action(i: int) -> None:
        args = {"folder": str(gate), "name": f"h{i}"}
        http_answers.append(post(prod_server.url, "notes:wait_for_gate", args, "action"))

    threads = [threading.Thread(target=http_action, args=(i,)) for i in range(n_http)]
    with contextlib.ExitStack() as stack:
        greedy = stack.enter_context(socket(prod_server.url))
        _wait_while_sleeping(prod_server, gate, greedy, threads, http_answers, n_socket)
        socket_answers = [json.loads(greedy.recv(timeout=60)) for _ in range(n_socket)]
    assert len(http_answers) == n_http and all(a["value"] == "released" for a in http_answers)
    assert [m["result"] for m in socket_answers] == ["released"] * n_socket


def _wait_while_sleeping(
    prod_server: DevServer,
    gate: Path,
    greedy: ClientConnection,
    threads: list[threading.Thread],
    http_answers: list[dict[str, Any]],
    n_socket: int,
) -> None:
    try:
        for t in threads:
            t.start()
        for i in range(n_socket):
            greedy.send(json.dumps({"type": "Action", "requestId": i,
                                    "udfPath": "notes:wait_for_gate",
                                    "args": [{"folder": str(gate), "name": f"s{i}"}]}))  # fmt: skip
        deadline = time.monotonic() + 60
        while len(list(gate.glob("started-*"))) < 16:  # the action pool is full
            assert time.monotonic() < deadline, "the actions did not start"
            time.sleep(0.02)
        done = post(prod_server.url, "notes:add", {"topic": "i", "body": "http"}, "mutation")
        assert done["status"] == "success"
        with socket(prod_server.url) as other:
            other.send(json.dumps({"type": "Mutation", "requestId": 0, "udfPath": "notes:add",
                                   "args": [{"topic": "i", "body": "socket"}]}))  # fmt: skip
            (response,) = [m for m in receive_until(other, "MutationResponse")]
            assert response["success"] is True
        # ... and every action still sleeps.
        assert http_answers == [] and not (gate / "gate").exists()
    finally:
        (gate / "gate").write_text("")
        for t in threads:
            t.join(120)


# ---- an in-process server with small caps -------------------------------------------


class Served:
    def __init__(self, url: str, hub: SyncHub) -> None:
        self.url, self.hub = url, hub


class CountingProtocol(DirectTextProtocol):
    """The dev server's protocol, counting the writes it took directly."""

    taken = 0
    refused = 0

    def write_text(self, data: bytes) -> bool:
        took: bool = super().write_text(data)
        CountingProtocol.taken += took
        CountingProtocol.refused += not took
        return took


class RefusingProtocol(CountingProtocol):
    """Refuses every third direct write, as the real one does when the
    socket's buffer is full: those messages go through the queue and ASGI
    while later ones may be offered directly."""

    offered = 0

    def write_text(self, data: bytes) -> bool:
        RefusingProtocol.offered += 1
        if RefusingProtocol.offered % 3 == 0:
            CountingProtocol.refused += 1
            return False
        return super().write_text(data)


@contextlib.contextmanager
def serve(tmp_path: Path, protocol: str, max_unsent_bytes: int) -> Iterator[Served]:
    store = SqliteStore(str(tmp_path / "db.sqlite3"))
    backend = Backend(store, APP, admin_key=secrets.token_hex(32))
    assert backend.reload().ok
    hub = SyncHub(
        backend.database,
        backend.executor,
        store.snapshot,
        max_connections=3,
        max_unsent_bytes=max_unsent_bytes,
    )
    backend.add_listener(hub.notice)
    hub.start()
    port = free_port()
    config = uvicorn.Config(
        make_api_app(backend, hub), host="127.0.0.1", port=port, log_level="warning",
        lifespan="off", ws_max_size=16 << 20, ws_per_message_deflate=False,
        ws={"direct": CountingProtocol, "refusing": RefusingProtocol}.get(protocol, "auto"),
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", hub)
    finally:
        server.should_exit = True
        thread.join(30)
        hub.stop()
        backend.close()


@pytest.fixture(params=["asgi", "direct"])
def small(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    """The sync socket with small caps behind plain uvicorn (every message
    through ASGI) and behind the dev server's protocol (direct writes where
    they can go)."""
    with serve(tmp_path, request.param, 256 * 1024) as served:
        yield served


def test_the_connection_cap_over_real_sockets(small: Served) -> None:
    with contextlib.ExitStack() as stack:
        held = [stack.enter_context(socket(small.url)) for _ in range(3)]
        with connect(small.url.replace("http://", "ws://") + "/api/sync", open_timeout=10) as ws:
            fatal = json.loads(ws.recv(timeout=10))
            assert fatal["type"] == "FatalError" and "SYNC_CONNECTIONS" in fatal["error"]
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        held.pop().close()
        deadline = time.monotonic() + 30
        while small.hub.connections > 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with socket(small.url) as ws:  # a place came free
            ws.send(add(0, "notes:listed", {"topic": "free"}))
            assert receive_until(ws, "Transition")[-1]["modifications"][0]["value"] == []


def test_a_client_that_does_not_read_is_closed_as_a_slow_consumer(small: Served) -> None:
    # max_queue=1: the client library stops reading the socket once one
    # frame waits, as a client that never reads would.
    with socket(small.url, max_queue=1) as slow:
        modifications = [
            {
                "type": "Add",
                "queryId": i,
                "udfPath": "notes:big",
                "args": [{"topic": f"t{i}", "size": 100_000.0}],
            }
            for i in range(300)
        ]
        slow.send(json.dumps({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                              "modifications": modifications}))  # fmt: skip
        deadline = time.monotonic() + 60
        while small.hub.connections > 0:  # 30 MB of results cannot all be buffered
            assert time.monotonic() < deadline, "the slow consumer was not dropped"
            time.sleep(0.05)
        with pytest.raises(ConnectionClosed) as closed:  # what was delivered, then the end
            while True:
                slow.recv(timeout=30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert "slow consumer" in closed.value.rcvd.reason
    with socket(small.url) as ws:  # the server serves others
        ws.send(add(0, "notes:listed", {"topic": "after"}))
        assert receive_until(ws, "Transition")[-1]["modifications"][0]["value"] == []


@pytest.mark.parametrize("protocol", ["asgi", "direct", "refusing"])
def test_results_of_every_frame_size_arrive_whole_and_in_order(
    tmp_path: Path, protocol: str
) -> None:
    """Results around each frame-length boundary (125/126 bytes, 64 KiB)
    change again and again while the client reads slowly. Messages go
    straight to the socket where the protocol takes them and through the
    queue where it refuses; every Transition still follows the one before."""
    taken, refused = CountingProtocol.taken, CountingProtocol.refused
    sizes = [0, 40, 60, 65_400, 65_600, 70_000]
    rounds = 8
    with (
        serve(tmp_path, protocol, 64 << 20) as served,  # a cap the slow reads never reach
        socket(served.url, max_queue=1, max_size=None) as ws,
    ):
        queries = [{"type": "Add", "queryId": i, "udfPath": "notes:big",
                    "args": [{"topic": f"s{i}", "size": float(n)}]}
                   for i, n in enumerate(sizes)]  # fmt: skip
        ws.send(json.dumps({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                            "modifications": queries}))  # fmt: skip
        values: dict[int, str] = {}
        version: dict[str, Any] | None = None
        answered = 0

        def take() -> None:
            nonlocal version, answered
            message = json.loads(ws.recv(timeout=30))
            if message["type"] == "MutationResponse":
                assert message["success"] is True
                assert message["requestId"] == answered, "a response was lost or reordered"
                answered += 1
            if message["type"] != "Transition":
                return
            if version is not None:
                assert message["startVersion"] == version, "a Transition was lost or reordered"
            version = message["endVersion"]
            for mod in message["modifications"]:
                values[mod["queryId"]] = mod["value"]

        for r in range(rounds):
            for i in range(len(sizes)):
                ws.send(json.dumps({"type": "Mutation", "requestId": r * len(sizes) + i,
                                    "udfPath": "notes:add",
                                    "args": [{"topic": f"s{i}", "body": "b"}]}))  # fmt: skip
            take()  # reads lag behind the writes
        while answered < rounds * len(sizes) or any(
            not values.get(i, "").startswith(str(rounds)) for i in range(len(sizes))
        ):
            take()
        for i, n in enumerate(sizes):
            assert values[i] == str(rounds) + "x" * n
    if protocol != "asgi":
        assert CountingProtocol.taken > taken, "no message took the direct write"
    if protocol == "refusing":
        assert CountingProtocol.refused > refused
