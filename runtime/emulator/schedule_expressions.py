"""EventBridge Scheduler's schedule expressions, evaluated for the harness:
when does a schedule fire next.

- `at(yyyy-mm-ddThh:mm:ss)`: once, at that time (UTC here: dispatch and
  deploy create schedules with ScheduleExpressionTimezone UTC).
- `rate(n minute|minutes|hour|hours|day|days)`: every n units from the
  schedule's creation.
- `cron(minutes hours day-of-month month day-of-week year)`: EventBridge's six
  fields; `*`, `?` (in one of the two day fields), values, ranges `a-b`,
  lists `a,b`, steps `*/n` and `a-b/n`, month names JAN-DEC, weekday names
  SUN-SAT (day-of-week 1-7 is SUN-SAT). `L`, `W` and `#` are not emulated
  (deploy never writes them): a clear error.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta

__all__ = ["ExpressionError", "next_fire"]


class ExpressionError(ValueError):
    pass


_MONTHS = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (1, 7), (1970, 2199)]
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_SEARCH_DAYS = 366 * 5


def _value(text: str, field: int) -> int:
    names = _MONTHS if field == 3 else _DAYS if field == 4 else {}
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise ExpressionError(f"{text!r} is not a value of cron field {field + 1}")
    return int(text)


def _field(text: str, field: int) -> set[int] | None:
    """The values a field allows (None: any, `*` or `?`)."""
    if text in ("*", "?"):
        return None
    if any(c in re.sub(r"[A-Z]{3}", "", text.upper()) for c in "LW#"):  # JUL, WED are names
        raise ExpressionError(f"cron field {text!r}: L, W and # are not emulated by the harness")
    lo, hi = _RANGES[field]
    allowed: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            start, end = lo, hi
        elif "-" in span:
            a, b = span.split("-", 1)
            start, end = _value(a, field), _value(b, field)
        else:
            start = _value(span, field)
            end = hi if step_text else start
        if not (lo <= start <= hi and lo <= end <= hi) or step < 1:
            raise ExpressionError(f"cron field {text!r} is out of range {lo}-{hi}")
        allowed.update(range(start, end + 1, step))
    return allowed


def _cron_next(fields: list[str], after: datetime) -> datetime | None:
    if len(fields) != 6:
        raise ExpressionError(f"cron() takes 6 fields, not {len(fields)}: {' '.join(fields)}")
    minutes, hours, dom, months, dow, years = (_field(f, i) for i, f in enumerate(fields))
    if (fields[2] == "?") == (fields[4] == "?"):
        raise ExpressionError("cron(): exactly one of day-of-month and day-of-week is `?`")
    t = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    end = after + timedelta(days=_SEARCH_DAYS)
    while t <= end:
        weekday = (t.isoweekday() % 7) + 1  # SUN=1 .. SAT=7
        day_ok = (dom is None or t.day in dom) and (dow is None or weekday in dow)
        if (years is None or t.year in years) and (months is None or t.month in months) and day_ok:
            if (hours is None or t.hour in hours) and (minutes is None or t.minute in minutes):
                return t
            t += timedelta(minutes=1)
        else:
            t = t.replace(hour=0, minute=0) + timedelta(days=1)
    return None


def next_fire(expression: str, after: float, created: float) -> float | None:
    """The first time (epoch seconds) after `after` that the schedule fires,
    or None (a one-time schedule past, a cron with no more times)."""
    found = re.fullmatch(r"(at|rate|cron)\((.*)\)", expression.strip())
    if not found:
        raise ExpressionError(f"not a schedule expression: {expression!r}")
    kind, body = found.groups()
    if kind == "at":
        moment = datetime.strptime(body, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
        return moment if moment > after else None
    if kind == "rate":
        parts = body.split()
        if len(parts) != 2 or not parts[0].isdigit() or parts[1].rstrip("s") not in _UNITS:
            raise ExpressionError(f"rate() takes `n minutes|hours|days`, not {body!r}")
        period = int(parts[0]) * _UNITS[parts[1].rstrip("s")]
        if period <= 0:
            raise ExpressionError(f"rate() needs a positive value: {body!r}")
        k = max(1, int((after - created) // period) + 1)
        return created + k * period
    fires = _cron_next(body.split(), datetime.fromtimestamp(after, UTC))
    return None if fires is None else fires.timestamp()
