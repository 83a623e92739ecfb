"""Stream Lambda: a DynamoDB Streams batch -> live queries refreshed, pushes.

For each record (in shard order) the document it wrote, and the shared
queries whose read sets it touches; then each touched query is refreshed
once for the whole batch and every connection subscribed to a query whose
result changed gets a push. Records of the platform's own state (leases,
sessions, filings) carry no feed marker and are skipped.

Partial batch failures: a record that cannot be read, or whose queries
could not be refreshed or pushed, is reported in `batchItemFailures` (the
first such record; Lambda re-delivers from there), so the records before it
are checkpointed and one bad record does not hold back the shard forever
(the event source mapping's retry limit and on-failure queue take it out).

Scheduled jobs: the new queue records in the batch (the mapping's filter
passes them too) are dispatched first (`dispatch.py`: an SQS message or a
one-time schedule); a failed dispatch fails its record like any other.
"""

from __future__ import annotations

from typing import Any, cast

from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent

from runtime.store.dynamodb import DynamoDBStore
from runtime.sync.changes import document_change

from .backend import lambda_backend
from .dispatch import dispatch_stream_records, dispatcher_for
from .observe import count, logger, metrics
from .stream_records import from_lambda_record
from .sync import sync_for

__all__ = ["handler"]


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = list(DynamoDBStreamEvent(event).records)
    count("stream_records", len(records))
    sync = sync_for(None, context.aws_request_id)
    store = cast(DynamoDBStore, sync.store)
    first_toucher: dict[bytes, int] = {}
    failed = _dispatch([r.raw_event for r in records])
    for i, record in enumerate(records):
        if failed is not None and i >= failed:
            break
        try:
            change = store.change_of(from_lambda_record(record.raw_event))
            found = document_change(change, sync.table_indexes) if change else None
            owners = sync.touched([found]) if found else set()
        except Exception:
            logger.exception("stream record failed", extra={"sequence": _sequence(record)})
            failed = i
            break
        for owner in owners:
            first_toucher.setdefault(owner, i)
    changed: dict[bytes, int] = {}
    for owner, i in sorted(first_toucher.items(), key=lambda item: item[1]):
        if failed is not None and i >= failed:
            continue  # re-delivered anyway
        try:
            if sync.refresh(owner):
                changed[owner] = i
        except Exception:
            logger.exception("query refresh failed", extra={"owner": owner.hex()})
            failed = i if failed is None else min(failed, i)
    blame: dict[str, int] = {}
    for owner, i in changed.items():
        for conn_id in sync.subscribers(owner):
            blame[conn_id] = min(blame.get(conn_id, i), i)
    for conn_id, i in sorted(blame.items(), key=lambda item: item[1]):
        try:
            sync.push(conn_id)
        except Exception:
            logger.exception("push failed", extra={"connection_id": conn_id})
            failed = i if failed is None else min(failed, i)
    count("stream_queries_refreshed", len(first_toucher))
    count("stream_pushes", len(blame))
    if failed is None:
        return {"batchItemFailures": []}
    count("stream_failures")
    return {"batchItemFailures": [{"itemIdentifier": _sequence(records[failed])}]}


def _dispatch(records: list[dict[str, Any]]) -> int | None:
    try:
        return dispatch_stream_records(records, dispatcher_for(lambda_backend()[1]))
    except Exception:
        logger.exception("dispatching scheduled jobs failed")
        return 0


def _sequence(record: Any) -> str:
    return str(record.raw_event.get("dynamodb", {}).get("SequenceNumber", ""))
