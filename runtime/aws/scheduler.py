"""Scheduler Lambda: runs scheduled jobs and cron ticks through the same
executor as every other function (`runtime/scheduler/runner.py`,
`runtime/scheduler/crons.py`).

Three events:
- an SQS batch from JobsQueue (`Records[]`, eventSource `aws:sqs`): each
  message names a job's queue record (`dispatch.py`) or a cron tick
  ({"cron": name, "tick": ms}: the ticks of a sub-minute interval). The
  batch's messages run side by side (each may be a 5-minute action), one
  cron's ticks in tick order (a tick older than the last is skipped). A
  message that arrives early (SQS and Scheduler round to seconds) is held
  when under SCHEDULER_EARLY_SLEEP_SECONDS early, else sent back with the
  rest of its delay. A message that fails (the runner raised: a transient
  error it did not absorb) is reported in `batchItemFailures`; SQS delivers
  it again. A body that is not a message of ours is reported too (to the
  dead-letter queue after five tries).
- the sweep ({"pyconvex": "sweep"}, every minute by SweepSchedule): queue
  records due longer ago than SWEEP_GRACE_SECONDS (dispatch missed them, or
  an action's lease ran out) are sent to the queue again, and completed
  jobs past their retention trimmed. It sends rather than runs them: an
  action takes up to 5 minutes, and the sweep must finish in one. It also
  resolves large commits whose committer died (`_recover_large_commits`).
- a cron tick ({"pyconvex": "cron", "name": name, "tick": the schedule's
  time}, by the cron's schedule that deploy made, `cron_sync.py`): the tick
  runs through `run_cron`, which runs it at most once and never alongside a
  run still going. With "every_ms" (an interval under a minute, whose
  schedule fires each minute) the minute's later ticks are sent to the
  queue with their delays.

The job document is the truth: a duplicated, late or lost message never
runs a mutation twice or an action again (runtime/scheduler/runner.py).
"""

from __future__ import annotations

import json
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from runtime.functions.cron_aws import minute_offsets
from runtime.limits import (
    LARGE_COMMIT_SWEEP,
    SCHEDULER_EARLY_SLEEP_SECONDS,
    SQS_BATCH_MESSAGES,
    SQS_MAX_DELAY_SECONDS,
    SWEEP_GRACE_SECONDS,
    SWEEP_RECORDS,
)
from runtime.scheduler.crons import run_cron
from runtime.scheduler.runner import JobRunner
from runtime.store.dynamodb import DynamoDBStore
from runtime.store.port import Store

from .backend import lambda_backend
from .dispatch import Dispatcher, QueueRecord, dispatcher_for, parse_body
from .observe import count, log_call, logger, metrics

__all__ = ["handler", "tick_ms"]

_lock = threading.Lock()
_runners: dict[int, JobRunner] = {}


def _runner(backend: Any) -> JobRunner:
    """The container's job runner, made on first use."""
    with _lock:
        runner = _runners.get(id(backend))
        if runner is None:
            _runners.clear()
            runner = _runners[id(backend)] = JobRunner(backend.executor)
        return runner


def _context() -> tuple[Dispatcher | None, Any]:
    """The container's dispatcher and backend."""
    backend, settings = lambda_backend(on_call=log_call)
    return dispatcher_for(settings), backend


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "Records" in event:
        return _batch(event["Records"])
    kind = event.get("pyconvex")
    if kind == "sweep":
        return _sweep()
    if kind == "cron":
        return _cron(event)
    raise ValueError(
        "the scheduler function takes an SQS batch, {'pyconvex': 'sweep'} or "
        f"{{'pyconvex': 'cron', 'name': ..., 'tick': ...}}, not {json.dumps(event)[:200]}"
    )


# ---- SQS batches ---------------------------------------------------------------------


def _batch(records: list[dict[str, Any]]) -> dict[str, Any]:
    dispatcher, backend = _context()
    count("scheduler_messages", len(records))

    def run_group(group: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in group if not _message(r, dispatcher, backend)]

    groups = _groups(records)
    with ThreadPoolExecutor(max(1, min(len(groups), SQS_BATCH_MESSAGES))) as pool:
        failed = [r for done in pool.map(run_group, groups) for r in done]
    order = {id(r): i for i, r in enumerate(records)}
    failed.sort(key=lambda r: order[id(r)])
    failures = [{"itemIdentifier": r["messageId"]} for r in failed]
    if failures:
        count("scheduler_failures", len(failures))
    return {"batchItemFailures": failures}


def _groups(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The batch in groups that run side by side: each job message alone,
    the ticks of one cron together in tick order (a tick older than the
    cron's last is skipped, so a cron's ticks must not race each other)."""
    groups: list[list[dict[str, Any]]] = []
    crons: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for record in records:
        try:
            data = json.loads(str(record.get("body", "")))
            name, tick = str(data["cron"]), int(data["tick"])
        except Exception:
            groups.append([record])
            continue
        crons.setdefault(name, []).append((tick, record))
    for ticks in crons.values():
        groups.append([r for _, r in sorted(ticks, key=lambda pair: pair[0])])
    return groups


def _message(record: dict[str, Any], dispatcher: Dispatcher | None, backend: Any) -> bool:
    """Run one message; whether it is done (False: SQS is to deliver it again)."""
    body = str(record.get("body", ""))
    try:
        data = json.loads(body)
        if isinstance(data, dict) and "cron" in data:
            name, tick = str(data["cron"]), int(data["tick"])
            if _early(tick, dispatcher, lambda delay: _send_tick(dispatcher, name, tick, delay)):
                return True
            run_cron(backend.executor, name, tick)
            return True
        queued = parse_body(body)
    except Exception:
        logger.exception("not a scheduler message", extra={"message_id": record.get("messageId")})
        return False
    try:
        if _early(queued.due_ms, dispatcher, lambda delay: _resend(dispatcher, queued, delay)):
            return True
        _runner(backend).run(queued.job_id, queued.key)
        return True
    except Exception:
        logger.exception("scheduled job failed", extra={"job": queued.job_id})
        return False


def _early(due_ms: int, dispatcher: Dispatcher | None, send_back: Any) -> bool:
    """Hold a message a little early; send one much too early back (True: sent back)."""
    wait = (due_ms - time.time() * 1000) / 1000
    if wait <= 0:
        return False
    if wait <= SCHEDULER_EARLY_SLEEP_SECONDS or dispatcher is None:
        time.sleep(min(wait, SCHEDULER_EARLY_SLEEP_SECONDS))
        return False
    send_back(min(math.ceil(wait), SQS_MAX_DELAY_SECONDS))
    count("scheduler_early")
    return True


def _resend(dispatcher: Dispatcher | None, queued: QueueRecord, delay: int) -> None:
    assert dispatcher is not None
    dispatcher.send(queued, delay)


def _send_tick(dispatcher: Dispatcher | None, name: str, tick: int, delay: int) -> None:
    assert dispatcher is not None
    dispatcher.send_raw(json.dumps({"cron": name, "tick": tick}), delay)


# ---- the sweep -------------------------------------------------------------------------


def _sweep() -> dict[str, Any]:
    dispatcher, backend = _context()
    runner = _runner(backend)
    now_ms = time.time() * 1000
    due = runner.due(now_ms - SWEEP_GRACE_SECONDS * 1000, SWEEP_RECORDS)
    records = [QueueRecord(key, job_id) for job_id, key in due]
    if dispatcher is not None:
        failed = dispatcher.dispatch(records)
        sent = len(records) if failed is None else failed
    else:  # no queue (a misconfigured function): run them here, as best it can
        for queued in records:
            runner.run(queued.job_id, queued.key)
        sent = len(records)
    trimmed = runner.trim(now_ms, pages=1)  # bounded: the next minute's sweep goes on
    recovered = _recover_large_commits(backend.store)
    count("sweep_resent", sent)
    logger.info("sweep", extra={"resent": sent, "trimmed": trimmed, "recovered": recovered})
    return {"resent": sent, "trimmed": trimmed, "recovered": recovered}


def _recover_large_commits(store: Store) -> int:
    """Resolve large commits whose committer died (records past their
    deadline: `runtime/store/dynamodb_large.py`). Readers and the next large
    commit resolve them too, but only those they meet; the sweep makes sure
    a crashed commit's record, payloads and locks go even on a quiet table."""
    if not isinstance(store, DynamoDBStore):
        return 0
    return store.large.recover_expired(LARGE_COMMIT_SWEEP)


# ---- cron ticks ------------------------------------------------------------------------


def tick_ms(value: Any) -> int:
    """A tick as the event gives it: Scheduler's `<aws.scheduler.scheduled-time>`
    (ISO 8601, `2026-01-01T00:00:00Z`) or epoch milliseconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    raise ValueError(f"a cron tick is an ISO 8601 time or epoch ms, not {value!r}")


def _cron(event: dict[str, Any]) -> dict[str, Any]:
    dispatcher, backend = _context()
    name = event.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"a cron event names its cron: {json.dumps(event)[:200]}")
    tick = tick_ms(event.get("tick"))
    every = event.get("every_ms")
    sent = 0
    if isinstance(every, int) and 0 < every < 60_000 and dispatcher is not None:
        for offset in minute_offsets(every)[1:]:
            later = tick + offset
            delay = max(0, math.ceil((later - time.time() * 1000) / 1000))
            dispatcher.send_raw(json.dumps({"cron": name, "tick": later}), delay)
            sent += 1
    outcome = run_cron(backend.executor, name, tick)
    return {"cron": name, "tick": tick, "outcome": str(outcome), "queued_ticks": sent}
