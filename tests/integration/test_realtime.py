"""Live queries over the sync WebSocket with the official Python client."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from convex import ConvexClient, ConvexError
from convex.http_client import ConvexHttpClient
from websockets.sync.client import connect

from tests.support.devserver import free_port, start_dev_server
from tests.support.shells import Backend, start_shell


def test_a_subscription_updates_when_another_client_commits(chat: Backend) -> None:
    client = ConvexClient(chat.url)
    updates = iter(client.subscribe("messages:list", {"channel": "py"}))
    assert next(updates) == []
    ConvexHttpClient(chat.url).mutation("messages:send", {"channel": "py", "body": "hello"})
    assert next(updates) == ["hello"]
    client.mutation("messages:send", {"channel": "py", "body": "again"})
    assert next(updates) == ["hello", "again"]


def test_queries_mutations_and_actions_over_the_socket(chat: Backend) -> None:
    client = ConvexClient(chat.url)
    counter = client.mutation("messages:new_counter")
    client.mutation("messages:bump", {"id": counter})
    assert client.query("messages:counter", {"id": counter}) == 1.0
    with pytest.raises(Exception, match="query failed"):
        client.query("messages:boom")
    client.mutation("messages:send", {"channel": "act", "body": "a"})
    assert client.action("messages:echo_count", {"channel": "act"}) == 1
    with pytest.raises(Exception, match=r"ArgumentValidationError: .*\nPath: \.channel") as e:
        ConvexClient(chat.url).mutation("messages:send", {"channel": 5, "body": "x"})
    assert not isinstance(e.value, ConvexError)


def raw(chat: Backend) -> object:
    return connect(chat.url.replace("http://", "ws://") + "/api/1.0.0/sync", open_timeout=5)


def test_the_raw_protocol_on_the_versioned_path(chat: Backend) -> None:
    with raw(chat) as ws:  # type: ignore[attr-defined]
        ws.send(
            json.dumps(
                {
                    "type": "Connect",
                    "sessionId": "raw-1",
                    "connectionCount": 0,
                    "lastCloseReason": None,
                    "clientTs": 0,
                }
            )
        )
        ws.send(json.dumps({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": [
            {"type": "Add", "queryId": 0, "udfPath": "messages:list", "args": [{"channel": "raw"}]}]}))  # fmt: skip
        first = json.loads(ws.recv(timeout=5))
        assert first["type"] == "Transition" and first["endVersion"]["querySet"] == 1
        assert first["modifications"][0] == {
            "type": "QueryUpdated",
            "queryId": 0,
            "value": [],
            "logLines": [],
            "journal": None,
        }
        ws.send(
            json.dumps(
                {
                    "type": "Mutation",
                    "requestId": 0,
                    "udfPath": "messages:send",
                    "args": [{"channel": "raw", "body": "r"}],
                }
            )
        )
        response = json.loads(ws.recv(timeout=5))
        transition = json.loads(ws.recv(timeout=5))
        assert response["type"] == "MutationResponse" and response["success"] is True
        assert transition["startVersion"] == first["endVersion"]
        assert transition["modifications"][0]["value"] == ["r"]
    with raw(chat) as ws:  # type: ignore[attr-defined]
        ws.send("not json")
        fatal = json.loads(ws.recv(timeout=5))
        assert fatal["type"] == "FatalError" and "not JSON" in fatal["error"]


def test_a_mutation_resent_after_a_dropped_socket_is_applied_once(chat: Backend) -> None:
    count = ConvexHttpClient(chat.url).query("messages:count_all").value
    hello = json.dumps({"type": "Connect", "sessionId": "dropping-session", "connectionCount": 0})
    mutation = json.dumps(
        {
            "type": "Mutation",
            "requestId": 41,
            "udfPath": "messages:send",
            "args": [{"channel": "drop", "body": "once"}],
        }
    )
    with raw(chat) as ws:  # type: ignore[attr-defined]
        ws.send(hello)
        ws.send(mutation)  # and gone before reading the response
    with raw(chat) as ws:  # type: ignore[attr-defined]
        ws.send(hello)
        ws.send(mutation)
        response = json.loads(ws.recv(timeout=5))
        assert response["type"] == "MutationResponse" and response["success"] is True
    assert ConvexHttpClient(chat.url).query("messages:list", {"channel": "drop"}) == ["once"]
    assert ConvexHttpClient(chat.url).query("messages:count_all").value == count + 1


def test_clients_converge_after_a_server_restart(
    shell: str, dynamodb_for: str | None, tmp_path: Path
) -> None:
    app = Path(__file__).parent / "apps" / "chat"
    port, table = free_port(), f"restart{uuid.uuid4().hex[:8]}"

    def start() -> Backend:
        return start_shell(
            shell, app, tmp_path / "data", dynamodb_endpoint=dynamodb_for, port=port, table=table
        )

    server = start()
    client = ConvexClient(server.url)
    updates = iter(client.subscribe("messages:list", {"channel": "restart"}))
    assert next(updates) == []
    client.mutation("messages:send", {"channel": "restart", "body": "before"})
    assert next(updates) == ["before"]
    assert server.stop() == 0
    server = start()
    try:
        ConvexHttpClient(server.url).mutation(
            "messages:send", {"channel": "restart", "body": "after"}
        )
        # The client reconnects on its own, re-subscribes and catches up
        # (it may first repeat the value it had).
        value = next(updates)
        while value == ["before"]:
            value = next(updates)
        assert value == ["before", "after"]
    finally:
        server.stop()


def test_ping_after_silence(tmp_path: Path) -> None:
    """Dev server only: on AWS, API Gateway keeps idle sockets open for 10
    minutes and no process is there to ping."""
    app = Path(__file__).parent / "apps" / "chat"
    server = start_dev_server(app, tmp_path / "data", env={"PYCONVEX_PING_SECONDS": "0.3"})
    try:
        with raw(server) as ws:  # type: ignore[attr-defined]
            ws.send(json.dumps({"type": "Connect", "sessionId": "quiet", "connectionCount": 0}))
            assert json.loads(ws.recv(timeout=5)) == {"type": "Ping"}
    finally:
        server.stop()
