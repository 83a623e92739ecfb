"""Dispatch of scheduled jobs on AWS: a queue record that appears in the
table's stream becomes an SQS message that arrives when the job is due.

A job's queue record (`runtime/functions/scheduler.py`: partition
`s:jobq:<shard>`, sort key = due time in ms as 8 big-endian bytes + 16 random
bytes, value = the job id) says "look at this job at this time". The stream
function sees it written and hands it on:

- due within SQS's longest delay (15 minutes): `SendMessage` to JobsQueue
  with `DelaySeconds` = the seconds until due, rounded up;
- later: a one-time EventBridge Scheduler schedule `at(...)` in the stack's
  group, deleted after it fires, whose target sends the same message to
  JobsQueue. Scheduler fires within the minute after the time it is given
  (its precision is 60 s), so the schedule is set a minute early, at the
  start of a minute (`schedule_time`): it fires before the job is due, and
  the scheduler function sends the message back with the seconds left. Its name comes from the
  record (`job-<sort key in hex>`), so a re-delivered stream record makes
  the same schedule again, which Scheduler refuses (ConflictException):
  dispatch is idempotent.

The message body names the record: {"job": id, "record": base64 of the sort
key, "shard": n}; the scheduler function (`runtime/aws/scheduler.py`) runs it
through the job runner, which loads the job and decides from its state. So a
lost, duplicated or late message never breaks a guarantee: the job document
is the truth, the queue a hint, and the per-minute sweep re-sends records
that dispatch missed.

Stream records come in the Lambda event's shape (binary values as base64
text); a queue record is live once its item has a version `n`: an INSERT, or
(a large commit, `runtime/store/dynamodb_large.py`) the MODIFY that applies a
placeholder its lock created. Lock and unlock writes of a live record change
neither, and are skipped.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from runtime.functions.scheduler import QUEUE_PREFIX
from runtime.limits import SQS_BATCH_MESSAGES, SQS_MAX_DELAY_SECONDS
from runtime.store.dynamodb_items import KEY_PREFIX
from runtime.store.port import Key

from .clients import LazyClient
from .settings import Settings

__all__ = [
    "JOB_QUEUE_PREFIX",
    "Dispatcher",
    "QueueRecord",
    "at_expression",
    "dispatch_stream_records",
    "dispatcher_for",
    "parse_body",
    "queue_record_of",
    "queue_write",
    "schedule_name",
    "schedule_time",
]

_log = logging.getLogger("runtime.aws")

JOB_QUEUE_PREFIX = QUEUE_PREFIX
"""Partition prefix of the job queue records (runtime/functions/scheduler.py)."""


@dataclass(frozen=True, slots=True)
class QueueRecord:
    """One queue record: where it is and what it points at."""

    key: Key
    job_id: str

    @property
    def due_ms(self) -> int:
        return int.from_bytes(self.key[1][:8], "big")

    @property
    def shard(self) -> int:
        return int(self.key[0].removeprefix(JOB_QUEUE_PREFIX))

    def body(self) -> str:
        """The message the scheduler function receives for this record."""
        record = base64.b64encode(self.key[1]).decode()
        return json.dumps({"job": self.job_id, "record": record, "shard": self.shard})


def parse_body(body: str) -> QueueRecord:
    """The record a job message names (the inverse of `QueueRecord.body`);
    ValueError when the body is not one."""
    try:
        data = json.loads(body)
        job, record, shard = data["job"], data["record"], data["shard"]
        if not isinstance(job, str) or not isinstance(shard, int):
            raise TypeError
        sort = base64.b64decode(record, validate=True)
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"not a job message: {body[:200]!r} ({e!r})") from None
    if len(sort) < 8:
        raise ValueError(f"not a job message: its record {record!r} has no due time")
    return QueueRecord((f"{JOB_QUEUE_PREFIX}{shard}", sort), job)


def _binary(value: Any) -> bytes:
    return base64.b64decode(value) if isinstance(value, str) else bytes(value)


def queue_record_of(record: Mapping[str, Any]) -> QueueRecord | None:
    """The queue record a stream record makes live (Lambda's shape, or
    boto3's: binary as base64 text or bytes), else None."""
    data = record.get("dynamodb", {})
    pk = data.get("Keys", {}).get("pk", {}).get("S", "")
    if not pk.startswith(JOB_QUEUE_PREFIX) or record.get("eventName") not in ("INSERT", "MODIFY"):
        return None
    new, old = data.get("NewImage") or {}, data.get("OldImage") or {}
    if "n" not in new or "n" in old or "v" not in new:
        return None  # not live yet (a lock's placeholder), or a lock on a live record
    # The image's key, not `Keys`: moto's stream gives Keys' binaries base64-encoded twice.
    sort = _binary(new["sk"]["B"]).removeprefix(KEY_PREFIX)
    return QueueRecord((pk, sort), _binary(new["v"]["B"]).decode())


def queue_write(record: Mapping[str, Any]) -> bool:
    """The stream mapping's filter for queue records (template.yaml's third
    `FilterCriteria` pattern; the local harness applies it): an INSERT or
    MODIFY of a `s:jobq:` item that has a version. `queue_record_of` then
    keeps the ones that just became live."""
    data = record.get("dynamodb", {})
    pk = data.get("Keys", {}).get("pk", {}).get("S", "")
    new = data.get("NewImage") or {}
    return (
        pk.startswith(JOB_QUEUE_PREFIX)
        and record.get("eventName") in ("INSERT", "MODIFY")
        and "N" in new.get("n", {})
    )


def schedule_name(record: QueueRecord) -> str:
    """The one-time schedule of a record: unique per record, at most 64
    characters (`job-` and 48 hex digits)."""
    return "job-" + record.key[1].hex()


def schedule_time(due_ms: int) -> int:
    """When a one-time schedule for `due_ms` is set: the start of the minute
    a minute before (it fires within that minute, never after `due_ms`)."""
    return (due_ms - 60_000) // 60_000 * 60_000


def at_expression(due_ms: int) -> str:
    """`at(...)` of the first whole second at or after `due_ms` (UTC): a job
    never fires early by the rounding."""
    moment = datetime.fromtimestamp(math.ceil(due_ms / 1000), UTC)
    return f"at({moment.strftime('%Y-%m-%dT%H:%M:%S')})"


def _error_code(e: Exception) -> str:
    response = getattr(e, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class Dispatcher:
    """Sends queue records to JobsQueue (`sqs`, `scheduler`: boto3 clients)."""

    def __init__(
        self,
        sqs: Any,
        scheduler: Any,
        *,
        queue_url: str,
        queue_arn: str | None,
        group: str | None,
        role_arn: str | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sqs = sqs
        self._scheduler = scheduler
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._group = group
        self._role_arn = role_arn
        self._clock = clock

    def delay_seconds(self, due_ms: int) -> int:
        """Seconds from now until `due_ms`, rounded up (0 when due)."""
        return max(0, math.ceil((due_ms - self._clock() * 1000) / 1000))

    def dispatch(self, records: Sequence[QueueRecord]) -> int | None:
        """Dispatch `records` in order; the index of the first that failed
        (it and the later ones are to be re-delivered), or None."""
        near: list[tuple[int, QueueRecord, int]] = []
        failed: int | None = None
        for i, record in enumerate(records):
            delay = self.delay_seconds(record.due_ms)
            if delay <= SQS_MAX_DELAY_SECONDS:
                near.append((i, record, delay))
                continue
            try:
                self.create_schedule(record)
            except Exception:
                _log.exception("creating the schedule of job %s failed", record.job_id)
                failed = i
                break
        for start in range(0, len(near), SQS_BATCH_MESSAGES):
            batch = near[start : start + SQS_BATCH_MESSAGES]
            if failed is not None:
                batch = [n for n in batch if n[0] < failed]
            if not batch:
                break
            first = self._send_batch(batch)
            if first is not None:
                failed = first if failed is None else min(failed, first)
        return failed

    def send(self, record: QueueRecord, delay: int | None = None) -> None:
        """One message for `record` (the delay until it is due unless given)."""
        seconds = self.delay_seconds(record.due_ms) if delay is None else delay
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=record.body(),
            DelaySeconds=min(seconds, SQS_MAX_DELAY_SECONDS),
        )

    def send_raw(self, body: str, delay: int) -> None:
        """One message of another kind (a cron tick) with `delay` seconds."""
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=body,
            DelaySeconds=max(0, min(delay, SQS_MAX_DELAY_SECONDS)),
        )

    def _send_batch(self, batch: list[tuple[int, QueueRecord, int]]) -> int | None:
        entries = [
            {"Id": str(i), "MessageBody": record.body(), "DelaySeconds": delay}
            for i, record, delay in batch
        ]
        try:
            answer = self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
        except Exception:
            _log.exception("sending %d job messages failed", len(entries))
            return batch[0][0]
        failures = [int(f["Id"]) for f in answer.get("Failed", [])]
        if failures:
            _log.error("SQS refused job messages: %s", answer.get("Failed"))
        return min(failures) if failures else None

    def create_schedule(self, record: QueueRecord) -> None:
        """The one-time schedule that sends `record`'s message when it is due
        (one that exists already was made by an earlier delivery: done)."""
        if not (self._queue_arn and self._group and self._role_arn):
            raise RuntimeError(
                "a job due in more than 15 minutes needs an EventBridge Scheduler schedule: "
                "set PYCONVEX_JOBS_QUEUE_ARN, PYCONVEX_SCHEDULE_GROUP and "
                "PYCONVEX_SCHEDULER_ROLE_ARN (template.yaml sets them for the stream function)"
            )
        try:
            self._scheduler.create_schedule(
                Name=schedule_name(record),
                GroupName=self._group,
                ScheduleExpression=at_expression(schedule_time(record.due_ms)),
                ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"},
                ActionAfterCompletion="DELETE",
                Target={
                    "Arn": self._queue_arn,
                    "RoleArn": self._role_arn,
                    "Input": record.body(),
                },
            )
        except Exception as e:
            if _error_code(e) != "ConflictException":
                raise


_dispatchers: dict[int, Dispatcher] = {}


def dispatcher_for(settings: Settings) -> Dispatcher | None:
    """The container's dispatcher (None when the settings name no queue)."""
    if settings.jobs_queue_url is None:
        return None
    found = _dispatchers.get(id(settings))
    if found is None:
        found = Dispatcher(
            LazyClient("sqs"),
            LazyClient("scheduler"),
            queue_url=settings.jobs_queue_url,
            queue_arn=settings.jobs_queue_arn,
            group=settings.schedule_group,
            role_arn=settings.scheduler_role_arn,
        )
        _dispatchers.clear()  # one container, one settings object
        _dispatchers[id(settings)] = found
    return found


def dispatch_stream_records(
    records: Sequence[Mapping[str, Any]], dispatcher: Dispatcher | None
) -> int | None:
    """Dispatch the queue records among a stream batch's records (Lambda's
    shape); the index in `records` of the first whose dispatch failed, or
    None. Without a dispatcher the records are left to nobody: an error is
    logged (the deployment is missing its queue settings), none is failed,
    so the shard is not held up for ever."""
    found = [(i, q) for i, r in enumerate(records) if (q := queue_record_of(r)) is not None]
    if not found:
        return None
    if dispatcher is None:
        _log.error(
            "%d scheduled jobs not dispatched: PYCONVEX_JOBS_QUEUE_URL is not set "
            "(template.yaml sets it for the stream function)",
            len(found),
        )
        return None
    first = dispatcher.dispatch([q for _, q in found])
    return None if first is None else found[first][0]
