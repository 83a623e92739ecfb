"""The example chat app's functions (examples/chat/functions) on the dev
server, through the official Python client: likes, paginated history, the
scheduled @assistant reply (stand-in and model), images, search."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests
from convex.http_client import ConvexHttpClient

from tests.support.devserver import DevServer, dev_server
from tests.support.oidc import running_oidc_provider

ROOT = Path(__file__).resolve().parents[2]
CHAT = ROOT / "examples" / "chat" / "functions"
WAIT_S = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with dev_server(CHAT, tmp_path_factory.mktemp("chat") / "data") as s:
        yield s


def wait_for(check: Any, what: str) -> Any:
    """Poll `check()` until it returns something truthy (a wait, not a timing assertion)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"{what}: not seen within {WAIT_S} s")


def all_messages(client: ConvexHttpClient) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    opts: dict[str, Any] = {"numItems": 50, "cursor": None}
    while True:
        page = client.query("messages:list", {"paginationOpts": opts})
        out += page["page"]
        if page["isDone"]:
            return out
        opts = {**opts, "cursor": page["continueCursor"]}


def test_a_like_is_a_document_and_liking_again_takes_it_back(server: DevServer) -> None:
    client = ConvexHttpClient(server.url)
    mid = client.mutation("messages:send", {"body": "like me", "author": "ann"})
    assert client.mutation("messages:like", {"messageId": mid, "liker": "bob"}) is True
    assert client.mutation("messages:like", {"messageId": mid, "liker": "cid"}) is True
    shown = next(m for m in all_messages(client) if m["_id"] == mid)
    assert (shown["likes"], shown["likers"]) == (2, ["bob", "cid"])
    assert client.mutation("messages:like", {"messageId": mid, "liker": "bob"}) is False
    shown = next(m for m in all_messages(client) if m["_id"] == mid)
    assert (shown["likes"], shown["likers"]) == (1, ["cid"])


def test_history_pages_newest_first_and_pages_do_not_overlap(server: DevServer) -> None:
    client = ConvexHttpClient(server.url)
    bodies = [f"page test {i}" for i in range(25)]
    for body in bodies:
        client.mutation("messages:send", {"body": body, "author": "pager"})
    opts: dict[str, Any] = {"numItems": 10, "cursor": None}
    first = client.query("messages:list", {"paginationOpts": opts})
    assert len(first["page"]) == 10 and not first["isDone"]
    assert [m["body"] for m in first["page"]] == bodies[::-1][:10]
    second = client.query(
        "messages:list", {"paginationOpts": {"numItems": 10, "cursor": first["continueCursor"]}}
    )
    assert [m["body"] for m in second["page"]] == bodies[::-1][10:20]


def test_a_mention_of_the_assistant_gets_a_scheduled_stand_in_reply(server: DevServer) -> None:
    client = ConvexHttpClient(server.url)
    client.mutation("messages:send", {"body": "no mention here", "author": "ann"})
    client.mutation("messages:send", {"body": "@assistant what is 2+2?", "author": "ann"})
    replies = wait_for(
        lambda: [m for m in all_messages(client) if m["author"] == "assistant"], "the reply"
    )
    assert len(replies) == 1
    assert "what is 2+2?" in replies[0]["body"] and "stand-in" in replies[0]["body"]


def test_an_image_message_carries_its_url(server: DevServer) -> None:
    client = ConvexHttpClient(server.url)
    url = client.mutation("messages:generate_upload_url", {})
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    answer = requests.post(url, data=png, headers={"Content-Type": "image/png"}, timeout=WAIT_S)
    assert answer.status_code == 200, answer.text
    mid = client.mutation(
        "messages:send_image", {"storageId": answer.json()["storageId"], "author": "ann"}
    )
    shown = next(m for m in all_messages(client) if m["_id"] == mid)
    assert shown["format"] == "image"
    fetched = requests.get(shown["url"], timeout=WAIT_S)
    assert fetched.status_code == 200 and fetched.content == png


def test_search_finds_a_message_by_its_words(server: DevServer) -> None:
    client = ConvexHttpClient(server.url)
    client.mutation("messages:send", {"body": "the zebra crossing", "author": "ann"})
    client.mutation("messages:send", {"body": "an ordinary line", "author": "bob"})
    found = client.query("messages:search", {"text": "zebra"})
    assert [m["body"] for m in found] == ["the zebra crossing"]
    assert client.query("messages:search", {"text": "   "}) == []


class _Model(BaseHTTPRequestHandler):
    """A stand-in for OpenAI's chat completions endpoint, on a real socket."""

    asked: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Model.asked.append({"auth": self.headers["Authorization"], "body": body})
        reply = {"choices": [{"message": {"role": "assistant", "content": "It is 4."}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def test_with_an_api_key_the_reply_comes_from_the_model(tmp_path: Path) -> None:
    model = ThreadingHTTPServer(("127.0.0.1", 0), _Model)
    threading.Thread(target=model.serve_forever, daemon=True).start()
    env = {
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{model.server_port}/v1",
    }
    try:
        with dev_server(CHAT, tmp_path / "data", env=env) as s:
            client = ConvexHttpClient(s.url)
            client.mutation("messages:send", {"body": "@Assistant what is 2+2?", "author": "ann"})
            replies = wait_for(
                lambda: [m for m in all_messages(client) if m["author"] == "assistant"], "reply"
            )
    finally:
        model.shutdown()
        model.server_close()
    assert [m["body"] for m in replies] == ["It is 4."]
    assert _Model.asked[0]["auth"] == "Bearer sk-test"
    assert _Model.asked[0]["body"]["messages"][-1]["content"] == "@Assistant what is 2+2?"


def test_sign_in_is_off_by_default_and_when_on_a_message_is_the_users(tmp_path: Path) -> None:
    """With an auth.config.py (none ships: sign-in is off by default), a
    signed-in caller's messages and likes carry the token's name, not the
    name the client typed; anonymous callers still chat under a typed name."""
    assert not (CHAT / "auth.config.py").exists()
    functions = tmp_path / "functions"
    shutil.copytree(CHAT, functions, ignore=shutil.ignore_patterns("__pycache__"))
    with running_oidc_provider() as oidc:
        (functions / "auth.config.py").write_text(f"providers = [{oidc.oidc_config()!r}]\n")
        with dev_server(functions, tmp_path / "data") as s:
            signed_in = ConvexHttpClient(s.url)
            signed_in.set_auth(oidc.token(sub="ann", name="Ann"))
            mid = signed_in.mutation("messages:send", {"body": "signed", "author": "Mallory"})
            signed_in.mutation("messages:like", {"messageId": mid, "liker": "Mallory"})
            anonymous = ConvexHttpClient(s.url)
            anonymous.mutation("messages:send", {"body": "anon", "author": "Guest"})
            shown = {m["body"]: m for m in all_messages(anonymous)}
    assert (shown["signed"]["author"], shown["signed"]["likers"]) == ("Ann", ["Ann"])
    assert shown["anon"]["author"] == "Guest"
