"""The example chat app (examples/chat) in Chromium: two people on two pages.

The web client is the Vite build `make chat-web` writes (make test depends
on it), served by the dev server's `--static` at the API's origin, talking to
it through the official `convex` package's React hooks. Screenshots land in
build/test-artifacts/screenshots/chat-*.png.
"""

from __future__ import annotations

import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from convex.http_client import ConvexHttpClient

from tests.support.browser import chromium, new_page, screenshot
from tests.support.devserver import DevServer, dev_server

ROOT = Path(__file__).resolve().parents[2]
CHAT = ROOT / "examples" / "chat"
WEB = CHAT / "web"
DIST = WEB / "dist"
HISTORY = 25  # more than the page's first page (10), so older ones load on scroll


def png(width: int = 24, height: int = 16) -> bytes:
    """A small valid PNG (a red rectangle) that the browser can decode."""
    rows = b"".join(b"\x00" + b"\xd0\x30\x30" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    if not (DIST / "index.html").is_file():
        pytest.fail("examples/chat/web/dist is not built: run `make chat-web` (make test does)")
    data = tmp_path_factory.mktemp("chat-browser") / "data"
    with dev_server(CHAT / "functions", data, extra=["--static", str(DIST)]) as s:
        client = ConvexHttpClient(s.url)
        for i in range(HISTORY):
            client.mutation("messages:send", {"body": f"history {i}", "author": "seed"})
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def open_chat(browser: Any, server: DevServer, name: str, console: list[str]) -> Any:
    page = new_page(browser, console=console)
    page.goto(server.url + "/")
    page.get_by_test_id("name").fill(name)
    return page


def message(page: Any, text: str) -> Any:
    return page.get_by_test_id("history").get_by_test_id("message").filter(has_text=text)


def test_two_people_chat_like_upload_scroll_and_search(browser: Any, server: DevServer) -> None:
    from playwright.sync_api import expect

    console: list[str] = []
    ann = open_chat(browser, server, "Ann", console)
    bob = open_chat(browser, server, "Bob", console)
    try:
        # The first page: the newest ten; older history loads on scrolling up.
        expect(message(ann, "history 24")).to_be_visible()
        expect(message(ann, "history 0")).to_have_count(0)
        sentinel = ann.get_by_test_id("history-status")
        for _ in range(HISTORY):
            if sentinel.inner_text() == "The beginning of the chat":
                break
            shown = ann.get_by_test_id("message").count()
            sentinel.scroll_into_view_if_needed()
            ann.wait_for_function(
                "n => document.querySelectorAll('[data-testid=message]').length > n"
                " || document.querySelector('[data-testid=history-status]').innerText"
                " === 'The beginning of the chat'",
                arg=shown,
            )
        expect(message(ann, "history 0")).to_be_visible()
        screenshot(ann, "chat-history-loaded")

        # A message sent on one page appears on the other.
        ann.get_by_test_id("compose").fill("hello from Ann")
        ann.get_by_test_id("send").click()
        expect(message(bob, "hello from Ann")).to_be_visible()

        # Bob's like shows on Ann's page.
        message(bob, "hello from Ann").get_by_test_id("like").click()
        expect(message(ann, "hello from Ann").get_by_test_id("like-count")).to_have_text("1")

        # An image uploaded by Ann displays (decoded) on Bob's page.
        ann.get_by_test_id("image-input").set_input_files(
            files=[{"name": "red.png", "mimeType": "image/png", "buffer": png()}]
        )
        image = bob.get_by_test_id("history").get_by_test_id("message-image")
        expect(image).to_have_count(1)
        bob.wait_for_function(
            "() => { const i = document.querySelector('[data-testid=message-image]');"
            " return i && i.complete && i.naturalWidth === 24; }"
        )

        # A mention gets the scheduled assistant's reply, on both pages.
        bob.get_by_test_id("compose").fill("@assistant are you there?")
        bob.get_by_test_id("send").click()
        expect(message(ann, "are you there?").filter(has_text="stand-in")).to_be_visible()

        # Search finds a message by a word of it.
        bob.get_by_test_id("search").fill("hello")
        results = bob.get_by_test_id("search-results").get_by_test_id("message")
        expect(results).to_have_count(1)
        expect(results).to_contain_text("hello from Ann")
        ann.get_by_test_id("history").evaluate("el => { el.scrollTop = 0; }")  # the newest
        screenshot(ann, "chat-ann")
        screenshot(bob, "chat-bob")
    except Exception:
        print("\n".join(console))
        raise
    assert not [line for line in console if line.startswith(("error", "pageerror"))], console


def test_the_web_client_type_checks_against_the_generated_bindings(tmp_path: Path) -> None:
    """`tsc --noEmit` on web/ passes, and the committed bindings are what
    `runtime.codegen` makes from the functions today (so tsc checks the real API)."""
    from runtime.codegen import generate

    generate(CHAT / "functions", out=tmp_path)
    committed = CHAT / "functions" / "_generated"
    for made in sorted(tmp_path.iterdir()):
        assert made.read_text() == (committed / made.name).read_text(), (
            f"{made.name} is stale: run python -m runtime codegen --functions examples/chat/functions"
        )
    tsc = WEB / "node_modules" / ".bin" / "tsc"
    assert tsc.exists(), "run `make chat-web` (npm ci in examples/chat/web)"
    done = subprocess.run(
        [str(tsc), "--noEmit", "-p", str(WEB)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
