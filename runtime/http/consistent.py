"""Queries at a fixed timestamp over HTTP, as Convex answers them:

    POST /api/query_ts      -> {"ts": <u64 ns, 8 bytes little-endian, base64>}
    POST /api/query_at_ts   {"path", "args", "format", "ts"} -> as /api/query

`ConvexHttpClient.consistentQuery` (JS) asks `query_ts` once per client and
runs every such query at that timestamp, so they all read one state of the
database however far apart they run. The timestamp is the last commit's
(Convex's `latest_timestamp`); a query at it runs against the database as
of that commit (`runtime/database/history.py`: a current snapshot with every
later write undone), so writes made since are not seen.

Only a backend whose store has snapshots (SQLite: the dev server) can do
this; the AWS shell refuses both routes with 501 and says why (the module
docstring of `history.py` argues it). A timestamp the change log no longer
reaches back to is refused with 400 (`HistoryUnavailable`).
"""

from __future__ import annotations

import base64
import binascii
import logging
import struct
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runtime.backend import Backend
from runtime.database.history import SnapshotSource, database_at, latest_ts
from runtime.functions.executor import CallResult
from runtime.functions.platform_store import PlatformStore
from runtime.sync.messages import encode_ts

from .wire import BadRequest, json_bytes, read_json_object

__all__ = ["consistent_routes", "parse_ts", "run_query_at_ts"]

log = logging.getLogger("runtime.http")

_U64 = struct.Struct("<Q")


def _snapshots(backend: Backend) -> SnapshotSource:
    if backend.snapshots is None:
        raise BadRequest(
            501,
            "CONSISTENT_QUERY_UNSUPPORTED",
            "queries at a fixed timestamp (/api/query_ts, /api/query_at_ts: the JS "
            "ConvexHttpClient's consistentQuery) are not available on the AWS shell: "
            "DynamoDB has no snapshot reads and its commit timestamps are not one global "
            "order, so a query could not be shown the database as of a timestamp soundly. "
            "Use query() (the latest data), or the dev server.",
        )
    return backend.snapshots


def parse_ts(value: object) -> int:
    """A timestamp as the clients send it back (what `query_ts` gave)."""
    try:
        (ts,) = _U64.unpack(base64.b64decode(str(value), validate=True))
    except (binascii.Error, ValueError, struct.error):
        raise BadRequest(
            400,
            "BAD_TIMESTAMP",
            f'"ts" must be a timestamp from /api/query_ts (base64 of 8 bytes), not {value!r:.60}',
        ) from None
    return int(ts)


def run_query_at_ts(
    backend: Backend, path: str, args: Any, ts_value: object, identity: dict[str, Any] | None
) -> CallResult:
    """Run public query `path` against the database as of `ts_value` (in a
    worker thread: the snapshot is opened and closed there)."""
    snapshots = _snapshots(backend)
    if ts_value is None:
        raise BadRequest(400, "BAD_TIMESTAMP", 'the body needs "ts" (from /api/query_ts)')
    ts = parse_ts(ts_value)
    with database_at(backend.database, snapshots, ts, PlatformStore) as db:
        return backend.executor.query_at(db, path, args, identity)


def consistent_routes(backend: Backend) -> list[Route]:
    async def query_ts(request: Request) -> Response:
        snapshots = _snapshots(backend)
        ts = await anyio.to_thread.run_sync(latest_ts, snapshots)
        return Response(json_bytes({"ts": encode_ts(ts)}), media_type="application/json")

    async def debug_event(request: Request) -> Response:
        # The JS client reports a long WebSocket disconnect here when built
        # with reportDebugInfoToConvex; Convex takes it as analytics.
        payload = await read_json_object(request)
        event = payload.get("event")
        log.info("client debug event: %.200s", event if isinstance(event, str) else "?")
        return Response(b"{}", media_type="application/json")

    return [
        Route("/api/query_ts", query_ts, methods=["POST"]),
        Route("/api/debug_event", debug_event, methods=["POST"]),
    ]
