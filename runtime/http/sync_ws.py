"""The sync WebSocket (`/api/sync`, `/api/<client version>/sync`): a thin
loop between a socket and the sync hub.

The hub calls `send` from any thread; messages queue per connection and a
writer task sends them in order. A connection whose queue passes
OUTBOX_LIMIT is closed (a slow consumer) rather than buffered without bound;
a `Ping` goes out after PING_AFTER seconds without traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import Any

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from runtime.sync.hub import SyncHub

__all__ = ["OUTBOX_LIMIT", "PING_AFTER", "sync_routes"]

PING_AFTER = float(os.environ.get("PYCONVEX_PING_SECONDS", "15"))
"""Seconds of silence before a Ping (PYCONVEX_PING_SECONDS overrides it)."""
OUTBOX_LIMIT = 10_000
"""Messages queued for one connection before it is closed as too slow."""


class _Close:
    def __init__(self, reason: str, code: int = 1000) -> None:
        self.reason = reason
        self.code = code


def sync_routes(hub: SyncHub) -> list[WebSocketRoute]:
    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        loop = asyncio.get_running_loop()
        outbox: asyncio.Queue[dict[str, Any] | _Close] = asyncio.Queue()
        closing = False

        def put(item: dict[str, Any] | _Close) -> None:
            nonlocal closing
            if closing:
                return
            if isinstance(item, _Close):
                closing = True
            elif outbox.qsize() >= OUTBOX_LIMIT:
                closing = True
                item = _Close(
                    f"slow consumer: {OUTBOX_LIMIT} messages were waiting to be sent", 1008
                )
            outbox.put_nowait(item)

        def send(message: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(put, message)

        def close(reason: str) -> None:
            loop.call_soon_threadsafe(put, _Close(reason[:120], 1000))

        async def writer() -> None:
            while True:
                try:
                    item = await asyncio.wait_for(outbox.get(), PING_AFTER)
                except TimeoutError:
                    await ws.send_text('{"type":"Ping"}')
                    continue
                if isinstance(item, _Close):
                    await ws.close(code=item.code, reason=item.reason)
                    return
                await ws.send_text(json.dumps(item, separators=(",", ":")))

        conn_id = hub.connect(send, close)
        task = asyncio.create_task(writer())
        try:
            while True:
                frame = await ws.receive()
                if frame["type"] == "websocket.disconnect":
                    break
                data = frame.get("text")
                if data is None:
                    data = frame.get("bytes") or b""
                hub.receive(conn_id, data)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            hub.disconnect(conn_id)
            if not task.done():
                # Let queued messages (a FatalError, a close) go out first.
                with contextlib.suppress(asyncio.TimeoutError, Exception):
                    await asyncio.wait_for(asyncio.shield(task), 0.5)
                task.cancel()

    return [
        WebSocketRoute("/api/sync", endpoint),
        WebSocketRoute("/api/{version}/sync", endpoint),
    ]
