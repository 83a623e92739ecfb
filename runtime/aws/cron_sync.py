"""Crons on AWS: one EventBridge Scheduler schedule per cron of
functions/crons.py, in the stack's schedule group, reconciled at deploy
(`python -m runtime deploy`; the local harness at its start).

Each schedule is named `cron-<first 20 hex digits of sha1(cron name)>` (a
cron's name may be any text; a schedule's is at most 64 characters of a
small alphabet) and its Description carries the cron's name. Its target
invokes the scheduler function with {"pyconvex": "cron", "name": <name>,
"tick": "<aws.scheduler.scheduled-time>"} (Scheduler puts the time it fired
for in place), plus "every_ms" for an interval under a minute (the schedule
fires each minute, the function queues the minute's other ticks).

Reconciling: a cron without a schedule gets one, a schedule whose
expression, target or description differs is updated (UpdateSchedule
replaces the whole schedule), a `cron-` schedule whose cron is gone is
deleted. The group's other schedules (the sweep, one-time job schedules)
are never touched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from runtime.functions.cron_aws import aws_schedule
from runtime.functions.crons import CronJob

__all__ = [
    "CRON_PREFIX",
    "CronSchedule",
    "SyncReport",
    "cron_input",
    "cron_schedules",
    "reconcile",
    "schedule_name",
]

CRON_PREFIX = "cron-"
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"


@dataclass(frozen=True)
class CronSchedule:
    """What one cron needs of EventBridge Scheduler."""

    name: str
    """The cron's name in crons.py."""
    expression: str
    """`cron(m h dom mon dow year)` or `rate(n minutes)`."""
    every_ms: int | None = None
    """An interval under a minute (its expression is rate(1 minute))."""


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"crons: {len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.deleted)} deleted, {len(self.unchanged)} unchanged"
        )


def cron_schedules(jobs: Iterable[CronJob]) -> list[CronSchedule]:
    """The schedules of crons.py's jobs (`aws_schedule`: EventBridge's
    expression); ValueError naming the cron whose schedule AWS cannot run."""
    out = []
    for job in jobs:
        try:
            aws = aws_schedule(job.schedule)
        except ValueError as e:
            raise ValueError(f"cron {job.name!r} cannot run on AWS: {e}") from None
        out.append(CronSchedule(job.name, aws.expression, aws.every_ms))
    return out


def schedule_name(cron_name: str) -> str:
    return CRON_PREFIX + hashlib.sha1(cron_name.encode()).hexdigest()[:20]


def cron_input(cron: CronSchedule) -> str:
    """The scheduler function's event for `cron`'s ticks."""
    event: dict[str, Any] = {"pyconvex": "cron", "name": cron.name, "tick": SCHEDULED_TIME}
    if cron.every_ms is not None:
        event["every_ms"] = cron.every_ms
    return json.dumps(event, sort_keys=True)


def _description(cron: CronSchedule) -> str:
    return f"pyconvex cron {cron.name}"[:512]


def _wanted(cron: CronSchedule, function_arn: str, role_arn: str) -> dict[str, Any]:
    return {
        "ScheduleExpression": cron.expression,
        "ScheduleExpressionTimezone": "UTC",
        "Description": _description(cron),
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "Target": {
            "Arn": function_arn,
            "RoleArn": role_arn,
            "Input": cron_input(cron),
            # a tick that cannot be delivered within a minute is behind: skipped
            "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 60},
        },
    }


def _same(existing: dict[str, Any], wanted: dict[str, Any]) -> bool:
    for key, value in wanted.items():
        if key == "Target":
            target = existing.get("Target", {})
            if any(target.get(k) != v for k, v in value.items()):
                return False
        elif existing.get(key) != value:
            return False
    return True


def _existing(scheduler: Any, group: str) -> list[str]:
    names: list[str] = []
    kw: dict[str, Any] = {"GroupName": group, "NamePrefix": CRON_PREFIX}
    while True:
        page = scheduler.list_schedules(**kw)
        names += [s["Name"] for s in page.get("Schedules", [])]
        if not page.get("NextToken"):
            return [n for n in names if n.startswith(CRON_PREFIX)]
        kw["NextToken"] = page["NextToken"]


def reconcile(
    scheduler: Any,
    crons: Iterable[CronSchedule],
    *,
    group: str,
    function_arn: str,
    role_arn: str,
) -> SyncReport:
    """Make the group's `cron-` schedules match `crons` (see the module docstring)."""
    report = SyncReport()
    wanted = {schedule_name(c.name): c for c in crons}
    present = set(_existing(scheduler, group))
    for name, cron in sorted(wanted.items(), key=lambda item: item[1].name):
        spec = _wanted(cron, function_arn, role_arn)
        if name not in present:
            scheduler.create_schedule(Name=name, GroupName=group, **spec)
            report.created.append(cron.name)
            continue
        existing = scheduler.get_schedule(GroupName=group, Name=name)
        if _same(existing, spec):
            report.unchanged.append(cron.name)
        else:
            scheduler.update_schedule(Name=name, GroupName=group, **spec)
            report.updated.append(cron.name)
    for name in sorted(present - set(wanted)):
        described = scheduler.get_schedule(GroupName=group, Name=name).get("Description") or ""
        scheduler.delete_schedule(GroupName=group, Name=name)
        report.deleted.append(described.removeprefix("pyconvex cron ") or name)
    return report
