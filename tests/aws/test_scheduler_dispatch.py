"""Dispatch of scheduled jobs (runtime/aws/dispatch.py): queue records read
from a real table's stream (moto, DynamoDB Local for a large commit) become
SQS messages with a delay, or one-time EventBridge Scheduler schedules,
against moto's SQS and Scheduler APIs."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from runtime.aws.dispatch import (
    Dispatcher,
    QueueRecord,
    at_expression,
    dispatch_stream_records,
    parse_body,
    queue_record_of,
    schedule_name,
    schedule_time,
)
from runtime.aws.stream_records import document_write, to_lambda_record
from runtime.store.dynamodb import DynamoDBStore, create_table
from runtime.store.port import Delete, Put
from tests.support.aws import REGION, fake_aws_env, stream_records

NOW = 1_800_000_000.0  # seconds: the dispatcher's clock in these tests


def record(due_ms: int, job: str = "job1", shard: int = 3) -> QueueRecord:
    return QueueRecord((f"s:jobq:{shard}", due_ms.to_bytes(8, "big") + os.urandom(16)), job)


class Aws:
    def __init__(self) -> None:
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.scheduler = boto3.client("scheduler", region_name=REGION)
        self.queue_url = self.sqs.create_queue(QueueName="jobs")["QueueUrl"]
        self.queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        self.scheduler.create_schedule_group(Name="stack")
        self.role = "arn:aws:iam::123456789012:role/scheduler"

    def dispatcher(self, *, group: str = "stack", queue_url: str | None = None) -> Dispatcher:
        return Dispatcher(
            self.sqs,
            self.scheduler,
            queue_url=queue_url or self.queue_url,
            queue_arn=self.queue_arn,
            group=group,
            role_arn=self.role,
            clock=lambda: NOW,
        )

    def messages(self) -> list[dict[str, Any]]:
        """Every message in the queue, delayed ones too (moto's backend)."""
        from moto.sqs.models import sqs_backends

        queue = sqs_backends["123456789012"][REGION].queues["jobs"]
        return [{"body": m.body, "delayed_until": m.delayed_until} for m in queue._messages]

    def schedules(self) -> list[dict[str, Any]]:
        names = [s["Name"] for s in self.scheduler.list_schedules(GroupName="stack")["Schedules"]]
        return [self.scheduler.get_schedule(GroupName="stack", Name=n) for n in names]


@pytest.fixture
def aws() -> Iterator[Aws]:
    with fake_aws_env(), mock_aws():
        yield Aws()


# ---- records and messages ------------------------------------------------------


def test_a_message_body_names_its_record_and_parses_back() -> None:
    r = record(1_800_000_123_456, "abc", shard=5)
    data = json.loads(r.body())
    assert data["job"] == "abc" and data["shard"] == 5
    assert parse_body(r.body()) == r
    assert (r.due_ms, r.shard) == (1_800_000_123_456, 5)
    for bad in ("", "{}", '{"job": 1, "record": "AA==", "shard": 0}', '{"job": "a", "record": "AA==", "shard": 0}'):  # fmt: skip
        with pytest.raises(ValueError, match="not a job message"):
            parse_body(bad)


def test_at_expression_rounds_up_to_the_second_in_utc() -> None:
    assert at_expression(1_800_000_000_000) == "at(2027-01-15T08:00:00)"
    assert at_expression(1_800_000_000_001) == "at(2027-01-15T08:00:01)"
    assert len(schedule_name(record(0))) <= 64


# ---- from the stream ------------------------------------------------------------


def test_a_queue_record_written_to_the_table_is_found_in_its_stream_record() -> None:
    """A Put of a queue record, as the store writes it, read back from moto's
    stream in both shapes (boto3's, and Lambda's with base64 binaries); a
    document write, a queue record's removal and other platform records are
    not queue records."""
    with fake_aws_env(), mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        streams = boto3.client("dynamodbstreams", region_name=REGION)
        create_table(client, "t")
        store = DynamoDBStore("t", client=client, streams_client=streams)
        key = ("s:jobq:2", (1_800_000_000_500).to_bytes(8, "big") + b"r" * 16)
        store.transact([Put(key, b"the-job-id")])
        store.transact([Put(("s:conn", b"x"), b"1")])
        store.transact([Put(("d:t", b"doc"), b"{}", feed=True)])
        store.transact([Delete(key)])
        raw = stream_records(client, streams, "t")
        jobq = [r for r in raw if r["dynamodb"]["Keys"]["pk"]["S"] == key[0]]
        assert jobq[-1]["eventName"] == "REMOVE"
        found = [q for q in map(queue_record_of, raw) if q is not None]
        assert found == [QueueRecord(key, "the-job-id")]
        (live,) = [r for r in jobq if queue_record_of(r) is not None]
        lambda_shape = to_lambda_record(live, "arn", REGION)
        assert queue_record_of(lambda_shape) == QueueRecord(key, "the-job-id")
        assert not document_write(live)  # the document filter alone would drop it


@pytest.mark.dynamodb_local
def test_a_queue_record_of_a_large_commit_is_found_once(dynamodb_local_endpoint: str) -> None:
    """A commit past 100 items (a mutation scheduling many jobs) writes each
    queue record first as its lock's placeholder (no version), then applies
    it: only the apply makes it live, and only once."""
    client = boto3.client(
        "dynamodb",
        endpoint_url=dynamodb_local_endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    streams = boto3.client(
        "dynamodbstreams",
        endpoint_url=dynamodb_local_endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    table = f"d{uuid.uuid4().hex[:12]}"
    create_table(client, table)
    try:
        store = DynamoDBStore(
            table, client=client, streams_client=streams, max_transaction_items=None
        )
        keys = [
            (f"s:jobq:{i % 8}", (1_800_000_000_000 + i).to_bytes(8, "big") + os.urandom(16))
            for i in range(120)
        ]
        store.transact([Put(k, f"job{i}".encode()) for i, k in enumerate(keys)])
        raw = stream_records(client, streams, table)
        found = [q for q in map(queue_record_of, raw) if q is not None]
        assert sorted(found, key=lambda q: q.job_id) == sorted(
            (QueueRecord(k, f"job{i}") for i, k in enumerate(keys)), key=lambda q: q.job_id
        )
        assert any(r["eventName"] == "MODIFY" for r in raw)  # the large path was taken
    finally:
        client.delete_table(TableName=table)


# ---- to SQS and Scheduler ---------------------------------------------------------


def test_a_job_due_within_15_minutes_is_sent_with_its_delay(aws: Aws) -> None:
    now_ms = int(NOW * 1000)
    due = [now_ms - 5000, now_ms + 1, now_ms + 42_000, now_ms + 900_000]
    records = [record(d, f"j{i}") for i, d in enumerate(due)]
    assert aws.dispatcher().dispatch(records) is None
    messages = sorted(aws.messages(), key=lambda m: json.loads(m["body"])["job"])
    assert [parse_body(m["body"]) for m in messages] == records
    assert aws.schedules() == []
    # moto stamps the delay from its own clock: the delays as sent
    delays = [aws.dispatcher().delay_seconds(d) for d in due]
    assert delays == [0, 1, 42, 900]


def test_a_later_job_gets_a_one_time_schedule_sending_to_the_queue(aws: Aws) -> None:
    due = int(NOW * 1000) + 900_001
    r = record(due, "later")
    assert aws.dispatcher().dispatch([r]) is None
    assert aws.messages() == []
    (schedule,) = aws.schedules()
    assert schedule["Name"] == schedule_name(r)
    # a minute early, at a minute's start: Scheduler fires within the minute
    fire = schedule_time(due)
    assert fire % 60_000 == 0 and due - 120_000 < fire <= due - 60_000
    assert schedule["ScheduleExpression"] == at_expression(fire)
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = schedule["Target"]
    assert (target["Arn"], target["RoleArn"]) == (aws.queue_arn, aws.role)
    assert parse_body(target["Input"]) == r
    # a re-delivered stream record makes the same schedule: refused, and fine
    assert aws.dispatcher().dispatch([r]) is None
    assert len(aws.schedules()) == 1


def test_a_failed_dispatch_names_the_first_record_not_dispatched(aws: Aws) -> None:
    """A schedule that cannot be made (here: no such group) fails its record;
    the near records before it are sent, the ones after it are left for the
    re-delivery."""
    now_ms = int(NOW * 1000)
    records = [record(now_ms, "a"), record(now_ms, "b"), record(now_ms + 10**7, "c")]
    records.append(record(now_ms, "d"))
    assert aws.dispatcher(group="missing").dispatch(records) == 2
    assert sorted(json.loads(m["body"])["job"] for m in aws.messages()) == ["a", "b"]
    missing_queue = aws.queue_url + "-missing"
    assert aws.dispatcher(queue_url=missing_queue).dispatch(records[:2]) == 0


def test_batches_of_ten(aws: Aws) -> None:
    now_ms = int(NOW * 1000)
    records = [record(now_ms + i, f"j{i:02}") for i in range(25)]
    assert aws.dispatcher().dispatch(records) is None
    assert sorted(json.loads(m["body"])["job"] for m in aws.messages()) == [
        f"j{i:02}" for i in range(25)
    ]


def test_without_schedule_settings_a_later_job_fails_with_what_to_set(aws: Aws) -> None:
    d = Dispatcher(aws.sqs, aws.scheduler, queue_url=aws.queue_url, queue_arn=None, group=None, role_arn=None, clock=lambda: NOW)  # fmt: skip
    with pytest.raises(RuntimeError, match="PYCONVEX_SCHEDULE_GROUP"):
        d.create_schedule(record(int(NOW * 1000) + 10**7))


def test_stream_records_dispatch_by_index(aws: Aws) -> None:
    """The stream function's hook: the index is the batch's, not the queue records'."""
    now_ms = int(NOW * 1000)
    far, near = record(now_ms + 10**7, "far"), record(now_ms, "near")

    def as_stream(q: QueueRecord) -> dict[str, Any]:
        image = {"pk": {"S": q.key[0]}, "sk": {"B": b"\x00" + q.key[1]}}
        new = {**image, "v": {"B": q.job_id.encode()}, "n": {"N": "1"}}
        return to_lambda_record(
            {"eventID": "1", "eventName": "INSERT", "dynamodb": {"Keys": image, "NewImage": new, "SequenceNumber": "1"}},
            "arn",
            REGION,
        )  # fmt: skip

    doc = {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": "d:t"}}, "NewImage": {}}}
    batch = [doc, as_stream(near), doc, as_stream(far)]
    assert dispatch_stream_records(batch, aws.dispatcher(group="missing")) == 3
    assert [json.loads(m["body"])["job"] for m in aws.messages()] == ["near"]
    assert dispatch_stream_records([doc], None) is None
    assert dispatch_stream_records(batch, None) is None  # logged, not failed
