"""The local AWS harness's SQS and EventBridge Scheduler (runtime/emulator/
jobs.py): moto's server keeps the queue and the schedules, the harness
delivers them to the scheduler function with AWS's event shapes; and, end
to end, scheduled functions and crons on `python -m runtime aws-local`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from runtime.emulator.functions import LambdaFunction
from runtime.emulator.jobs import JobsAws, ScheduleFirer, SqsPoller, running_jobs_aws, setup_jobs
from tests.support.aws import fake_aws_env


class Recorder:
    """A Lambda handler that keeps its events and answers as told."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.fail: set[str] = set()

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        if "Records" in event:
            failed = [r["messageId"] for r in event["Records"] if r["body"] in self.fail]
            return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}
        return None


@pytest.fixture
def jobs() -> Iterator[tuple[JobsAws, Any, Any]]:
    with fake_aws_env(), running_jobs_aws() as endpoint:
        # moto's servers in one process share their state: names of the test's own
        name = f"t{uuid.uuid4().hex[:10]}"
        j = setup_jobs(endpoint, queue=f"{name}-jobs", group=name, function="t-scheduler", visibility_timeout=30)  # fmt: skip
        sqs = boto3.client("sqs", endpoint_url=endpoint)
        scheduler = boto3.client("scheduler", endpoint_url=endpoint)
        yield j, sqs, scheduler


def _counts(sqs: Any, jobs: JobsAws) -> tuple[int, int]:
    attrs = sqs.get_queue_attributes(
        QueueUrl=jobs.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


def test_the_poller_invokes_with_sqs_events_and_deletes_what_succeeded(
    jobs: tuple[JobsAws, Any, Any],
) -> None:
    j, sqs, _ = jobs
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=j.queue_url, MessageBody=body)
    recorder = Recorder()
    recorder.fail = {"b"}
    poller = SqsPoller(sqs, j, LambdaFunction("t-scheduler", recorder))
    assert poller.poll_once() == 3
    (event,) = recorder.events
    records = event["Records"]
    assert sorted(r["body"] for r in records) == ["a", "b", "c"]
    for r in records:
        assert r["eventSource"] == "aws:sqs" and r["eventSourceARN"] == j.queue_arn
        assert r["messageId"] and r["receiptHandle"] and r["md5OfBody"]
        assert r["attributes"]["ApproximateReceiveCount"] == "1"
        assert "SentTimestamp" in r["attributes"] and r["awsRegion"] == "us-east-1"
    # a and c deleted; b in flight until its visibility timeout, then again
    assert _counts(sqs, j) == (0, 1)


def test_a_handler_that_raises_deletes_nothing(jobs: tuple[JobsAws, Any, Any]) -> None:
    j, sqs, _ = jobs
    sqs.send_message(QueueUrl=j.queue_url, MessageBody="x")

    def broken(event: dict[str, Any], context: Any) -> Any:
        raise RuntimeError("boom")

    assert SqsPoller(sqs, j, LambdaFunction("t-scheduler", broken)).poll_once() == 1
    assert _counts(sqs, j) == (0, 1)


def test_a_delayed_message_is_delivered_once_due(jobs: tuple[JobsAws, Any, Any]) -> None:
    j, sqs, _ = jobs
    sqs.send_message(QueueUrl=j.queue_url, MessageBody="later", DelaySeconds=1)
    recorder = Recorder()
    poller = SqsPoller(sqs, j, LambdaFunction("t-scheduler", recorder))
    assert poller.poll_once() == 0  # not yet
    assert poller.poll_once(wait=5) == 1 or poller.poll_once(wait=5) == 1
    assert recorder.events[-1]["Records"][0]["body"] == "later"


def test_the_firer_sends_a_due_one_time_schedule_to_the_queue_and_deletes_it(
    jobs: tuple[JobsAws, Any, Any],
) -> None:
    j, sqs, scheduler = jobs
    scheduler.create_schedule(
        Name="job-00",
        GroupName=j.group,
        ScheduleExpression="at(2020-01-01T00:00:00)",
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        Target={"Arn": j.queue_arn, "RoleArn": j.role_arn, "Input": '{"job": "x"}'},
    )
    scheduler.create_schedule(
        Name="job-01",
        GroupName=j.group,
        ScheduleExpression="at(2999-01-01T00:00:00)",
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        Target={"Arn": j.queue_arn, "RoleArn": j.role_arn, "Input": '{"job": "y"}'},
    )
    firer = ScheduleFirer(scheduler, sqs, j, {})
    assert firer.fire_due() == 1
    names = {s["Name"] for s in scheduler.list_schedules(GroupName=j.group)["Schedules"]}
    assert names == {f"{j.group}-sweep", "job-01"}
    got = sqs.receive_message(QueueUrl=j.queue_url)["Messages"]
    assert [m["Body"] for m in got] == ['{"job": "x"}']
    assert firer.fire_due() == 0


def test_the_sweep_and_a_cron_invoke_the_function_with_their_input(
    jobs: tuple[JobsAws, Any, Any],
) -> None:
    """The stack's sweep (rate(1 minute)) and a cron schedule fire into the
    function as Scheduler's direct invoke does: the Input as the event, the
    scheduled time put in; a recurring schedule fires once for its latest
    due time."""
    j, sqs, scheduler = jobs
    scheduler.create_schedule(
        Name="cron-x",
        GroupName=j.group,
        ScheduleExpression="rate(1 minute)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": j.function_arn,
            "RoleArn": j.role_arn,
            "Input": '{"pyconvex": "cron", "name": "x", "tick": "<aws.scheduler.scheduled-time>"}',
        },
    )
    recorder = Recorder()
    now = [time.time()]
    firer = ScheduleFirer(
        scheduler, sqs, j, {"t-scheduler": LambdaFunction("t-scheduler", recorder)}, clock=lambda: now[0]
    )  # fmt: skip
    assert firer.fire_due() == 0
    now[0] += 185  # three minutes and more
    assert firer.fire_due() == 2
    deadline = time.monotonic() + 10
    while len(recorder.events) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    events = sorted(recorder.events, key=json.dumps)
    assert events[0]["pyconvex"] == "cron" and events[0]["name"] == "x"
    assert events[0]["tick"].endswith("Z") and "<" not in events[0]["tick"]
    assert events[1] == {"pyconvex": "sweep"}
    assert sorted(name for name, _ in firer.fired) == ["cron-x", f"{j.group}-sweep"]
    firer.stop()
