"""Query results as the sync protocol carries them, shared by both shells
(the in-process hub and the store-backed sync of the AWS shell): running a
subscribed query, its result's digest, the response to a mutation or action."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from runtime.auth import Unauthenticated
from runtime.database import Database
from runtime.database.readwrite import ReadSet
from runtime.functions.executor import CallResult, Executor, RequestError
from runtime.functions.failure import client_message
from runtime.values import UNDEFINED, dumps, encode_json

from .journal import Journals
from .messages import Authenticate, ClientMessage
from .session import QueryResult
from .wire_text import pre_encoded

__all__ = [
    "SubscriptionRun",
    "query_result",
    "refused_message",
    "respond",
    "run_subscription",
    "verified_token",
]

SubscriptionRun = tuple[QueryResult, ReadSet | None, list[str | None] | None]
"""(the result, what the run read (None: refused before running), its journal)."""


def query_result(call: CallResult, journal: str | None = None, *, prod: bool) -> QueryResult:
    """`journal`: the signed journal of the run (see `journal.py`). In
    production no log lines reach clients (as on the HTTP API)."""
    lines = () if prod else tuple(call.log_lines)
    if call.ok:
        encoded = pre_encoded(encode_json(call.value))  # once for all its subscribers
        digest = _digest(b"ok", dumps(call.value) + b"\0" + (journal or "").encode())
        return QueryResult(True, encoded, log_lines=lines, digest=digest, journal=journal)
    has_data = call.error_data is not UNDEFINED
    data = encode_json(call.error_data) if has_data else None
    # The request id is left out: a re-run that fails the same way is no news.
    shown = b"" if prod else (call.error_text or "").encode("utf-8", "surrogatepass")
    raw = shown + b"\0" + (dumps(call.error_data) if has_data else b"")
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
    journals: Journals,
    *,
    validate: bool = True,
) -> SubscriptionRun:
    """Run a subscribed query against `view`; a call refused before it ran
    (no such function, bad arguments) is a failed result with no reads.
    The result's journal is signed with `journals`. `validate`: as
    `Database.query`'s (False: the caller checks the reads)."""
    try:
        call = executor.query_at(view, path, args, identity, journal, validate=validate)
    except RequestError as e:
        prod = executor.prod
        failed = QueryResult(
            False,
            error_message=refused_message(e, prod=prod),
            digest=_digest(b"req", b"" if prod else e.message.encode("utf-8", "surrogatepass")),
        )
        return failed, None, journal
    signed = journals.sign(path, args, call.journal)
    return query_result(call, signed, prod=executor.prod), call.reads, call.journal


def respond(
    kind: str, request_id: int, run: Callable[[], CallResult], *, prod: bool
) -> tuple[dict[str, Any], CallResult | None]:
    """Run a mutation or action for a socket; its response message
    (`kind`: MutationResponse or ActionResponse), and the call (None:
    refused before it ran). In production its log lines stay on the
    server (as on the HTTP API)."""
    base: dict[str, Any] = {"type": kind, "requestId": request_id}
    try:
        call = run()
    except RequestError as e:
        failed = refused_message(e, prod=prod)
        return {**base, "success": False, "result": failed, "logLines": []}, None
    if call.ok:
        message = {**base, "success": True, "result": encode_json(call.value)}
    else:
        message = {**base, "success": False, "result": call.error_message}
        if call.error_data is not UNDEFINED:
            message["errorData"] = encode_json(call.error_data)
    message["logLines"] = [] if prod else call.log_lines
    return message, call


def refused_message(e: RequestError, *, prod: bool) -> str:
    """A call refused before it ran, as the socket's clients read it (as
    Convex answers: a failed call, `[Request ID: x] Server Error` and, not
    in production, the reason)."""
    return client_message(e.request_id, f"{e.message}\n", prod=prod)


def _digest(kind: bytes, payload: bytes) -> bytes:
    return hashlib.blake2b(kind + b"\0" + payload, digest_size=16).digest()


TokenCheck = Callable[[str], dict[str, Any]]


def verified_token(verify: TokenCheck | None, message: ClientMessage | None) -> TokenCheck | None:
    """For an Authenticate carrying a user token: its outcome, found before a
    shell takes its lock or lease (a key fetch must not stall others), as a
    check that returns the identity or raises the refusal. None for any other
    message, or when the backend verifies no tokens."""
    if verify is None:
        return None
    if not isinstance(message, Authenticate) or message.token_type != "User":
        return None
    try:
        identity = verify(message.value or "")
    except Unauthenticated as e:
        refused = e

        def refuse(_: str) -> dict[str, Any]:
            raise refused

        return refuse
    return lambda _: identity
