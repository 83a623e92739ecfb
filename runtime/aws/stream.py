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

Search: the batch's document writes to tables with search indexes are
applied to the OpenSearch engine (`search.py`) before any query is
refreshed, so a re-run search sees them; a failed apply fails the batch from
the first record with entries (applying again is harmless: entries carry
their commit timestamp as a version). A stack without an engine skips them
(logged once per container: deploy refuses such a schema, so this is a
table whose search indexes were built before the endpoint was removed).

Scheduled jobs: the new queue records in the batch (the mapping's filter
passes them too) are dispatched first (`dispatch.py`: an SQS message or a
one-time schedule); a failed dispatch fails its record like any other.
"""

from __future__ import annotations

from typing import Any, cast

from runtime.store.dynamodb import DynamoDBStore
from runtime.store.port import Change
from runtime.sync.changes import document_change

from .backend import lambda_backend
from .dispatch import dispatch_stream_records, dispatcher_for
from .observe import count, logger, metrics
from .search import search_entries
from .stream_records import from_lambda_record
from .sync import sync_for

__all__ = ["handler"]


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # The records as plain dicts (Powertools' event classes: ~20 ms of imports).
    records: list[dict[str, Any]] = list(event.get("Records") or [])
    count("stream_records", len(records))
    sync = sync_for(None, context.aws_request_id)
    store = cast(DynamoDBStore, sync.store)
    first_toucher: dict[bytes, int] = {}
    failed = _dispatch(records)
    changes: list[Change | None] = []
    for i, record in enumerate(records):
        if failed is not None and i >= failed:
            break
        try:
            change = store.change_of(from_lambda_record(record))
            changes.append(change)
            found = document_change(change, sync.table_indexes) if change else None
            owners = sync.touched([found]) if found else set()
        except Exception:
            logger.exception("stream record failed", extra={"sequence": _sequence(record)})
            failed = i
            break
        for owner in owners:
            first_toucher.setdefault(owner, i)
    failed = _feed_search(
        store, changes[: len(records) if failed is None else failed], sync, failed
    )
    # Refreshed, then pushed, several at a time (SYNC_STORED_WORKERS); a
    # failure blames the first record that touched the query or connection.
    due = [o for o, i in first_toucher.items() if failed is None or i < failed]
    blame: dict[str, int] = {}
    for owner, outcome in sync.refresh_all(due).items():
        i = first_toucher[owner]
        if isinstance(outcome, Exception):
            logger.error("query refresh failed", extra={"owner": owner.hex()}, exc_info=outcome)
            failed = i if failed is None else min(failed, i)
            continue
        for conn_id in outcome:  # its subscribers, if it changed
            blame[conn_id] = min(blame.get(conn_id, i), i)
    for conn_id, error in sync.push_all(sorted(blame, key=blame.__getitem__)).items():
        logger.error("push failed", extra={"connection_id": conn_id}, exc_info=error)
        i = blame[conn_id]
        failed = i if failed is None else min(failed, i)
    count("stream_queries_refreshed", len(first_toucher))
    count("stream_pushes", len(blame))
    if failed is None:
        return {"batchItemFailures": []}
    count("stream_failures")
    return {"batchItemFailures": [{"itemIdentifier": _sequence(records[failed])}]}


_warned_no_engine = False


def _feed_search(
    store: DynamoDBStore, changes: list[Change | None], sync: Any, failed: int | None
) -> int | None:
    """Apply the search entries of `changes` (the records before the first
    failure); the new first failure (the first record with entries) if the
    engine failed."""
    global _warned_no_engine
    found = search_entries(changes, sync.table_indexes)
    if not found:
        return failed
    engine = store.search
    if engine is None:
        if not _warned_no_engine:
            _warned_no_engine = True
            logger.warning(
                "documents of tables with search indexes were written but this stack has no "
                "OpenSearch engine: their search entries are skipped. Set the stack's "
                "OpenSearchEndpoint parameter and deploy again."
            )
        return failed
    entries = [entry for _, batch in found for entry in batch]
    try:
        engine.apply(entries)
    except Exception:
        logger.exception("search entries failed", extra={"entries": len(entries)})
        first = found[0][0]
        return first if failed is None else min(failed, first)
    count("stream_search_entries", len(entries))
    return failed


def _dispatch(records: list[dict[str, Any]]) -> int | None:
    try:
        return dispatch_stream_records(records, dispatcher_for(lambda_backend()[1]))
    except Exception:
        logger.exception("dispatching scheduled jobs failed")
        return 0


def _sequence(record: dict[str, Any]) -> str:
    return str(record.get("dynamodb", {}).get("SequenceNumber", ""))
