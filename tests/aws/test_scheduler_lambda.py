"""The scheduler Lambda handler (runtime/aws/scheduler.py), fed the events
AWS sends it: SQS batches from JobsQueue (Lambda's event shape), the sweep's
and a cron schedule's direct invokes (their Input). Its table is on DynamoDB
Local, its queue is moto's SQS server; jobs are scheduled by calling real
mutations through the container's backend, and their queue records read
back from the table, as the stream function would dispatch them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from runtime.aws import backend as lambda_backend_module
from runtime.aws.backend import lambda_backend
from runtime.aws.dispatch import JOB_QUEUE_PREFIX, QueueRecord, parse_body
from runtime.emulator.jobs import JobsAws, running_jobs_aws, setup_jobs, sqs_event
from runtime.limits import JOB_QUEUE_SHARDS
from runtime.store.dynamodb import DynamoDBStore, create_table
from runtime.store.port import Put, scan_all
from tests.aws.events import LambdaContext
from tests.support.aws import dynamodb_local_client, stream_records

pytestmark = pytest.mark.dynamodb_local


APP = """
from runtime import action, internal_mutation, mutation, query, v


@mutation(args={"text": v.string(), "delay": v.number()})
def plan(ctx, args):
    ctx.scheduler.run_after(args["delay"], "jobs:write", {"text": args["text"]})
    ctx.scheduler.run_after(args["delay"], "jobs:shout", {"text": args["text"]})


@mutation(args={"text": v.string()})
def plan_shout(ctx, args):
    ctx.scheduler.run_after(0, "jobs:shout", {"text": args["text"]})


@internal_mutation(args={"text": v.string()})
def write(ctx, args):
    ctx.db.insert("notes", {"text": args["text"]})


@action(args={"text": v.string()})
def shout(ctx, args):
    ctx.run_mutation("jobs:write", {"text": args["text"].upper()})


@mutation(args={})
def tick(ctx, args):
    ctx.db.insert("notes", {"text": "tick"})


@query(args={})
def notes(ctx, args):
    return sorted(n["text"] for n in ctx.db.query("notes").collect())


@query(args={})
def states(ctx, args):
    return sorted(
        [j["name"], j["state"]["kind"]] for j in ctx.db.system.query("_scheduled_functions").collect()
    )
"""

CRONS = """
from runtime import cron_jobs

crons = cron_jobs()
crons.interval("ticker", {"minutes": 5}, "jobs:tick")
"""


class Lambda:
    def __init__(self, jobs: JobsAws) -> None:
        self.jobs = jobs
        self.sqs = boto3.client("sqs", endpoint_url=jobs.endpoint)

    @property
    def backend(self) -> Any:
        return lambda_backend()[0]

    def call(self, path: str, args: dict[str, Any] | None = None) -> Any:
        result = self.backend.executor.call(path, args or {})
        assert result.error is None, result.error_message
        return result.value

    def records(self) -> list[QueueRecord]:
        """The job queue records in the table, over every shard."""
        store = self.backend.store
        out = []
        for shard in range(JOB_QUEUE_SHARDS):
            for item in scan_all(store, f"{JOB_QUEUE_PREFIX}{shard}"):
                out.append(QueueRecord(item.key, item.value.decode()))
        return sorted(out, key=lambda r: r.key[1])

    def invoke(self, event: dict[str, Any]) -> Any:
        from runtime.aws.scheduler import handler

        return handler(event, LambdaContext())

    def batch(self, bodies: list[str]) -> dict[str, Any]:
        messages = [
            {"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": body,
             "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))}}
            for i, body in enumerate(bodies)
        ]  # fmt: skip
        answer: dict[str, Any] = self.invoke(sqs_event(messages, self.jobs.queue_arn))
        return answer

    def queued(self) -> list[str]:
        """Bodies of the messages in the queue, delayed ones too (moto's backend)."""
        from moto.sqs.models import sqs_backends

        account, name = self.jobs.queue_url.rsplit("/", 2)[1:]
        queue = sqs_backends[account]["us-east-1"].queues[name]
        return [m.body for m in queue._messages]


@pytest.fixture
def app(tmp_path: Path) -> Path:
    functions = tmp_path / "functions"
    functions.mkdir()
    (functions / "jobs.py").write_text(APP)
    (functions / "crons.py").write_text(CRONS)
    return functions


@pytest.fixture
def scheduler_lambda(
    app: Path, monkeypatch: pytest.MonkeyPatch, dynamodb_local_endpoint: str
) -> Iterator[Lambda]:
    for name, value in {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    table = f"sch{uuid.uuid4().hex[:10]}"
    create_table(dynamodb_local_client(dynamodb_local_endpoint), table)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", dynamodb_local_endpoint)
    monkeypatch.setenv("PYCONVEX_TABLE", table)
    monkeypatch.setenv("PYCONVEX_FUNCTIONS", str(app))
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    for name in ("PYCONVEX_FILES_BUCKET", "PYCONVEX_FILES_URL", "PYCONVEX_ADMIN_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    with running_jobs_aws() as endpoint:
        name = f"t{uuid.uuid4().hex[:10]}"
        jobs = setup_jobs(endpoint, queue=f"{name}-jobs", group=name, function="t-scheduler")
        for key, value in jobs.env().items():
            monkeypatch.setenv(key, value)
        lambda_backend_module.reset()
        from runtime.backend import Backend

        # the deploy's part: the schema pushed once
        Backend(lambda_backend_module.DynamoDBStore(table), app, admin_key=None).reload()
        try:
            yield Lambda(jobs)
        finally:
            lambda_backend_module.reset()


def test_an_sqs_batch_runs_a_scheduled_mutation_and_action(scheduler_lambda: Lambda) -> None:
    lam = scheduler_lambda
    lam.call("jobs:plan", {"text": "hi", "delay": 0.0})
    records = lam.records()
    assert len(records) == 2
    assert lam.batch([r.body() for r in records]) == {"batchItemFailures": []}
    assert lam.call("jobs:notes") == ["HI", "hi"]
    assert lam.call("jobs:states") == [["jobs:shout", "success"], ["jobs:write", "success"]]
    assert lam.records() == []  # the queue records go with the runs
    # a duplicated message (SQS delivers at least once) runs nothing again
    assert lam.batch([r.body() for r in records]) == {"batchItemFailures": []}
    assert lam.call("jobs:notes") == ["HI", "hi"]


def test_a_message_that_is_not_ours_is_reported_the_rest_run(scheduler_lambda: Lambda) -> None:
    lam = scheduler_lambda
    lam.call("jobs:plan", {"text": "a", "delay": 0.0})
    bodies = [r.body() for r in lam.records()]
    answer = lam.batch([bodies[0], "not json", bodies[1], '{"job": 3}'])
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m3"}]}
    assert lam.call("jobs:notes") == ["A", "a"]


def test_an_early_message_goes_back_to_the_queue_with_its_delay(scheduler_lambda: Lambda) -> None:
    lam = scheduler_lambda
    lam.call("jobs:plan", {"text": "later", "delay": 120_000.0})
    records = lam.records()
    assert lam.batch([r.body() for r in records]) == {"batchItemFailures": []}
    assert lam.call("jobs:notes") == []
    assert lam.call("jobs:states") == [["jobs:shout", "pending"], ["jobs:write", "pending"]]
    assert sorted((parse_body(b) for b in lam.queued()), key=lambda r: r.key) == sorted(
        records, key=lambda r: r.key
    )


def test_an_action_whose_worker_died_is_failed_by_its_lease_never_rerun(
    scheduler_lambda: Lambda,
) -> None:
    """At most once on AWS: a scheduler Lambda claimed the action (inProgress
    and its lease record committed) and died before running it, 400 s ago
    (its clock); the lease record's message, now due, fails the job; the
    original message, delivered again, runs nothing."""
    from runtime.scheduler.runner import JobRunner

    lam = scheduler_lambda
    lam.call("jobs:plan_shout", {"text": "z"})
    (record,) = lam.records()

    class Died(Exception):
        pass

    def die(point: str) -> None:
        if point == "claimed":
            raise Died

    crashed = JobRunner(lam.backend.executor, clock=lambda: time.time() - 400, faults=die)
    with pytest.raises(Died):
        crashed.run(record.job_id, record.key)
    assert lam.call("jobs:states") == [["jobs:shout", "inProgress"]]
    (lease,) = lam.records()
    assert lease.job_id == record.job_id and lease.key != record.key
    assert lam.batch([lease.body(), record.body()]) == {"batchItemFailures": []}
    assert lam.call("jobs:states") == [["jobs:shout", "failed"]]
    assert lam.call("jobs:notes") == []
    assert lam.records() == []


def test_the_sweep_resends_records_dispatch_missed(scheduler_lambda: Lambda) -> None:
    """A queue record due minutes ago that never reached the queue (its
    stream record was given up on) is sent by the sweep; a recent one is
    left to its own message."""
    lam = scheduler_lambda
    lam.call("jobs:plan", {"text": "x", "delay": 0.0})
    recent = lam.records()
    # the same jobs' records, as if written three minutes ago
    stale_due = int(time.time() * 1000) - 180_000
    old = [QueueRecord((r.key[0], stale_due.to_bytes(8, "big") + r.key[1][8:]), r.job_id) for r in recent]  # fmt: skip
    lam.backend.store.transact([Put(r.key, r.job_id.encode()) for r in old])
    answer = lam.invoke({"pyconvex": "sweep"})
    assert answer["resent"] == 2
    assert sorted((parse_body(b) for b in lam.queued()), key=lambda r: r.key) == sorted(
        old, key=lambda r: r.key
    )
    assert lam.batch(lam.queued()) == {"batchItemFailures": []}
    assert lam.call("jobs:notes") == ["X", "x"]


def test_the_sweep_resolves_a_large_commit_whose_committer_died(
    scheduler_lambda: Lambda,
) -> None:
    """A large commit that crashed after taking its locks, on a table nobody
    reads: the sweep aborts it once its deadline passed, leaving no record,
    payload or lock, and the keys writable."""
    lam = scheduler_lambda
    store = lam.backend.store
    assert isinstance(store, DynamoDBStore)

    def crash(point: str) -> None:
        if point == "locked":
            raise RuntimeError("the committer died")

    dying = DynamoDBStore(store.table, client=store.client, faults=crash)
    keys = [("x:swept", i.to_bytes(2, "big")) for i in range(150)]
    with pytest.raises(RuntimeError, match="died"):
        dying.transact([Put(k, b"v", expect=0) for k in keys])

    def leftovers() -> list[str]:
        items = store.client.scan(TableName=store.table, ConsistentRead=True)["Items"]
        return [i["pk"]["S"] for i in items if "lk" in i or i["pk"]["S"].startswith("~tx")]

    assert lam.invoke({"pyconvex": "sweep"})["recovered"] == 0  # not past its deadline
    assert len(leftovers()) > 150
    for record in store.client.query(
        TableName=store.table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "~tx"}},
    )["Items"]:  # time passing: the deadline is behind us
        store.client.update_item(
            TableName=store.table,
            Key={"pk": record["pk"], "sk": record["sk"]},
            UpdateExpression="SET dl = :zero",
            ExpressionAttributeValues={":zero": {"N": "0"}},
        )
    assert lam.invoke({"pyconvex": "sweep"})["recovered"] == 1
    assert leftovers() == []
    assert store.get(keys[:1]) == [None]
    store.transact([Put(k, b"w", expect=0) for k in keys[:50]])


def test_a_cron_schedule_invoke_runs_its_tick_once(scheduler_lambda: Lambda) -> None:
    lam = scheduler_lambda
    event = {"pyconvex": "cron", "name": "ticker", "tick": "2026-03-02T10:05:00Z"}
    lam.invoke(event)
    assert lam.call("jobs:notes") == ["tick"]
    lam.invoke(event)  # Scheduler retried the same tick
    assert lam.call("jobs:notes") == ["tick"]
    lam.invoke({**event, "tick": "2026-03-02T10:10:00Z"})
    assert lam.call("jobs:notes") == ["tick", "tick"]


def test_a_sub_minute_cron_queues_the_minutes_other_ticks(scheduler_lambda: Lambda) -> None:
    lam = scheduler_lambda
    tick = "2026-03-02T10:05:00Z"
    lam.invoke({"pyconvex": "cron", "name": "ticker", "tick": tick, "every_ms": 15_000})
    queued = sorted(json.loads(b)["tick"] for b in lam.queued())
    start = 1772445900000
    assert queued == [start + 15_000, start + 30_000, start + 45_000]
    assert lam.batch(lam.queued()) == {"batchItemFailures": []}
    assert lam.call("jobs:notes") == ["tick"] * 4


def test_an_unknown_event_is_refused_saying_what_it_takes(scheduler_lambda: Lambda) -> None:
    with pytest.raises(ValueError, match="takes an SQS batch"):
        scheduler_lambda.invoke({"hello": 1})


def test_a_batch_reports_only_its_failed_messages(scheduler_lambda: Lambda) -> None:
    """Partial batch failures: the bad messages are named by messageId (SQS
    delivers them again), the good ones done."""
    lam = scheduler_lambda
    tick = json.dumps({"cron": "ticker", "tick": 1772445900000})
    answer = lam.batch(["not json", tick, '{"cron": "ticker"}'])
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m2"}]}
    assert lam.call("jobs:notes") == ["tick"]


# ---- the stream function dispatches -------------------------------------------------------


def _stream_records(table: str, endpoint: str) -> tuple[list[dict[str, Any]], str]:
    client = dynamodb_local_client(endpoint)
    arn = client.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    streams = dynamodb_local_client(endpoint, "dynamodbstreams")
    return stream_records(client, streams, table), arn


def test_the_stream_function_dispatches_new_queue_records(
    scheduler_lambda: Lambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Queue records written to the table (as a scheduling mutation writes
    them) reach the stream function in DynamoDB Local's stream records: a
    near one becomes a delayed message, a far one a one-time schedule of
    the group; the batch succeeds."""
    import os

    from runtime.aws.stream import handler as stream_handler
    from tests.aws.events import stream_event

    monkeypatch.setenv("PYCONVEX_WS_ENDPOINT", "http://127.0.0.1:9")  # no post is made
    lam = scheduler_lambda
    now = int(time.time() * 1000)
    near = QueueRecord(("s:jobq:1", (now + 5000).to_bytes(8, "big") + os.urandom(16)), "near-job")
    far = QueueRecord(("s:jobq:2", (now + 3_600_000).to_bytes(8, "big") + os.urandom(16)), "far-job")  # fmt: skip
    lam.backend.store.transact([Put(near.key, b"near-job"), Put(far.key, b"far-job")])
    records, arn = _stream_records(
        os.environ["PYCONVEX_TABLE"], os.environ["AWS_ENDPOINT_URL_DYNAMODB"]
    )
    event = stream_event(records, arn)
    assert stream_handler(event, LambdaContext()) == {"batchItemFailures": []}
    assert [parse_body(b) for b in lam.queued()] == [near]
    scheduler = boto3.client("scheduler", endpoint_url=lam.jobs.endpoint)
    (listed,) = scheduler.list_schedules(GroupName=lam.jobs.group, NamePrefix="job-")["Schedules"]
    got = scheduler.get_schedule(GroupName=lam.jobs.group, Name=listed["Name"])
    assert parse_body(got["Target"]["Input"]) == far
    assert got["Target"]["Arn"] == lam.jobs.queue_arn
