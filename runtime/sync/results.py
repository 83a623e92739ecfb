"""Query results as the sync protocol carries them, shared by both shells
(the in-process hub and the store-backed sync of the AWS shell): running a
subscribed query, its result's digest, journals, mutation request records."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from runtime.database import Database
from runtime.database.readwrite import ReadSet
from runtime.functions.executor import CallResult, Executor, RequestError
from runtime.store.port import Key
from runtime.values import UNDEFINED, dumps, encode_json

from .session import QueryResult

__all__ = [
    "SubscriptionRun",
    "decode_journal",
    "encode_journal",
    "query_result",
    "request_key",
    "respond",
    "run_subscription",
]

SubscriptionRun = tuple[QueryResult, ReadSet | None, list[str | None] | None]
"""(the result, what the run read (None: refused before running), its journal)."""


def encode_journal(journal: list[str | None] | None) -> str | None:
    return None if not journal else json.dumps({"endCursors": journal})


def decode_journal(text: str | None) -> list[str | None] | None:
    """A client's journal (from a re-sent Add); anything unreadable is no journal."""
    if not text:
        return None
    try:
        cursors = json.loads(text)["endCursors"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(cursors, list) or not all(c is None or isinstance(c, str) for c in cursors):
        return None
    return cursors


def query_result(call: CallResult) -> QueryResult:
    lines = tuple(call.log_lines)
    journal = encode_journal(call.journal)
    if call.ok:
        encoded = encode_json(call.value)
        digest = _digest(b"ok", dumps(call.value) + b"\0" + (journal or "").encode())
        return QueryResult(True, encoded, log_lines=lines, digest=digest, journal=journal)
    has_data = call.error_data is not UNDEFINED
    data = encode_json(call.error_data) if has_data else None
    raw = (call.error_message or "").encode() + (dumps(call.error_data) if has_data else b"")
    return QueryResult(
        False,
        error_message=call.error_message,
        error_data=data,
        has_error_data=has_data,
        log_lines=lines,
        digest=_digest(b"error", raw),
    )


def run_subscription(
    executor: Executor,
    view: Database,
    path: str,
    args: Any,
    identity: dict[str, Any] | None,
    journal: list[str | None] | None,
) -> SubscriptionRun:
    """Run a subscribed query against `view`; a call refused before it ran
    (no such function, bad arguments) is a failed result with no reads."""
    try:
        call = executor.query_at(view, path, args, identity, journal)
    except RequestError as e:
        failed = QueryResult(
            False, error_message=e.message, digest=_digest(b"req", e.message.encode())
        )
        return failed, None, journal
    return query_result(call), call.reads, call.journal


def respond(
    kind: str, request_id: int, run: Callable[[], CallResult]
) -> tuple[dict[str, Any], CallResult | None]:
    """Run a mutation or action for a socket; its response message
    (`kind`: MutationResponse or ActionResponse), and the call (None:
    refused before it ran)."""
    base: dict[str, Any] = {"type": kind, "requestId": request_id}
    try:
        call = run()
    except RequestError as e:
        return {**base, "success": False, "result": e.message, "logLines": []}, None
    if call.ok:
        message = {**base, "success": True, "result": encode_json(call.value)}
    else:
        message = {**base, "success": False, "result": call.error_message}
        if call.error_data is not UNDEFINED:
            message["errorData"] = encode_json(call.error_data)
    message["logLines"] = call.log_lines
    return message, call


def request_key(session_id: str, request_id: int) -> Key:
    """Where a mutation request's result is recorded, in the mutation's own
    transaction: a client that reconnects and re-sends it gets the recorded
    result, and the mutation is applied once."""
    return (f"s:mutreq:{session_id}", request_id.to_bytes(8, "big"))


def _digest(kind: bytes, payload: bytes) -> bytes:
    return hashlib.blake2b(kind + b"\0" + payload, digest_size=16).digest()
