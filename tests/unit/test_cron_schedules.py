"""Cron schedules (runtime/functions/crons.py, cron_schedule.py, cron_aws.py):
registration checks, when a schedule fires at known UTC instants, and the
EventBridge Scheduler expressions of the AWS shell."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runtime import cron_jobs
from runtime.emulator.schedule_expressions import next_fire
from runtime.functions.cron_aws import aws_schedule, minute_offsets
from runtime.functions.crons import (
    CronError,
    CronJobs,
    Interval,
    latest_at_or_before,
    next_after,
    parse_cron,
)


def ms(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp() * 1000  # type: ignore[misc]


def when(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t / 1000, UTC)


def one(register: str, schedule: object) -> CronJobs:
    crons = cron_jobs()
    getattr(crons, register)("job", schedule, "messages:clear")
    return crons


def schedule_of(register: str, schedule: object) -> object:
    return one(register, schedule).jobs["job"].schedule


# ---- registering -------------------------------------------------------------


def test_each_method_registers_in_order_with_args() -> None:
    crons = cron_jobs()
    crons.interval("a", {"seconds": 30}, "m:a")
    crons.cron("b", "0 16 1 * *", "m:b", {"email": "x@example.com"})
    crons.hourly("c", {"minuteUTC": 5}, "m:c")
    crons.daily("d", {"hourUTC": 3, "minuteUTC": 0}, "m:d")
    crons.weekly("e", {"dayOfWeek": "monday", "hourUTC": 9, "minuteUTC": 30}, "m:e")
    crons.monthly("f", {"day": 1, "hourUTC": 16, "minuteUTC": 0}, "m:f")
    assert [j.name for j in crons] == list("abcdef")
    assert crons.jobs["a"].schedule == Interval(30_000)
    assert crons.jobs["b"].args == {"email": "x@example.com"}
    assert crons.jobs["c"].args == {}
    assert [crons.jobs[n].schedule.text for n in "bcdef"] == [  # type: ignore[union-attr]
        "0 16 1 * *",
        "5 * * * *",
        "0 3 * * *",
        "30 9 * * 1",
        "0 16 1 * *",
    ]


@pytest.mark.parametrize(
    ("register", "schedule", "message"),
    [
        ("interval", {"seconds": 0}, "must be a number > 0"),
        ("interval", {"seconds": -5}, "must be a number > 0"),
        ("interval", {"seconds": 1.5}, "whole seconds"),
        ("interval", {"days": 1}, "an interval is one of"),
        ("interval", {"seconds": 1, "minutes": 1}, "an interval is one of"),
        ("interval", {"seconds": True}, "must be a number > 0"),
        ("cron", "0 16 1 *", "has 4 fields; write five"),
        ("cron", "60 * * * *", "minute field: 60 is out of range 0-59"),
        ("cron", "* 24 * * *", "hour field: 24 is out of range 0-23"),
        ("cron", "* * 0 * *", "day of month field: 0 is out of range 1-31"),
        ("cron", "* * * 13 *", "month field: 13 is out of range 1-12"),
        ("cron", "* * * * 8", "day of week field: 8 is out of range 0-7"),
        ("cron", "*/0 * * * *", "step '0' must be a number > 0"),
        ("cron", "5-1 * * * *", "runs backwards"),
        ("cron", "x * * * *", "'x' is not a number"),
        ("cron", "0 0 1 * mon", "restricts both day-of-month and day-of-week"),
        ("cron", "0 0 30 2 *", "never runs"),
        ("hourly", {"minuteUTC": 60}, "minuteUTC must be 0-59, not 60"),
        ("hourly", {"minute": 5}, "unknown: minute; missing: minuteUTC"),
        ("daily", {"hourUTC": 24, "minuteUTC": 0}, "hourUTC must be 0-23"),
        ("daily", {"hourUTC": 1.5, "minuteUTC": 0}, "hourUTC must be a whole number"),
        ("weekly", {"dayOfWeek": "mon", "hourUTC": 1, "minuteUTC": 0}, "dayOfWeek is one of"),
        ("monthly", {"day": 32, "hourUTC": 0, "minuteUTC": 0}, "day must be 1-31, not 32"),
        ("monthly", {"day": 0, "hourUTC": 0, "minuteUTC": 0}, "day must be 1-31, not 0"),
    ],
)
def test_bad_schedules_are_refused_saying_why(
    register: str, schedule: object, message: str
) -> None:
    with pytest.raises(CronError) as e:
        one(register, schedule)
    assert message in e.value.message
    assert "'job'" in e.value.message  # names the cron


def test_names_functions_and_args_are_checked() -> None:
    crons = cron_jobs()
    crons.interval("same", {"minutes": 1}, "m:a")
    with pytest.raises(CronError, match="registered twice"):
        crons.interval("same", {"minutes": 2}, "m:b")
    with pytest.raises(CronError, match="non-empty string"):
        crons.interval("", {"minutes": 1}, "m:a")
    with pytest.raises(CronError, match="path like 'messages:clear'"):
        crons.interval("f", {"minutes": 1}, 42)
    with pytest.raises(CronError, match="args must be a dict"):
        crons.interval("g", {"minutes": 1}, "m:a", [1])
    with pytest.raises(CronError, match="not a Convex value"):
        crons.interval("h", {"minutes": 1}, "m:a", {"x": object()})
    with pytest.raises(CronError, match="over 1000 bytes"):
        crons.interval("n" * 1001, {"minutes": 1}, "m:a")
    assert len(crons) == 1


def test_minutes_and_hours_intervals_are_milliseconds() -> None:
    assert schedule_of("interval", {"minutes": 0.5}) == Interval(30_000)
    assert schedule_of("interval", {"hours": 2}) == Interval(7_200_000)


def test_month_and_day_names_and_sunday_as_7() -> None:
    spec = parse_cron("0 12 * JAN,mar sun")
    assert spec.months == (1, 3) and spec.weekdays == (0,)
    assert parse_cron("0 12 * * 7").weekdays == (0,)
    assert parse_cron("*/20 1-5/2 * * *").minutes == (0, 20, 40)
    assert parse_cron("*/20 1-5/2 * * *").hours == (1, 3, 5)
    assert parse_cron("10/25 * * * *").minutes == (10, 35)


# ---- when they fire -------------------------------------------------------------


def test_interval_runs_from_its_anchor() -> None:
    spec = Interval(10_000)
    assert next_after(spec, 1_000) == 11_000
    # after downtime: the latest tick of the anchor's grid, not every missed one
    assert latest_at_or_before(spec, 95_500, anchor_ms=1_000) == 91_000
    assert latest_at_or_before(spec, 500, anchor_ms=1_000) is None


def test_daily_next_and_latest() -> None:
    spec = schedule_of("daily", {"hourUTC": 3, "minuteUTC": 30})
    assert when(next_after(spec, ms(2026, 5, 10, 3, 29, 59))) == datetime(
        2026, 5, 10, 3, 30, tzinfo=UTC
    )
    # strictly after: at the instant itself, the next day's
    assert when(next_after(spec, ms(2026, 5, 10, 3, 30))) == datetime(
        2026, 5, 11, 3, 30, tzinfo=UTC
    )
    assert when(latest_at_or_before(spec, ms(2026, 5, 10, 3, 29), 0)) == datetime(
        2026, 5, 9, 3, 30, tzinfo=UTC
    )
    assert when(latest_at_or_before(spec, ms(2026, 5, 10, 3, 30), 0)) == datetime(
        2026, 5, 10, 3, 30, tzinfo=UTC
    )
    # nothing at or after the anchor yet
    assert latest_at_or_before(spec, ms(2026, 5, 10, 3, 29), ms(2026, 5, 9, 4)) is None


def test_hourly_rolls_over_midnight_and_year() -> None:
    spec = schedule_of("hourly", {"minuteUTC": 15})
    assert when(next_after(spec, ms(2026, 12, 31, 23, 16))) == datetime(
        2027, 1, 1, 0, 15, tzinfo=UTC
    )


def test_weekly_on_monday() -> None:
    spec = schedule_of("weekly", {"dayOfWeek": "monday", "hourUTC": 9, "minuteUTC": 0})
    # 2026-05-06 is a Wednesday; the next Monday is the 11th
    assert when(next_after(spec, ms(2026, 5, 6))) == datetime(2026, 5, 11, 9, 0, tzinfo=UTC)
    assert when(latest_at_or_before(spec, ms(2026, 5, 6), 0)) == datetime(
        2026, 5, 4, 9, 0, tzinfo=UTC
    )


def test_monthly_on_day_31_skips_short_months() -> None:
    spec = schedule_of("monthly", {"day": 31, "hourUTC": 16, "minuteUTC": 0})
    t = ms(2026, 1, 31, 16)
    fired = []
    for _ in range(7):
        t = next_after(spec, t)  # type: ignore[assignment]
        fired.append(when(t).month)  # type: ignore[union-attr]
    assert fired == [3, 5, 7, 8, 10, 12, 1]


def test_feb_29_waits_for_a_leap_year() -> None:
    spec = parse_cron("0 0 29 2 *")
    assert when(next_after(spec, ms(2026, 3, 1))) == datetime(2028, 2, 29, tzinfo=UTC)


def test_cron_with_lists_ranges_and_steps() -> None:
    spec = parse_cron("*/15 9-17 * * mon-fri")
    # Friday 17:50 -> Monday 09:00
    assert when(next_after(spec, ms(2026, 5, 8, 17, 50))) == datetime(2026, 5, 11, 9, 0, tzinfo=UTC)
    assert when(next_after(spec, ms(2026, 5, 11, 9, 0, 1))) == datetime(
        2026, 5, 11, 9, 15, tzinfo=UTC
    )


# ---- EventBridge Scheduler expressions ------------------------------------------


@pytest.mark.parametrize(
    ("register", "schedule", "expression", "every_ms"),
    [
        ("interval", {"minutes": 1}, "rate(1 minute)", None),
        ("interval", {"minutes": 5}, "rate(5 minutes)", None),
        ("interval", {"hours": 1}, "rate(1 hour)", None),
        ("interval", {"hours": 3}, "rate(3 hours)", None),
        ("interval", {"hours": 48}, "rate(2 days)", None),
        ("interval", {"seconds": 90 * 60}, "rate(90 minutes)", None),
        ("interval", {"seconds": 10}, "rate(1 minute)", 10_000),
        ("cron", "0 16 1 * *", "cron(0 16 1 * ? *)", None),
        ("cron", "*/15 9-17 * * mon-fri", "cron(0,15,30,45 9-17 ? * 2-6 *)", None),
        ("cron", "0 0 * * sun,sat", "cron(0 0 ? * 1,7 *)", None),
        ("cron", "0 0 * * 7", "cron(0 0 ? * 1 *)", None),
        ("cron", "5 4 * jan,jul *", "cron(5 4 * 1,7 ? *)", None),
        ("hourly", {"minuteUTC": 5}, "cron(5 * * * ? *)", None),
        ("daily", {"hourUTC": 3, "minuteUTC": 30}, "cron(30 3 * * ? *)", None),
        (
            "weekly",
            {"dayOfWeek": "monday", "hourUTC": 9, "minuteUTC": 0},
            "cron(0 9 ? * 2 *)",
            None,
        ),
        ("monthly", {"day": 31, "hourUTC": 16, "minuteUTC": 0}, "cron(0 16 31 * ? *)", None),
    ],
)
def test_eventbridge_expression(
    register: str, schedule: object, expression: str, every_ms: int | None
) -> None:
    found = aws_schedule(schedule_of(register, schedule))  # type: ignore[arg-type]
    assert (found.expression, found.every_ms) == (expression, every_ms)


def test_sub_minute_offsets_and_inexpressible_intervals() -> None:
    assert minute_offsets(10_000) == [0, 10_000, 20_000, 30_000, 40_000, 50_000]
    assert minute_offsets(7_000)[-1] == 56_000
    with pytest.raises(ValueError, match="no EventBridge Scheduler form"):
        aws_schedule(Interval(90_000))


@pytest.mark.parametrize(
    "text", ["0 16 1 * *", "*/15 9-17 * * mon-fri", "0 0 * * sun", "0 16 31 * *", "7 */5 * 2-4 *"]
)
def test_the_expression_fires_when_the_schedule_does(text: str) -> None:
    """The harness's EventBridge evaluation (runtime/emulator) of the AWS
    expression agrees with `next_after` over a run of firings."""
    spec = parse_cron(text)
    expression = aws_schedule(spec).expression
    t = ms(2026, 1, 30, 12, 1)
    for _ in range(20):
        ours = next_after(spec, t)
        theirs = next_fire(expression, t / 1000, 0)
        assert theirs is not None and ours == theirs * 1000, expression
        t = ours  # type: ignore[assignment]
