"""A cron schedule as EventBridge Scheduler's schedule expression (the AWS
shell's crons: `runtime/aws/cron_sync.py`).

EventBridge's formats (docs: "Schedule types on EventBridge Scheduler"):
- `rate(value unit)`: unit `minute` when value is 1, else `minutes` /
  `hours` / `days`; one minute is the finest.
- `cron(minutes hours day-of-month month day-of-week year)`: six fields,
  exactly one of day-of-month / day-of-week is `?`; day-of-week counts
  1 = SUN ... 7 = SAT (Unix: 0 = Sunday); `/` is not allowed in day-of-week.

The cron fields are written as explicit values (runs as `a-b`, the rest
comma lists) from the parsed sets rather than copied from the Unix text, so
names, steps and Unix's day-of-week numbering never reach AWS unconverted.

Intervals: whole minutes -> `rate(n minutes)` (`hours` / `days` when
exact); under a minute -> `rate(1 minute)` and `every_ms`, the handler
running the minute's ticks at the offsets `minute_offsets` lists (an
interval not dividing a minute restarts each minute: 7 s ticks at
0, 7, ..., 56 s then 0 again). An interval of a minute or more that is
not whole minutes has no EventBridge form and is refused for AWS.
"""

from __future__ import annotations

from dataclasses import dataclass

from .cron_schedule import MINUTE_MS, CronSpec, Interval, Schedule

__all__ = ["AwsSchedule", "aws_schedule", "minute_offsets"]


@dataclass(frozen=True)
class AwsSchedule:
    expression: str
    """`rate(...)` or `cron(...)`: a ScheduleExpression, evaluated in UTC."""
    every_ms: int | None = None
    """An interval under a minute: each firing runs the ticks at `minute_offsets`."""


def _runs(values: tuple[int, ...]) -> str:
    parts: list[str] = []
    start = prev = values[0]
    for value in (*values[1:], None):
        if value is not None and value == prev + 1:
            prev = value
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if value is not None:
            start = prev = value
    return ",".join(parts)


def _field(values: tuple[int, ...], lo: int, hi: int) -> str:
    return "*" if values == tuple(range(lo, hi + 1)) else _runs(values)


def _rate(ms: int) -> AwsSchedule:
    if ms < MINUTE_MS:
        return AwsSchedule("rate(1 minute)", every_ms=ms)
    if ms % MINUTE_MS:
        raise ValueError(
            f"an interval of {ms / 1000:g} s has no EventBridge Scheduler form (rates are whole "
            "minutes): use whole minutes, or a cron schedule"
        )
    minutes = ms // MINUTE_MS
    if minutes % 1440 == 0:
        value, unit = minutes // 1440, "day"
    elif minutes % 60 == 0:
        value, unit = minutes // 60, "hour"
    else:
        value, unit = minutes, "minute"
    return AwsSchedule(f"rate({value} {unit}{'' if value == 1 else 's'})")


def aws_schedule(schedule: Schedule) -> AwsSchedule:
    """The EventBridge Scheduler expression of `schedule` (see the module
    docstring). Raises ValueError for an interval it cannot express."""
    if isinstance(schedule, Interval):
        return _rate(schedule.ms)
    spec: CronSpec = schedule
    minutes = _field(spec.minutes, 0, 59)
    hours = _field(spec.hours, 0, 23)
    month = _field(spec.months, 1, 12)
    if spec.weekdays_restricted:
        dom, dow = "?", _runs(tuple(d + 1 for d in spec.weekdays))
    else:
        dom, dow = _field(spec.days, 1, 31), "?"
    return AwsSchedule(f"cron({minutes} {hours} {dom} {month} {dow} *)")


def minute_offsets(every_ms: int) -> list[int]:
    """The ticks (ms after the minute's start) of an interval under a minute."""
    return list(range(0, MINUTE_MS, every_ms))
