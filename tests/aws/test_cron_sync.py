"""Cron reconciliation (runtime/aws/cron_sync.py) against moto's EventBridge
Scheduler API: create, update, delete, leave the group's other schedules
alone; and the harness's evaluation of the expressions it writes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from runtime import cron_jobs
from runtime.aws.cron_sync import (
    CronSchedule,
    cron_input,
    cron_schedules,
    reconcile,
    schedule_name,
)
from runtime.emulator.schedule_expressions import ExpressionError, next_fire
from tests.support.aws import REGION, fake_aws_env

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:stack-scheduler"
ROLE = "arn:aws:iam::123456789012:role/scheduler"


@pytest.fixture
def scheduler() -> Iterator[Any]:
    with fake_aws_env(), mock_aws():
        client = boto3.client("scheduler", region_name=REGION)
        client.create_schedule_group(Name="stack")
        yield client


def sync(client: Any, crons: list[CronSchedule]) -> Any:
    return reconcile(client, crons, group="stack", function_arn=FUNCTION, role_arn=ROLE)


def schedules(client: Any) -> dict[str, dict[str, Any]]:
    names = [s["Name"] for s in client.list_schedules(GroupName="stack")["Schedules"]]
    return {n: client.get_schedule(GroupName="stack", Name=n) for n in names}


def test_crons_are_created_with_their_expression_target_and_name(scheduler: Any) -> None:
    crons = [
        CronSchedule("clear messages", "cron(0 16 ? * 2 *)"),
        CronSchedule("every 10 s", "rate(1 minute)", every_ms=10_000),
    ]
    report = sync(scheduler, crons)
    assert report.created == ["clear messages", "every 10 s"]
    found = schedules(scheduler)
    assert set(found) == {schedule_name("clear messages"), schedule_name("every 10 s")}
    s = found[schedule_name("clear messages")]
    assert s["ScheduleExpression"] == "cron(0 16 ? * 2 *)"
    assert s["Description"] == "pyconvex cron clear messages"
    assert (s["Target"]["Arn"], s["Target"]["RoleArn"]) == (FUNCTION, ROLE)
    assert json.loads(s["Target"]["Input"]) == {
        "pyconvex": "cron",
        "name": "clear messages",
        "tick": "<aws.scheduler.scheduled-time>",
    }
    fast = json.loads(found[schedule_name("every 10 s")]["Target"]["Input"])
    assert fast["every_ms"] == 10_000
    assert len(schedule_name("x" * 1000)) <= 64


def test_a_second_sync_changes_nothing(scheduler: Any) -> None:
    crons = [CronSchedule("a", "rate(5 minutes)")]
    sync(scheduler, crons)
    before = schedules(scheduler)
    report = sync(scheduler, crons)
    assert (report.created, report.updated, report.deleted, report.unchanged) == ([], [], [], ["a"])
    assert (
        schedules(scheduler)[schedule_name("a")]["LastModificationDate"]
        == (before[schedule_name("a")]["LastModificationDate"])
    )


def test_a_changed_cron_is_updated_and_a_removed_one_deleted(scheduler: Any) -> None:
    sync(scheduler, [CronSchedule("a", "rate(5 minutes)"), CronSchedule("b", "rate(1 hour)")])
    report = sync(scheduler, [CronSchedule("a", "cron(30 * * * ? *)")])
    assert report.updated == ["a"] and report.deleted == ["b"]
    found = schedules(scheduler)
    assert list(found) == [schedule_name("a")]
    assert found[schedule_name("a")]["ScheduleExpression"] == "cron(30 * * * ? *)"
    # the target changes too (a new function ARN: a redeployed stack)
    report = reconcile(
        scheduler,
        [CronSchedule("a", "cron(30 * * * ? *)")],
        group="stack",
        function_arn=FUNCTION + "2",
        role_arn=ROLE,
    )
    assert report.updated == ["a"]
    assert schedules(scheduler)[schedule_name("a")]["Target"]["Arn"] == FUNCTION + "2"
    assert sync(scheduler, []).deleted == ["a"]
    assert schedules(scheduler) == {}


def test_the_groups_other_schedules_are_left_alone(scheduler: Any) -> None:
    for name in ("stack-sweep", "job-00ff"):
        scheduler.create_schedule(
            Name=name,
            GroupName="stack",
            ScheduleExpression="rate(1 minute)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": FUNCTION, "RoleArn": ROLE, "Input": "{}"},
        )
    sync(scheduler, [CronSchedule("a", "rate(5 minutes)")])
    assert sync(scheduler, []).deleted == ["a"]
    assert set(schedules(scheduler)) == {"stack-sweep", "job-00ff"}


def test_crons_py_jobs_become_schedules(scheduler: Any) -> None:
    """crons.py's jobs, as `cron_jobs()` registers them, converted with the
    crons module's EventBridge form and reconciled."""
    crons = cron_jobs()
    crons.interval("tick", {"seconds": 15}, "beat:tick")
    crons.interval("trim", {"hours": 2}, "beat:trim")
    crons.weekly("report", {"dayOfWeek": "monday", "hourUTC": 9, "minuteUTC": 30}, "beat:report")
    crons.cron("quarter", "*/15 * * * *", "beat:tick")
    schedules_ = cron_schedules(crons)
    assert schedules_ == [
        CronSchedule("tick", "rate(1 minute)", every_ms=15_000),
        CronSchedule("trim", "rate(2 hours)"),
        CronSchedule("report", "cron(30 9 ? * 2 *)"),
        CronSchedule("quarter", "cron(0,15,30,45 * * * ? *)"),
    ]
    assert sorted(sync(scheduler, schedules_).created) == ["quarter", "report", "tick", "trim"]
    # the harness fires what deploy writes
    for s in schedules_:
        assert next_fire(s.expression, ts("2026-03-02T10:00:30"), ts("2026-03-02T10:00:30"))
    odd = cron_jobs()
    odd.interval("odd", {"seconds": 90}, "beat:tick")
    with pytest.raises(ValueError, match="cron 'odd' cannot run on AWS"):
        cron_schedules(odd)


def test_cron_input_replaces_to_the_event_the_handler_reads() -> None:
    text = cron_input(CronSchedule("n", "rate(1 minute)"))
    fired = json.loads(text.replace("<aws.scheduler.scheduled-time>", "2026-01-01T00:00:00Z"))
    assert fired == {"pyconvex": "cron", "name": "n", "tick": "2026-01-01T00:00:00Z"}


# ---- the harness's evaluation of schedule expressions -----------------------------------


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_next_fire_of_at_rate_and_cron() -> None:
    created = ts("2026-03-02T10:00:30")
    assert next_fire("at(2026-03-02T10:05:00)", created, created) == ts("2026-03-02T10:05:00")
    assert next_fire("at(2026-03-02T10:05:00)", ts("2026-03-02T10:05:00"), created) is None
    assert next_fire("rate(1 minute)", created, created) == created + 60
    assert next_fire("rate(2 hours)", created + 7300, created) == created + 4 * 3600
    # 2026-03-02 is a Monday; day-of-week 2 is MON in EventBridge
    assert next_fire("cron(0 16 ? * 2 *)", created, created) == ts("2026-03-02T16:00:00")
    assert next_fire("cron(0 16 ? * MON *)", ts("2026-03-02T16:00:00"), created) == ts(
        "2026-03-09T16:00:00"
    )
    assert next_fire("cron(*/15 * * * ? *)", created, created) == ts("2026-03-02T10:15:00")
    assert next_fire("cron(0 0 1 JAN,JUL ? *)", created, created) == ts("2026-07-01T00:00:00")
    assert next_fire("cron(5 3 29 2 ? *)", created, created) == ts("2028-02-29T03:05:00")


@pytest.mark.parametrize(
    "expression",
    ["cron(0 0 * * * *)", "cron(0 0 ? * ? *)", "cron(0 0 L * ? *)", "cron(61 0 * * ? *)",
     "rate(0 minutes)", "rate(1 second)", "every(1)"],
)  # fmt: skip
def test_bad_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ExpressionError):
        next_fire(expression, 0, 0)


def test_the_stack_outputs_name_the_group_target_and_role() -> None:
    """DescribeStacks as CloudFormation answers it (botocore's Stubber checks
    both against the service model)."""
    import datetime as dt

    from botocore.stub import Stubber

    from runtime.aws.deploy import StackSchedules, stack_schedules

    cloudformation = boto3.client("cloudformation", region_name=REGION)
    outputs = [
        {"OutputKey": "ScheduleGroupName", "OutputValue": "app"},
        {"OutputKey": "SchedulerFunctionArn", "OutputValue": FUNCTION},
        {"OutputKey": "SchedulerRoleArn", "OutputValue": ROLE},
    ]
    stack = {"StackName": "app", "CreationTime": dt.datetime(2026, 12, 1, tzinfo=dt.UTC), "StackStatus": "CREATE_COMPLETE", "Outputs": outputs}  # fmt: skip
    with Stubber(cloudformation) as stub:
        for _ in range(3):
            stub.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "app"})
        assert stack_schedules("app", cloudformation) == StackSchedules("app", FUNCTION, ROLE)


def test_deploy_syncs_the_crons_of_a_functions_folder(scheduler: Any, tmp_path: Any) -> None:
    """`sync_crons`: functions/crons.py loaded (its functions checked), its
    jobs reconciled; a cron AWS cannot run fails the deploy saying which."""
    from runtime.aws.deploy import StackSchedules, sync_crons

    functions = tmp_path / "functions"
    functions.mkdir()
    (functions / "beat.py").write_text(
        "from runtime import mutation\n\n@mutation(args={})\ndef tick(ctx, args):\n    return 1\n"
    )
    crons = "from runtime import cron_jobs\n\ncrons = cron_jobs()\n"
    (functions / "crons.py").write_text(
        crons + 'crons.hourly("h", {"minuteUTC": 7}, "beat:tick")\n'
    )
    where = StackSchedules("stack", FUNCTION, ROLE)
    assert sync_crons(functions, where, scheduler=scheduler).created == ["h"]
    assert schedules(scheduler)[schedule_name("h")]["ScheduleExpression"] == "cron(7 * * * ? *)"
    (functions / "crons.py").write_text(
        crons + 'crons.interval("o", {"seconds": 90}, "beat:tick")\n'
    )
    with pytest.raises(RuntimeError, match="cannot be deployed: cron 'o' cannot run on AWS"):
        sync_crons(functions, where, scheduler=scheduler)
    (functions / "crons.py").write_text(crons)
    assert sync_crons(functions, where, scheduler=scheduler).deleted == ["h"]
