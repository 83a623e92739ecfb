"""template.yaml's resources for scheduled functions and crons: the jobs
queue and the scheduler function on it, the schedule group and the sweep,
EventBridge Scheduler's role, the stream function's rights to dispatch, the
outputs `python -m runtime deploy` reads, and the stream filter the local
harness applies in the same way."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.aws.dispatch import queue_write
from runtime.aws.stream_records import document_write
from runtime.limits import ACTION_TIMEOUT_SECONDS, SQS_BATCH_MESSAGES
from tests.infra.test_template import as_list, grants, of_type, props, statements

SCHEDULES = (
    "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule/${ScheduleGroup}/*"
)
SCHEDULER_FUNCTION = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-scheduler"
# The alias SnapStart needs (template.yaml: AutoPublishAlias), as the crons' target.
SCHEDULER_FUNCTION_ALIAS = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${SchedulerFunction}:live"
JOBS_QUEUE = {"Fn::GetAtt": ["JobsQueue", "Arn"]}


def test_the_scheduler_function_runs_the_jobs_queue_with_partial_failures(
    sam_template: dict[str, Any],
) -> None:
    fn = props(sam_template, "SchedulerFunction")
    assert fn["Handler"] == "runtime.aws.scheduler.handler"
    assert fn["Timeout"] > ACTION_TIMEOUT_SECONDS, "a job may be a 5-minute action"
    (m,) = [
        r["Properties"]
        for r in of_type(sam_template, "AWS::Lambda::EventSourceMapping").values()
        if r["Properties"]["EventSourceArn"] == JOBS_QUEUE
    ]
    assert m["FunctionName"] == {"Ref": "SchedulerFunctionAliaslive"}  # SnapStart: the alias
    assert m["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert m["BatchSize"] == SQS_BATCH_MESSAGES
    queue = props(sam_template, "JobsQueue")
    # Lambda refuses a queue whose visibility timeout is under the function's
    assert queue["VisibilityTimeout"] >= 6 * fn["Timeout"]
    redrive = queue["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["JobsDeadLetterQueue", "Arn"]}
    env = fn["Environment"]["Variables"]
    assert env["PYCONVEX_JOBS_QUEUE_URL"] == {"Ref": "JobsQueue"}
    g = grants(sam_template, "SchedulerFunction")
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:SendMessage"):  # fmt: skip
        assert g[action] == [JOBS_QUEUE], action


def test_the_sweep_invokes_the_scheduler_every_minute(sam_template: dict[str, Any]) -> None:
    (sweep,) = of_type(sam_template, "AWS::Scheduler::Schedule").values()
    p = sweep["Properties"]
    assert p["ScheduleExpression"] == "rate(1 minute)"
    assert p["GroupName"] == {"Ref": "ScheduleGroup"}
    assert p["Target"]["Arn"] == {"Ref": "SchedulerFunctionAliaslive"}  # SnapStart: the alias
    assert p["Target"]["RoleArn"] == {"Fn::GetAtt": ["SchedulerInvokeRole", "Arn"]}
    assert json.loads(p["Target"]["Input"]) == {"pyconvex": "sweep"}
    assert list(of_type(sam_template, "AWS::Scheduler::ScheduleGroup")) == ["ScheduleGroup"]


def test_schedulers_role_sends_to_the_queue_and_invokes_the_scheduler_only(
    sam_template: dict[str, Any],
) -> None:
    role = sam_template["Resources"]["SchedulerInvokeRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    granted: dict[str, list[Any]] = {}
    for st in statements(sam_template["Resources"]["SchedulerInvokeRole"]):
        for action in as_list(st["Action"]):
            granted.setdefault(action, []).extend(as_list(st["Resource"]))
    assert granted == {
        "sqs:SendMessage": [JOBS_QUEUE],
        # the function and its versions and aliases (SnapStart: `live`)
        "lambda:InvokeFunction": [
            {"Fn::Sub": SCHEDULER_FUNCTION},
            {"Fn::Sub": SCHEDULER_FUNCTION + ":*"},
        ],
    }
    assert props(sam_template, "SchedulerFunction")["FunctionName"] == {
        "Fn::Sub": "${AWS::StackName}-scheduler"
    }


def test_the_stream_function_may_dispatch_and_pass_schedulers_role_only_to_it(
    sam_template: dict[str, Any],
) -> None:
    g = grants(sam_template, "StreamFunction")
    assert JOBS_QUEUE in g["sqs:SendMessage"]
    assert g["scheduler:CreateSchedule"] == [{"Fn::Sub": SCHEDULES}]
    assert g["iam:PassRole"] == [{"Fn::GetAtt": ["SchedulerInvokeRole", "Arn"]}]
    (passing,) = [
        st
        for st in statements(sam_template["Resources"]["StreamFunctionRole"])
        if st["Action"] == "iam:PassRole"
    ]
    assert passing["Condition"] == {
        "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
    }
    env = props(sam_template, "StreamFunction")["Environment"]["Variables"]
    assert env["PYCONVEX_JOBS_QUEUE_URL"] == {"Ref": "JobsQueue"}
    assert env["PYCONVEX_JOBS_QUEUE_ARN"] == JOBS_QUEUE
    assert env["PYCONVEX_SCHEDULE_GROUP"] == {"Ref": "ScheduleGroup"}
    assert env["PYCONVEX_SCHEDULER_ROLE_ARN"] == {"Fn::GetAtt": ["SchedulerInvokeRole", "Arn"]}
    for rid in ("HttpFunction", "WsFunction"):
        assert not [a for a in grants(sam_template, rid) if a.startswith(("scheduler:", "iam:"))]


def test_the_outputs_name_what_deploy_reconciles_crons_with(sam_template: dict[str, Any]) -> None:
    outputs = sam_template["Outputs"]
    assert outputs["ScheduleGroupName"]["Value"] == {"Ref": "ScheduleGroup"}
    assert outputs["SchedulerFunctionArn"]["Value"] == {"Fn::Sub": SCHEDULER_FUNCTION_ALIAS}
    assert outputs["SchedulerRoleArn"]["Value"] == {"Fn::GetAtt": ["SchedulerInvokeRole", "Arn"]}
    assert outputs["JobsQueueUrl"]["Value"] == {"Ref": "JobsQueue"}


def test_dead_letters_alarm(sam_template: dict[str, Any]) -> None:
    alarms = [a["Properties"] for a in of_type(sam_template, "AWS::CloudWatch::Alarm").values()]
    dead = [a for a in alarms if a["Namespace"] == "AWS/SQS" and "JobsDeadLetterQueue" in json.dumps(a)]  # fmt: skip
    assert len(dead) == 1 and dead[0]["AlarmActions"] == [{"Ref": "AlarmTopic"}]


# ---- the stream filter, on AWS and in the harness ------------------------------------


def _matches(pattern: Any, value: Any, present: bool = True) -> bool:
    """Lambda's filter rules for the subset the template uses: objects key by
    key, a list of allowed values, `prefix` and `exists` matchers."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            value = {}
        return all(_matches(p, value.get(k), k in value) for k, p in pattern.items())
    for allowed in pattern:
        if isinstance(allowed, dict) and "prefix" in allowed:
            if isinstance(value, str) and value.startswith(allowed["prefix"]):
                return True
        elif isinstance(allowed, dict) and "exists" in allowed:
            if allowed["exists"] is present:
                return True
        elif present and value == allowed:
            return True
    return False


def _record(event: str, new: dict[str, Any] | None, old: dict[str, Any] | None, pk: str) -> dict[str, Any]:  # fmt: skip
    data: dict[str, Any] = {"Keys": {"pk": {"S": pk}, "sk": {"B": "AA=="}}}
    if new is not None:
        data["NewImage"] = new
    if old is not None:
        data["OldImage"] = old
    return {"eventName": event, "dynamodb": data}


JOB = {"pk": {"S": "s:jobq:3"}, "v": {"B": "aWQ="}, "n": {"N": "1"}}
PLACEHOLDER = {"pk": {"S": "s:jobq:3"}, "lk": {"S": "tx"}}
LOCKED = {**JOB, "lk": {"S": "tx"}}
RECORDS = {
    "queue record inserted": (_record("INSERT", JOB, None, "s:jobq:3"), True),
    "large commit: placeholder": (_record("INSERT", PLACEHOLDER, None, "s:jobq:3"), False),
    "large commit: applied": (_record("MODIFY", JOB, PLACEHOLDER, "s:jobq:3"), True),
    "large commit: locked": (_record("MODIFY", LOCKED, JOB, "s:jobq:3"), True),
    "queue record removed": (_record("REMOVE", None, JOB, "s:jobq:3"), False),
    "other platform record": (_record("INSERT", {"n": {"N": "1"}}, None, "s:conn"), False),
    "a cron's state": (_record("INSERT", {"n": {"N": "1"}}, None, "s:cron"), False),
}


@pytest.mark.parametrize("name", list(RECORDS))
def test_the_template_and_the_harness_pass_the_same_queue_records(
    sam_source: dict[str, Any], name: str
) -> None:
    mapping = sam_source["Resources"]["StreamFunction"]["Properties"]["Events"]["Feed"]
    patterns = [
        json.loads(f["Pattern"]) for f in mapping["Properties"]["FilterCriteria"]["Filters"]
    ]
    record, expected = RECORDS[name]
    assert any(_matches(p, record) for p in patterns) is expected
    assert (document_write(record) or queue_write(record)) is expected
