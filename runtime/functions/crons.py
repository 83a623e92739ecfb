"""`functions/crons.py`: `crons = cron_jobs()` and its jobs (Convex's cronJobs).

    crons = cron_jobs()
    crons.interval("clear messages", {"minutes": 1}, internal.messages.clear_all)
    crons.monthly("payment reminder", {"day": 1, "hourUTC": 16, "minuteUTC": 0},
                  "payments:send_email", {"email": "my_email@example.com"})

Every method checks what it is given at once (the line in crons.py fails
with a message saying what to write), so a bad crons.py fails the reload
like a bad schema. The function a job runs is checked at load, when the
registry knows every function (`registry.py`: it must exist and be a
mutation or an action, public or internal).

Schedules are `cron_schedule.Interval` / `CronSpec` (when they fire:
`next_after`); hourly/daily/weekly/monthly are cron specs
(`monthly` on day 31 skips the shorter months).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import PlatformError
from runtime.limits import ARGUMENTS_BYTES, CRON_JOBS_MAX, CRON_NAME_BYTES
from runtime.values import InvalidValueError, check_value, dumps

from .cron_schedule import (
    CronSpec,
    Interval,
    Schedule,
    ScheduleError,
    latest_at_or_before,
    next_after,
    parse_cron,
)

__all__ = [
    "CronError",
    "CronJob",
    "CronJobs",
    "CronSpec",
    "Interval",
    "Schedule",
    "cron_jobs",
    "latest_at_or_before",
    "next_after",
    "parse_cron",
]

WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")


class CronError(PlatformError):
    """A job of crons.py that cannot be registered; the message says what to fix."""

    code = "CRONS_INVALID"


@dataclass(frozen=True)
class CronJob:
    name: str
    schedule: Schedule
    fn: Any
    """A path string ("messages:clear") or the function object, as given."""
    args: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    """The function's path, filled in at load (`registry.py`)."""


def _whole(value: Any, what: str, lo: int, hi: int) -> int:
    if type(value) is not int and not (type(value) is float and value.is_integer()):
        raise CronError(f"{what} must be a whole number {lo}-{hi}, not {value!r}")
    number = int(value)
    if not lo <= number <= hi:
        raise CronError(f"{what} must be {lo}-{hi}, not {number}")
    return number


def _fields(name: str, given: Any, required: tuple[str, ...]) -> dict[str, Any]:
    example = ", ".join(f'"{k}": ...' for k in required)
    if not isinstance(given, Mapping):
        raise CronError(f"cron {name!r}: the schedule is a dict {{{example}}}, not {given!r}")
    unknown = sorted(set(given) - set(required))
    missing = [k for k in required if k not in given]
    if unknown or missing:
        raise CronError(
            f"cron {name!r}: the schedule takes exactly {{{example}}}"
            + (f"; unknown: {', '.join(map(str, unknown))}" if unknown else "")
            + (f"; missing: {', '.join(missing)}" if missing else "")
        )
    return dict(given)


class CronJobs:
    """The jobs of functions/crons.py, in registration order."""

    def __init__(self) -> None:
        self.jobs: dict[str, CronJob] = {}

    def __iter__(self) -> Iterator[CronJob]:
        return iter(self.jobs.values())

    def __len__(self) -> int:
        return len(self.jobs)

    def _add(self, name: Any, schedule: Schedule, fn: Any, args: Any) -> None:
        if not isinstance(name, str) or not name.strip():
            raise CronError(f"a cron's name is a non-empty string, not {name!r}")
        if len(name.encode()) > CRON_NAME_BYTES:
            raise CronError(f"cron name {name[:40]!r}... is over {CRON_NAME_BYTES} bytes")
        if name in self.jobs:
            raise CronError(f"cron {name!r} is registered twice: each cron needs its own name")
        if len(self.jobs) >= CRON_JOBS_MAX:
            raise CronError(f"more than {CRON_JOBS_MAX} crons (CRON_JOBS_MAX)")
        from .registry import FunctionDefinition

        if not isinstance(fn, (str, FunctionDefinition)) or fn == "":
            raise CronError(
                f"cron {name!r}: the function is a path like 'messages:clear' or the "
                f"function object, not {fn!r}"
            )
        if args is None:
            args = {}
        if type(args) is not dict:
            raise CronError(f"cron {name!r}: args must be a dict, not {type(args).__name__}")
        try:
            check_value(args, path="args")
        except InvalidValueError as e:
            raise CronError(f"cron {name!r}: args are not a Convex value: {e}") from None
        if len(dumps(args)) > ARGUMENTS_BYTES:
            raise CronError(f"cron {name!r}: args are over {ARGUMENTS_BYTES} bytes")
        self.jobs[name] = CronJob(name, schedule, fn, args)

    def interval(self, name: str, schedule: Any, fn: Any, args: Any = None) -> None:
        """Every n seconds, minutes or hours: {"seconds": n} | {"minutes": n} | {"hours": n}."""
        units = {"seconds": 1000, "minutes": 60_000, "hours": 3_600_000}
        if (
            not isinstance(schedule, Mapping)
            or len(schedule) != 1
            or next(iter(schedule)) not in units
        ):
            raise CronError(
                f"cron {name!r}: an interval is one of {{'seconds': n}}, {{'minutes': n}}, "
                f"{{'hours': n}}, not {schedule!r}"
            )
        ((unit, count),) = schedule.items()
        if type(count) not in (int, float) or not count > 0:
            raise CronError(f"cron {name!r}: the interval's {unit} must be a number > 0")
        ms = count * units[unit]
        if ms % 1000 != 0:
            raise CronError(f"cron {name!r}: the interval must be whole seconds, not {ms / 1000} s")
        self._add(name, Interval(int(ms)), fn, args)

    def cron(self, name: str, schedule: str, fn: Any, args: Any = None) -> None:
        """Unix cron syntax, UTC: "minute hour day-of-month month day-of-week"."""
        try:
            spec = parse_cron(schedule)
        except ScheduleError as e:
            raise CronError(f"cron {name!r}: {e}") from None
        self._add(name, spec, fn, args)

    def _spec(self, name: str, text: str) -> CronSpec:
        try:
            return parse_cron(text)
        except ScheduleError as e:  # e.g. monthly on a day no month has
            raise CronError(f"cron {name!r}: {e}") from None

    def hourly(self, name: str, schedule: Any, fn: Any, args: Any = None) -> None:
        """Every hour at {"minuteUTC": m}."""
        given = _fields(name, schedule, ("minuteUTC",))
        minute = _whole(given["minuteUTC"], f"cron {name!r}: minuteUTC", 0, 59)
        self._add(name, self._spec(name, f"{minute} * * * *"), fn, args)

    def daily(self, name: str, schedule: Any, fn: Any, args: Any = None) -> None:
        """Every day at {"hourUTC": h, "minuteUTC": m}."""
        given = _fields(name, schedule, ("hourUTC", "minuteUTC"))
        hour = _whole(given["hourUTC"], f"cron {name!r}: hourUTC", 0, 23)
        minute = _whole(given["minuteUTC"], f"cron {name!r}: minuteUTC", 0, 59)
        self._add(name, self._spec(name, f"{minute} {hour} * * *"), fn, args)

    def weekly(self, name: str, schedule: Any, fn: Any, args: Any = None) -> None:
        """Every week on {"dayOfWeek": "monday", "hourUTC": h, "minuteUTC": m}."""
        given = _fields(name, schedule, ("dayOfWeek", "hourUTC", "minuteUTC"))
        day = given["dayOfWeek"]
        if day not in WEEKDAYS:
            raise CronError(
                f"cron {name!r}: dayOfWeek is one of {', '.join(WEEKDAYS)}, not {day!r}"
            )
        hour = _whole(given["hourUTC"], f"cron {name!r}: hourUTC", 0, 23)
        minute = _whole(given["minuteUTC"], f"cron {name!r}: minuteUTC", 0, 59)
        text = f"{minute} {hour} * * {WEEKDAYS.index(day)}"
        self._add(name, self._spec(name, text), fn, args)

    def monthly(self, name: str, schedule: Any, fn: Any, args: Any = None) -> None:
        """Every month on {"day": d, "hourUTC": h, "minuteUTC": m}; a day past
        a month's end skips that month (day 31: the seven 31-day months)."""
        given = _fields(name, schedule, ("day", "hourUTC", "minuteUTC"))
        day = _whole(given["day"], f"cron {name!r}: day", 1, 31)
        hour = _whole(given["hourUTC"], f"cron {name!r}: hourUTC", 0, 23)
        minute = _whole(given["minuteUTC"], f"cron {name!r}: minuteUTC", 0, 59)
        self._add(name, self._spec(name, f"{minute} {hour} {day} * *"), fn, args)


def cron_jobs() -> CronJobs:
    """A new, empty set of cron jobs (Convex's `cronJobs()`)."""
    return CronJobs()
