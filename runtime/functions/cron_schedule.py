"""Cron schedules as values, and when they fire (pure: no clock, no I/O).

Two kinds of schedule, both in UTC:
- `Interval(ms)`: every `ms` milliseconds (whole seconds) from an anchor
  (the cron's first registration or its last tick): ticks at anchor + k*ms.
- `CronSpec`: Unix cron's five fields `minute hour day-of-month month
  day-of-week`. Supported in each field: `*`, a number, a range `a-b`, a
  step `*/s`, `a-b/s` or `a/s` (from a to the field's end), and lists of
  those joined by commas; month names JAN-DEC and day names SUN-SAT (any
  case); day-of-week 0-7 with both 0 and 7 Sunday. Not supported: `L`, `W`,
  `#`, `?`, `@daily`-style macros.

Day-of-month and day-of-week: Unix cron fires on EITHER when both are
restricted, which EventBridge Scheduler (the AWS shell's crons) cannot
express (it takes `?` in one of them). So a schedule restricting both is
refused with a message saying to write two crons; with one restricted,
that one decides, as everywhere.

A day-of-month past a month's end (e.g. 31) skips the months that lack it
(`monthly({"day": 31, ...})` runs in the seven 31-day months only), as
Unix cron and EventBridge do and as Convex documents for `crons.monthly`.
A schedule that can never fire (`0 0 30 2 *`) is refused.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "CronSpec",
    "Interval",
    "Schedule",
    "ScheduleError",
    "latest_at_or_before",
    "next_after",
    "parse_cron",
]

MINUTE_MS = 60_000
_DAY = timedelta(days=1)
_SEARCH_DAYS = 366 * 8 + 2
"""A day that matches comes within 8 years (a leap day within 8, every
weekday of every date within 7): a search longer than this finds none."""

_MONTHS = {n: i for i, n in enumerate(calendar.month_abbr) if n}
_DAYS = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {k.upper(): v for k, v in _MONTHS.items()}),
    ("day of week", 0, 7, _DAYS),
)


class ScheduleError(ValueError):
    """A schedule that cannot be parsed or can never fire; the message says why."""


@dataclass(frozen=True)
class Interval:
    ms: int
    """Whole seconds, in milliseconds, > 0."""


@dataclass(frozen=True)
class CronSpec:
    text: str
    """The five fields as written (or as made by hourly/daily/...)."""
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    """Days of the month, 1-31."""
    months: tuple[int, ...]
    weekdays: tuple[int, ...]
    """0 = Sunday ... 6 = Saturday."""
    days_restricted: bool
    weekdays_restricted: bool

    def day_matches(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        if self.days_restricted:
            return day.day in self.days
        if self.weekdays_restricted:
            return (day.isoweekday() % 7) in self.weekdays
        return True


Schedule = Interval | CronSpec


def _number(text: str, name: str, lo: int, hi: int, names: dict[str, int]) -> int:
    value = names.get(text.upper())
    if value is None:
        if not text.isdigit():
            known = f" or a name ({', '.join(names)})" if names else ""
            raise ScheduleError(f"cron {name} field: {text!r} is not a number {lo}-{hi}{known}")
        value = int(text)
    if not lo <= value <= hi:
        raise ScheduleError(f"cron {name} field: {value} is out of range {lo}-{hi}")
    return value


def _field(text: str, name: str, lo: int, hi: int, names: dict[str, int]) -> set[int]:
    found: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"cron {name} field: step {step_text!r} must be a number > 0")
            step = int(step_text)
        if base == "*":
            first, last = lo, hi
        elif "-" in base:
            a, _, b = base.partition("-")
            first, last = _number(a, name, lo, hi, names), _number(b, name, lo, hi, names)
            if first > last:
                raise ScheduleError(f"cron {name} field: range {base!r} runs backwards")
        elif base:
            first = _number(base, name, lo, hi, names)
            last = hi if slash else first
        else:
            raise ScheduleError(f"cron {name} field: empty item in {text!r}")
        found.update(range(first, last + 1, step))
    return found


def parse_cron(text: str) -> CronSpec:
    """A CronSpec from `m h dom mon dow` (see the module docstring)."""
    if not isinstance(text, str):
        raise ScheduleError(f"a cron schedule is a string like '0 16 1 * *', not {text!r}")
    parts = text.split()
    if len(parts) != 5:
        raise ScheduleError(
            f"cron schedule {text!r} has {len(parts)} fields; write five: "
            "'minute hour day-of-month month day-of-week' (e.g. '0 16 1 * *')"
        )
    sets = [_field(p, *spec) for p, spec in zip(parts, _FIELDS, strict=True)]
    weekdays = {d % 7 for d in sets[4]}
    days_restricted = sets[2] != set(range(1, 32))
    weekdays_restricted = weekdays != set(range(7))
    if days_restricted and weekdays_restricted:
        raise ScheduleError(
            f"cron schedule {text!r} restricts both day-of-month and day-of-week; "
            "Unix cron would run on either, which EventBridge (the AWS deploy) cannot "
            "express: leave one of them '*' and write a second cron for the other"
        )
    spec = CronSpec(
        text=" ".join(parts),
        minutes=tuple(sorted(sets[0])),
        hours=tuple(sorted(sets[1])),
        days=tuple(sorted(sets[2])),
        months=tuple(sorted(sets[3])),
        weekdays=tuple(sorted(weekdays)),
        days_restricted=days_restricted,
        weekdays_restricted=weekdays_restricted,
    )
    if next_after(spec, 0) is None:
        raise ScheduleError(f"cron schedule {text!r} never runs (no month has that day)")
    return spec


def _ms(moment: datetime) -> float:
    return float(int(moment.timestamp()) * 1000)


def next_after(schedule: Schedule, t_ms: float) -> float | None:
    """The first time the schedule fires strictly after `t_ms` (ms since the
    epoch, UTC). An interval's `t_ms` is its anchor (registration or last
    tick): the answer is `t_ms + ms`. None: a cron that never fires."""
    if isinstance(schedule, Interval):
        return t_ms + schedule.ms
    start = datetime.fromtimestamp((t_ms // MINUTE_MS + 1) * MINUTE_MS / 1000, UTC)
    day = start.replace(hour=0, minute=0)
    for _ in range(_SEARCH_DAYS):
        if schedule.day_matches(day):
            for hour in schedule.hours:
                for minute in schedule.minutes:
                    moment = day.replace(hour=hour, minute=minute)
                    if moment >= start:
                        return _ms(moment)
        day += _DAY
    return None


def latest_at_or_before(schedule: Schedule, t_ms: float, anchor_ms: float) -> float | None:
    """The last time the schedule fired at or before `t_ms`, not before
    `anchor_ms` (for an interval: anchor + k*ms); None if it did not. After
    downtime, this is the one missed tick that runs."""
    if t_ms < anchor_ms:
        return None
    if isinstance(schedule, Interval):
        return anchor_ms + ((t_ms - anchor_ms) // schedule.ms) * schedule.ms
    end = datetime.fromtimestamp((t_ms // MINUTE_MS) * MINUTE_MS / 1000, UTC)
    day = end.replace(hour=0, minute=0)
    for _ in range(_SEARCH_DAYS):
        if _ms(day + _DAY) <= anchor_ms:
            return None
        if schedule.day_matches(day):
            for hour in reversed(schedule.hours):
                for minute in reversed(schedule.minutes):
                    moment = day.replace(hour=hour, minute=minute)
                    if moment <= end:
                        found = _ms(moment)
                        return found if found >= anchor_ms else None
        day -= _DAY
    return None
