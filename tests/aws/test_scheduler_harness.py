"""The local AWS harness's SQS and EventBridge Scheduler (runtime/emulator/
jobs.py): moto's server keeps the queue and the schedules, the harness
delivers them to the scheduler function with AWS's event shapes; and, end
to end, scheduled functions and crons on `python -m runtime aws-local`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from convex.http_client import ConvexHttpClient

from runtime.emulator.functions import LambdaFunction
from runtime.emulator.jobs import JobsAws, ScheduleFirer, SqsPoller, running_jobs_aws, setup_jobs
from tests.support.aws import fake_aws_env
from tests.support.awslocal import aws_local


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


# ---- end to end on `python -m runtime aws-local` ------------------------------------------

E2E_APP = """
from runtime import action, internal_mutation, mutation, query, v


@mutation(args={"text": v.string()})
def plan(ctx, args):
    ctx.scheduler.run_after(0, "jobs:write", {"text": args["text"]})
    ctx.scheduler.run_after(0, "jobs:shout", {"text": args["text"]})


@internal_mutation(args={"text": v.string()})
def write(ctx, args):
    ctx.db.insert("notes", {"text": args["text"]})


@action(args={"text": v.string()})
def shout(ctx, args):
    ctx.run_mutation("jobs:write", {"text": args["text"].upper()})


@mutation(args={})
def beat(ctx, args):
    ctx.db.insert("notes", {"text": "beat"})


@query(args={})
def notes(ctx, args):
    return sorted(n["text"] for n in ctx.db.query("notes").collect())


@query(args={})
def states(ctx, args):
    return sorted(
        [j["name"], j["state"]["kind"]]
        for j in ctx.db.system.query("_scheduled_functions").collect()
    )
"""

E2E_CRONS = """
from runtime import cron_jobs

crons = cron_jobs()
crons.cron("every minute", "* * * * *", "jobs:beat")
"""


@pytest.fixture
def e2e_app(tmp_path: Path) -> Path:
    functions = tmp_path / "functions"
    functions.mkdir()
    (functions / "jobs.py").write_text(E2E_APP)
    (functions / "crons.py").write_text(E2E_CRONS)
    return functions


def _until(check: Callable[[], Any], timeout: float, what: str, log: Callable[[], str]) -> Any:
    """Poll `check` until it returns something truthy (a bounded wait, not a
    timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s:\n{log()[-4000:]}")
        time.sleep(0.2)


@pytest.mark.dynamodb_local
def test_a_cron_fires_on_aws_local(
    e2e_app: Path, tmp_path: Path, dynamodb_local_endpoint: str
) -> None:
    """Deploy (the harness's start) makes the cron's schedule; the harness's
    Scheduler fires it at the next minute into the scheduler Lambda, which
    runs the tick through run_cron. Up to a minute's wait: the schedule's
    expression is cron(* * * * ? *)."""
    table = f"c{uuid.uuid4().hex[:12]}"
    with aws_local(
        e2e_app, tmp_path / "data", table=table, dynamodb_endpoint=dynamodb_local_endpoint
    ) as server:
        assert "crons: 1 created" in server.log(), server.log()
        client = ConvexHttpClient(server.url)
        _until(
            lambda: client.query("jobs:notes", {}) == ["beat"], 90, "the cron's tick", server.log
        )


@pytest.mark.dynamodb_local
def test_scheduled_jobs_run_on_aws_local(
    e2e_app: Path, tmp_path: Path, dynamodb_local_endpoint: str
) -> None:
    """A mutation over the harness's HTTP API schedules a mutation and an
    action; the stream function dispatches their queue records to SQS, the
    harness's event source mapping delivers them to the scheduler Lambda,
    both run once."""
    table = f"j{uuid.uuid4().hex[:12]}"
    with aws_local(
        e2e_app, tmp_path / "data", table=table, dynamodb_endpoint=dynamodb_local_endpoint
    ) as server:
        client = ConvexHttpClient(server.url)
        client.mutation("jobs:plan", {"text": "hi"})
        done = [["jobs:shout", "success"], ["jobs:write", "success"]]
        _until(lambda: client.query("jobs:states", {}) == done, 60, "both jobs", server.log)
        assert client.query("jobs:notes", {}) == ["HI", "hi"]
