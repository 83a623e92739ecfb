"""The DynamoDB API calls of the adapter, with its error handling: batch reads
(UnprocessedKeys re-sent), the commit call (request token, in-progress
retries), retiring replaced chunks, and the Streams client. botocore is
imported on first use, not with this module.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from .dynamodb_items import (
    AttrMap,
    ChunkRef,
    Failure,
    chunk_keys,
    classify_cancellation,
    decode_key,
    encode_key,
)
from .dynamodb_table import TTL_ATTRIBUTE
from .port import Key, Op, StoreError, TransactionConflict

__all__ = [
    "CHUNK_RETENTION_SECONDS",
    "Conflict",
    "aws_errors",
    "batch_get",
    "batch_write",
    "call",
    "conditional_transaction",
    "error_code",
    "retire_chunks",
    "send_transaction",
    "streams_client_for",
    "transact_get",
    "write_each",
]

log = logging.getLogger("runtime.store.dynamodb")

CHUNK_RETENTION_SECONDS = 2 * 24 * 3600
"""A superseded chunk expires this long after it was replaced: past the
stream's 24 h, so the feed can rebuild any old value it still holds."""


@cache
def aws_errors() -> tuple[type[Exception], ...]:
    """botocore's ClientError and BotoCoreError (imported on first use)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


def error_code(e: Exception) -> tuple[str, str]:
    """(code, message) of an AWS error; ("", str(e)) for others."""
    response = getattr(e, "response", None) or {}
    err = response.get("Error", {})
    return str(err.get("Code", "")), str(err.get("Message", e))


def call(table: str, what: str, fn: Callable[..., Any], **kw: Any) -> Any:
    """`fn(**kw)`, AWS errors raised as StoreError naming the call and table."""
    try:
        return fn(**kw)
    except aws_errors() as e:
        raise StoreError(f"DynamoDB {what} on table {table} failed: {e}") from e


def batch_get(client: Any, table: str, keys: Sequence[AttrMap]) -> list[AttrMap]:
    """Strongly consistent BatchGetItem of distinct keys, 100 a call, in no
    particular order; UnprocessedKeys are re-sent (with jittered backoff when
    a call made no progress, i.e. was throttled rather than cut at 16 MB)."""
    out: list[AttrMap] = []
    for i in range(0, len(keys), 100):
        request: AttrMap = {table: {"Keys": list(keys[i : i + 100]), "ConsistentRead": True}}
        delay = 0.005
        while request:
            resp = call(table, "BatchGetItem", client.batch_get_item, RequestItems=request)
            got = resp.get("Responses", {}).get(table, [])
            out.extend(got)
            request = resp.get("UnprocessedKeys") or {}
            if request and not got:
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 1.0)
    return out


def transact_get(
    client: Any, table: str, keys: Sequence[AttrMap], attributes: Sequence[str]
) -> list[AttrMap | None]:
    """TransactGetItems of at most 100 keys: each item's `attributes` (None
    when absent), read as one snapshot that no write transaction is half
    through. A cancellation (a write transaction in progress on one of the
    items) is retried with backoff; one that persists is a TransactionConflict."""
    names = {f"#{a}": a for a in attributes}
    projection = ", ".join(names)
    items = [
        {
            "Get": {
                "TableName": table,
                "Key": dict(k),
                "ProjectionExpression": projection,
                "ExpressionAttributeNames": names,
            }
        }
        for k in keys
    ]
    delay = 0.005
    for _ in range(6):
        try:
            resp = client.transact_get_items(TransactItems=items)
        except aws_errors() as e:
            code, message = error_code(e)
            if code != "TransactionCanceledException":
                raise StoreError(
                    f"DynamoDB TransactGetItems on table {table} failed: "
                    f"{code or type(e).__name__}: {message}"
                ) from e
        else:
            return [r.get("Item") or None for r in resp.get("Responses", [])]
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 0.2)
    raise TransactionConflict([], "TransactGetItems kept meeting write transactions in progress")


def send_transaction(client: Any, table: str, items: list[AttrMap]) -> list[AttrMap] | None:
    """One commit: None when applied, else the cancellation reasons. A fresh
    ClientRequestToken, kept while DynamoDB says the first attempt is still in
    progress (so the commit applies at most once)."""
    token = uuid.uuid4().hex
    delay = 0.02
    for _ in range(8):
        try:
            client.transact_write_items(TransactItems=items, ClientRequestToken=token)
            return None
        except aws_errors() as e:
            code, message = error_code(e)
            if code == "TransactionCanceledException":
                response: AttrMap = getattr(e, "response", {})
                reasons: list[AttrMap] = response.get("CancellationReasons") or []
                return reasons or [{"Code": "TransactionConflict", "Message": message}]
            if code != "TransactionInProgressException":
                raise StoreError(
                    f"DynamoDB TransactWriteItems on table {table} failed: "
                    f"{code or type(e).__name__}: {message}"
                ) from e
        time.sleep(delay)
        delay *= 2
    raise StoreError(
        f"DynamoDB TransactWriteItems on table {table}: outcome unknown "
        f"(request token {token} stayed in progress)"
    )


def retire_chunks(client: Any, table: str, refs: Iterable[ChunkRef]) -> None:
    """Let the chunks of replaced values expire (best effort: the commit is done)."""
    expiry = {"N": str(int(time.time()) + CHUNK_RETENTION_SECONDS)}
    for ref in refs:
        for key in chunk_keys(ref):
            try:
                client.update_item(
                    TableName=table,
                    Key=key,
                    UpdateExpression="SET #x = :x",
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeNames={"#x": TTL_ATTRIBUTE},
                    ExpressionAttributeValues={":x": expiry},
                )
            except aws_errors() as e:
                if error_code(e)[0] != "ConditionalCheckFailedException":
                    log.warning("could not mark replaced chunk %r to expire: %s", key, e)


def streams_client_for(client: Any, session: Any = None) -> Any:
    """A Streams client for the same place as `client`: DynamoDB Local and
    LocalStack serve streams at the DynamoDB endpoint; on AWS the endpoint is
    another host, which boto3 resolves (honouring AWS_ENDPOINT_URL_DYNAMODBSTREAMS).
    Credentials come from `session`, else the environment's chain (a fresh
    session, not boto3's cached default): give the store a `streams_client`
    when its client has explicit credentials."""
    import boto3

    endpoint = str(client.meta.endpoint_url)
    host = endpoint.split("://", 1)[-1].split("/", 1)[0]
    custom = not (host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn"))
    return (session or boto3.session.Session()).client(
        "dynamodbstreams",
        region_name=client.meta.region_name,
        endpoint_url=endpoint if custom else None,
    )


_TRANSIENT = {
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
}
"""Cancellation reasons that a re-run of the mutation can get past."""

_CHUNK_ROUNDS = 5
"""Attempts of one commit while chunked old values keep changing."""


class Conflict(TransactionConflict):
    """A TransactionConflict that carries the items of the failed ops a large
    commit holds locks on (`locked`), for the store to resolve them."""

    def __init__(self, keys: Sequence[Key], reason: str, locked: list[AttrMap]) -> None:
        super().__init__(keys, reason)
        self.locked = locked


def conditional_transaction(
    client: Any,
    table: str,
    ops: Sequence[Op],
    build: Callable[[Mapping[Key, ChunkRef]], list[AttrMap]],
) -> dict[Key, ChunkRef]:
    """Send the TransactWriteItems `build(pinned)` (entry i carries op i's
    condition) until it applies, pinning chunked old values the cancellation
    reveals; return the pinned chunks (the caller retires them once the
    values are replaced for good). A failed expectation raises `Conflict`
    naming the keys; transient cancellations `TransactionConflict([])`;
    others `StoreError`."""
    pinned: dict[Key, ChunkRef] = {}
    for _ in range(_CHUNK_ROUNDS):
        reasons = send_transaction(client, table, build(pinned))
        if reasons is None:
            return pinned
        failure = classify_cancellation(ops, reasons, pinned)
        if failure.unknown:
            read = {decode_key(r): r for r in batch_get(client, table, _keys(failure.unknown))}
            back: dict[Key, Mapping[str, Any] | None] = {k: read.get(k) for k in failure.unknown}
            failure = classify_cancellation(ops, reasons, pinned, back)
        if failure.failed:
            raise Conflict(failure.failed, "expected versions changed", failure.locked)
        if failure.pins:
            for key, ref in failure.pins.items():
                if ref is None:
                    pinned.pop(key, None)
                else:
                    pinned[key] = ref
            continue
        _raise_cancelled(failure)
    raise TransactionConflict([], "large values kept being replaced under this transaction")


def _keys(keys: Sequence[Key]) -> list[AttrMap]:
    return [encode_key(k) for k in keys]


def _raise_cancelled(failure: Failure) -> None:
    reason = "; ".join(failure.messages) or ", ".join(failure.codes)
    if set(failure.codes) <= _TRANSIENT:
        raise TransactionConflict([], f"DynamoDB cancelled the transaction: {reason}")
    raise StoreError(f"DynamoDB cancelled the transaction ({', '.join(failure.codes)}): {reason}")


def batch_write(client: Any, table: str, requests: Sequence[AttrMap]) -> None:
    """BatchWriteItem of `requests` ({"PutRequest": ...} / {"DeleteRequest": ...}
    on distinct keys), 25 a call; UnprocessedItems re-sent with backoff."""
    for i in range(0, len(requests), 25):
        pending: AttrMap = {table: list(requests[i : i + 25])}
        delay = 0.005
        while pending:
            resp = call(table, "BatchWriteItem", client.batch_write_item, RequestItems=pending)
            left = resp.get("UnprocessedItems") or {}
            if left and len(left.get(table, [])) == len(pending[table]):
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 1.0)
            pending = left


def write_each(client: Any, table: str, entries: Sequence[AttrMap]) -> None:
    """Each TransactWriteItems entry (Update or Delete) as its own conditional
    write; a failed condition is not an error (the write was not needed)."""
    for entry in entries:
        ((kind, params),) = entry.items()
        fn = client.update_item if kind == "Update" else client.delete_item
        try:
            fn(**params)
        except aws_errors() as e:
            if error_code(e)[0] != "ConditionalCheckFailedException":
                raise StoreError(f"DynamoDB {kind}Item on table {table} failed: {e}") from e
