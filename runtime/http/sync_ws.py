"""The sync WebSocket (`/api/sync`, `/api/<client version>/sync`): a thin
loop between a socket and the sync hub.

The hub calls `send` from any thread; messages are encoded there and queue
per connection, and a writer task sends them in order. A connection whose
unsent messages pass SYNC_UNSENT_BYTES (or SYNC_UNSENT_MESSAGES) is a slow
consumer: the hub forgets it at once and the socket is closed (code 1008)
rather than buffered without bound. A `Ping` goes out after PING_AFTER
seconds without traffic. Past the hub's connection cap a new socket gets a
FatalError and is closed (code 1013, try again later).

A server that offers the `pyconvex.write_text` ASGI extension (the dev
server's, `runtime/local/ws_frames.py`) takes a message straight to the
socket when nothing is queued ahead of it: no task step and no ASGI message
per socket, which is most of a large fan-out's Python. Anything it refuses
goes through the queue and ASGI as above.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import anyio.to_thread
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from runtime.limits import SYNC_PING_SECONDS, SYNC_UNSENT_MESSAGES
from runtime.sync.hub import SyncHub, TooManyConnections
from runtime.sync.wire_text import message_text

__all__ = ["DIRECT_TEXT", "OUTBOX_LIMIT", "PING_AFTER", "sync_routes"]

DIRECT_TEXT = "pyconvex.write_text"
"""The scope extension a server may offer: a function that writes UTF-8
text as one frame at once and returns True, or returns False if it cannot."""

PING_AFTER = float(os.environ.get("PYCONVEX_PING_SECONDS", SYNC_PING_SECONDS))
"""Seconds of silence before a Ping (PYCONVEX_PING_SECONDS overrides it)."""
OUTBOX_LIMIT = SYNC_UNSENT_MESSAGES
"""Messages queued for one connection before it is closed as too slow."""
CLOSE_TIMEOUT = 5.0
"""Seconds a closing handshake may take before the socket is dropped."""


_PING = '{"type":"Ping"}'


class _Close:
    def __init__(self, reason: str, code: int = 1000) -> None:
        self.reason = reason
        self.code = code


class _Mailbox:
    """Hands calls from the hub's threads to one event loop, many per wake-up.

    A write watched by a thousand sockets makes the hub send a thousand
    messages in one step; one `call_soon_threadsafe` each would wake the loop
    (a syscall, a GIL hand-off) a thousand times. Calls queue here in order
    and the loop runs every queued one in a single callback."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._calls: list[tuple[Callable[[Any], None], Any]] = []
        self._lock = threading.Lock()
        self._scheduled = False

    def post(self, fn: Callable[[Any], None], arg: Any) -> None:
        with self._lock:
            self._calls.append((fn, arg))
            if self._scheduled:
                return
            held: set[_Mailbox] | None = getattr(_holding, "mailboxes", None)
            if held is not None:
                held.add(self)  # woken when the hold ends (`held_posts`)
                return
            self._scheduled = True
        self._loop.call_soon_threadsafe(self._run)

    def wake(self) -> None:
        """Run what is queued, if it is not due to run already."""
        with self._lock:
            if self._scheduled or not self._calls:
                return
            self._scheduled = True
        self._loop.call_soon_threadsafe(self._run)

    def _run(self) -> None:
        with self._lock:
            calls, self._calls = self._calls, []
            self._scheduled = False
        for fn, arg in calls:
            fn(arg)


_holding = threading.local()


@contextlib.contextmanager
def held_posts() -> Iterator[None]:
    """Within it, this thread's posts queue without waking their loops;
    each loop posted to is woken once, on the way out (the hub's
    `hold_sends`, around a step's pushes).

    Why: a loop woken mid-step competes for the GIL with the pushing
    thread, which never blocks; the two then run in turns of the
    interpreter's switch interval (5 ms). Measured on one write watched by
    1,000 sockets: the step's pushes spread over 16 ms instead of 4, the
    last sockets' messages waiting behind them. Held, the loop gets the
    whole step's messages at once and writes them back to back."""
    if getattr(_holding, "mailboxes", None) is not None:
        yield  # nested: the outer hold wakes them
        return
    held: set[_Mailbox] = set()
    _holding.mailboxes = held
    try:
        yield
    finally:
        _holding.mailboxes = None
        for mailbox in held:
            mailbox.wake()


def sync_routes(hub: SyncHub) -> list[WebSocketRoute]:
    hub.hold_sends = held_posts
    max_unsent_bytes = hub.max_unsent_bytes
    mailboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Mailbox] = (
        weakref.WeakKeyDictionary()
    )

    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        direct: Callable[[bytes], bool] | None = (ws.scope.get("extensions") or {}).get(DIRECT_TEXT)
        loop = asyncio.get_running_loop()
        mailbox = mailboxes.get(loop)
        if mailbox is None:
            mailbox = mailboxes[loop] = _Mailbox(loop)
        outbox: asyncio.Queue[str | _Close] = asyncio.Queue()
        closing = False
        unsent = 0
        """Bytes queued and not yet handed to the socket."""
        slow: asyncio.Event = asyncio.Event()
        last_sent = loop.time()

        def put(item: str | _Close) -> None:
            nonlocal closing, unsent, last_sent
            if closing:
                return
            if isinstance(item, _Close):
                closing = True
                outbox.put_nowait(item)
                return
            if (
                not unsent  # nothing queued ahead of it
                and direct is not None
                and len(item) <= max_unsent_bytes  # what the queue would refuse, too
                and direct(item.encode())
            ):
                last_sent = loop.time()
                return
            unsent += len(item)
            if unsent > max_unsent_bytes or outbox.qsize() >= OUTBOX_LIMIT:
                # The writer may be stuck on a client that does not read: the
                # close cannot wait in the queue behind what it would send.
                closing = True
                slow.set()
                return
            outbox.put_nowait(item)

        def send(message: dict[str, Any]) -> None:
            mailbox.post(put, message_text(message))

        def close(reason: str) -> None:
            mailbox.post(put, _Close(reason[:120], 1000))

        async def writer() -> None:
            nonlocal unsent, last_sent
            while True:
                item = await outbox.get()
                if isinstance(item, _Close):
                    await ws.close(code=item.code, reason=item.reason)
                    return
                await ws.send_text(item)
                unsent -= len(item)
                last_sent = loop.time()

        async def pinger() -> None:
            nonlocal last_sent
            # A Ping after PING_AFTER seconds of silence, queued like any
            # message (one timer per connection, not one per message).
            while True:
                await asyncio.sleep(max(0.0, last_sent + PING_AFTER - loop.time()))
                if loop.time() - last_sent >= PING_AFTER and outbox.empty():
                    put(_PING)
                    last_sent = loop.time()

        try:
            conn_id = hub.connect(send, close)
        except TooManyConnections as e:
            await ws.send_text(json.dumps({"type": "FatalError", "error": e.message}))
            await ws.close(code=1013, reason="too many connections")
            return
        task = asyncio.create_task(writer())
        reader = asyncio.create_task(_read(ws, hub, conn_id))
        waiter = asyncio.create_task(slow.wait())
        pings = asyncio.create_task(pinger())
        try:
            await asyncio.wait({reader, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hub.disconnect(conn_id)
            waiter.cancel()
            pings.cancel()
            if slow.is_set():
                task.cancel()
                reader.cancel()
                limit = f"{max_unsent_bytes:,} bytes or {OUTBOX_LIMIT:,} messages"
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        ws.close(code=1008, reason=f"slow consumer: over {limit} unsent"),
                        CLOSE_TIMEOUT,
                    )
            elif not task.done():
                # Let queued messages (a FatalError, a close) go out first.
                with contextlib.suppress(asyncio.TimeoutError, Exception):
                    await asyncio.wait_for(asyncio.shield(task), 0.5)
                task.cancel()

    return [
        WebSocketRoute("/api/sync", endpoint),
        WebSocketRoute("/api/{version}/sync", endpoint),
    ]


async def _read(ws: WebSocket, hub: SyncHub, conn_id: int) -> None:
    """Hand each client message to the hub until the socket closes."""
    try:
        while True:
            frame = await ws.receive()
            if frame["type"] == "websocket.disconnect":
                return
            data = frame.get("text")
            if data is None:
                data = frame.get("bytes") or b""
            if "Authenticate" in (data if isinstance(data, str) else data.decode("latin-1")):
                # verifying a user token may fetch keys: off the event loop
                await anyio.to_thread.run_sync(hub.receive, conn_id, data)
            else:
                hub.receive(conn_id, data)
    except (WebSocketDisconnect, RuntimeError):
        return
