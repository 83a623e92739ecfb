"""The harness's SQS and EventBridge Scheduler: where scheduled work waits,
and what delivers it to the scheduler Lambda with AWS's event shapes.

The Lambdas' boto3 calls (the stream function's SendMessage and
CreateSchedule, deploy's cron schedules) go to moto's server, started here
on loopback (`AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL_SCHEDULER`), which
keeps queues and schedules and honours SQS delays. moto neither runs Lambda
event source mappings nor fires schedules; this module does:

- `SqsPoller`: Lambda's SQS event source mapping. Threads long-poll the
  queue (10 messages at most), invoke the function with an SQS event
  (`Records[]`: messageId, receiptHandle, body, attributes,
  messageAttributes, md5OfBody, eventSource `aws:sqs`, eventSourceARN,
  awsRegion) and delete what succeeded: everything, or with
  `batchItemFailures` all but the messages named (those come back after
  the queue's visibility timeout). A handler that raises deletes nothing.
- `ScheduleFirer`: EventBridge Scheduler. A thread reads the group's
  schedules (twice a second: the Lambdas create them through moto, so
  nothing tells it) and fires each when due (`schedule_expressions.py`):
  the target's Input, `<aws.scheduler.scheduled-time>` replaced by the
  time it fired for, is sent to the queue (an SQS ARN) or given to the
  function (a Lambda ARN) as its event, as Scheduler's direct invoke does.
  A one-time schedule with ActionAfterCompletion DELETE is then deleted. A
  recurring schedule fires once for its latest due time (no catch-up
  burst after a pause), as a harness that was stopped should.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .functions import ACCOUNT_ID, REGION, LambdaFunction
from .moto_server import running_moto_server
from .schedule_expressions import next_fire

__all__ = [
    "JobsAws",
    "ScheduleFirer",
    "SqsPoller",
    "running_jobs_aws",
    "setup_jobs",
]

log = logging.getLogger("runtime.emulator")

SCHEDULE_LIST_SECONDS = 0.5
"""How often the firer re-reads the group's schedules."""
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"


@dataclass(frozen=True)
class JobsAws:
    """The queue and schedule group of the harness's stack."""

    endpoint: str
    queue_url: str
    queue_arn: str
    group: str
    role_arn: str
    function_arn: str
    """The scheduler function's ARN (the sweep's and the crons' target)."""

    def env(self) -> dict[str, str]:
        """The Lambdas' environment for scheduling (template.yaml's)."""
        return {
            "AWS_ENDPOINT_URL_SQS": self.endpoint,
            "AWS_ENDPOINT_URL_SCHEDULER": self.endpoint,
            "PYCONVEX_JOBS_QUEUE_URL": self.queue_url,
            "PYCONVEX_JOBS_QUEUE_ARN": self.queue_arn,
            "PYCONVEX_SCHEDULE_GROUP": self.group,
            "PYCONVEX_SCHEDULER_ROLE_ARN": self.role_arn,
        }


def running_jobs_aws() -> contextlib.AbstractContextManager[str]:
    """moto's server (SQS and Scheduler) on a free loopback port, stopped on exit."""
    return running_moto_server()


def setup_jobs(
    endpoint: str, *, queue: str, group: str, function: str, visibility_timeout: int = 60
) -> JobsAws:
    """Create the stack's queue, schedule group and sweep schedule (as
    template.yaml's JobsQueue, ScheduleGroup and SweepSchedule)."""
    import boto3

    sqs = boto3.client("sqs", endpoint_url=endpoint)
    scheduler = boto3.client("scheduler", endpoint_url=endpoint)
    url = sqs.create_queue(
        QueueName=queue, Attributes={"VisibilityTimeout": str(visibility_timeout)}
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    with contextlib.suppress(scheduler.exceptions.ConflictException):
        scheduler.create_schedule_group(Name=group)
    jobs = JobsAws(
        endpoint=endpoint,
        queue_url=url,
        queue_arn=arn,
        group=group,
        role_arn=f"arn:aws:iam::{ACCOUNT_ID}:role/{group}-scheduler-invoke",
        function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function}",
    )
    with contextlib.suppress(scheduler.exceptions.ConflictException):
        scheduler.create_schedule(
            Name=f"{group}-sweep",
            GroupName=group,
            ScheduleExpression="rate(1 minute)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={
                "Arn": jobs.function_arn,
                "RoleArn": jobs.role_arn,
                "Input": json.dumps({"pyconvex": "sweep"}),
            },
        )
    return jobs


# ---- SQS -> Lambda -----------------------------------------------------------------


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """ReceiveMessage's messages as the SQS event Lambda gives the function."""
    records = []
    for m in messages:
        records.append(
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes", {})),
                "messageAttributes": dict(m.get("MessageAttributes", {})),
                "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
        )
    return {"Records": records}


class SqsPoller:
    """Lambda's event source mapping on the jobs queue: `concurrency` pollers,
    each receiving and invoking in turn (as Lambda runs that many batches at once)."""

    def __init__(
        self, sqs: Any, jobs: JobsAws, function: LambdaFunction, *, concurrency: int = 4
    ) -> None:
        self._sqs = sqs
        self._jobs = jobs
        self._function = function
        self._concurrency = concurrency
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.invocations = 0

    def start(self) -> None:
        for i in range(self._concurrency):
            thread = threading.Thread(target=self._run, name=f"sqs-poller-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once(wait=1)
            except Exception:
                log.exception("polling the jobs queue failed")
                self._stop.wait(1)

    def poll_once(self, wait: int = 0) -> int:
        """Receive one batch and invoke the function with it; the messages received."""
        answer = self._sqs.receive_message(
            QueueUrl=self._jobs.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = answer.get("Messages", [])
        if not messages:
            return 0
        self.invocations += 1
        try:
            result = self._function.invoke(sqs_event(messages, self._jobs.queue_arn))
        except Exception:
            log.exception("the scheduler function failed on %d messages", len(messages))
            return len(messages)
        failed = set()
        if isinstance(result, dict):
            for failure in result.get("batchItemFailures") or []:
                failed.add(failure.get("itemIdentifier"))
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._jobs.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        return len(messages)


# ---- Scheduler -----------------------------------------------------------------------


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Tracked:
    expression: str
    created: float
    next: float | None


class ScheduleFirer:
    """EventBridge Scheduler for the harness's group (see the module docstring)."""

    def __init__(
        self,
        scheduler: Any,
        sqs: Any,
        jobs: JobsAws,
        functions: dict[str, LambdaFunction],
        *,
        clock: Any = time.time,
    ) -> None:
        """`functions`: the Lambda functions by name a target ARN may name."""
        self._scheduler = scheduler
        self._sqs = sqs
        self._jobs = jobs
        self._functions = functions
        self._clock = clock
        self._tracked: dict[str, _Tracked] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(8, thread_name_prefix="scheduler-invoke")
        self.fired: list[tuple[str, float]] = []

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="schedule-firer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.fire_due()
            except Exception:
                log.exception("firing schedules failed")
            self._stop.wait(SCHEDULE_LIST_SECONDS)

    def _schedules(self) -> list[dict[str, Any]]:
        names: list[str] = []
        kw: dict[str, Any] = {"GroupName": self._jobs.group}
        while True:
            page = self._scheduler.list_schedules(**kw)
            names += [s["Name"] for s in page.get("Schedules", []) if s.get("State") != "DISABLED"]
            if not page.get("NextToken"):
                break
            kw["NextToken"] = page["NextToken"]
        out = []
        for name in names:
            with contextlib.suppress(self._scheduler.exceptions.ResourceNotFoundException):
                out.append(self._scheduler.get_schedule(GroupName=self._jobs.group, Name=name))
        return out

    def fire_due(self) -> int:
        """Fire every schedule that is due now; how many fired."""
        now = self._clock()
        fired = 0
        seen = set()
        for schedule in self._schedules():
            name, expression = schedule["Name"], schedule["ScheduleExpression"]
            seen.add(name)
            tracked = self._tracked.get(name)
            if tracked is None or tracked.expression != expression:
                created = _seconds(schedule.get("CreationDate"), now)
                # a one-time schedule whose time has passed fires at once
                since = 0.0 if expression.startswith("at(") else created - 1e-6
                first = next_fire(expression, since, created)
                tracked = _Tracked(expression, created, first)
                self._tracked[name] = tracked
            if tracked.next is None or tracked.next > now:
                continue
            due = tracked.next
            # the latest due time only: a recurring schedule does not catch up
            later = next_fire(expression, due, tracked.created)
            while later is not None and later <= now:
                due, later = later, next_fire(expression, later, tracked.created)
            tracked.next = later
            self._fire(schedule, due)
            fired += 1
            if later is None and schedule.get("ActionAfterCompletion") == "DELETE":
                with contextlib.suppress(self._scheduler.exceptions.ResourceNotFoundException):
                    self._scheduler.delete_schedule(GroupName=self._jobs.group, Name=name)
        for name in set(self._tracked) - seen:
            del self._tracked[name]
        return fired

    def _fire(self, schedule: dict[str, Any], due: float) -> None:
        target = schedule["Target"]
        arn: str = target["Arn"]
        payload = str(target.get("Input", "{}")).replace(SCHEDULED_TIME, _iso(due))
        self.fired.append((schedule["Name"], due))
        if arn.startswith("arn:aws:sqs:"):
            self._sqs.send_message(QueueUrl=self._queue_url(arn), MessageBody=payload)
            return
        if arn.startswith("arn:aws:lambda:"):
            function = self._functions.get(arn.rsplit(":", 1)[1])
            if function is None:
                log.error("schedule %s targets %s: no such function here", schedule["Name"], arn)
                return
            event = json.loads(payload)
            self._pool.submit(self._invoke, function, event, schedule["Name"])
            return
        log.error(
            "schedule %s targets %s: not emulated (SQS and Lambda are)", schedule["Name"], arn
        )

    def _queue_url(self, arn: str) -> str:
        if arn == self._jobs.queue_arn:
            return self._jobs.queue_url
        return str(self._sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[1])["QueueUrl"])

    @staticmethod
    def _invoke(function: LambdaFunction, event: dict[str, Any], name: str) -> None:
        try:
            function.invoke(event)
        except Exception:
            log.exception("schedule %s: the function %s failed", name, function.name)


def _seconds(value: Any, default: float) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    return default
