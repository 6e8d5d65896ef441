"""Schedule expressions (``rate(...)``, ``cron(...)``, ``at(...)``) as EventBridge Scheduler evaluates them, and the
older quick start's ``custom(...)`` forms translated to cron. The workflow manager validates with it; the local
cloud fires schedules with it.

AWS cron has six fields, ``minutes hours day-of-month month day-of-week year``, with day-of-week 1-7 = SUN-SAT and
one of the two day fields ``?``. Supported: ``*``, ``?``, lists, ranges, steps, names, ``L`` (last day of the
month, or ``5L`` last Thursday) and ``#`` (``2#1``: first Monday). ``W`` (nearest weekday) raises ScheduleError.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_MONTHS = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_CUSTOM = re.compile(r"^custom\(\s*([HDWM])\s+(\S+)\s+(\S+)\s*\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
SEARCH_YEARS = 5


class ScheduleError(ValueError):
    """A schedule expression that is malformed, or uses what is not evaluated here."""


class Schedule(Protocol):
    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after ``moment`` (timezone-aware), or None when there is none."""
        ...


@dataclass(frozen=True)
class Rate:
    period: timedelta
    anchor: datetime

    def next_after(self, moment: datetime) -> datetime | None:
        elapsed = max(0.0, (moment - self.anchor).total_seconds())
        periods = int(elapsed // self.period.total_seconds()) + 1
        return self.anchor + periods * self.period


@dataclass(frozen=True)
class At:
    moment: datetime

    def next_after(self, moment: datetime) -> datetime | None:
        return self.moment if self.moment > moment else None


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    years: frozenset[int]
    days: Days
    zone: ZoneInfo

    def next_after(self, moment: datetime) -> datetime | None:
        local = moment.astimezone(self.zone).replace(second=0, microsecond=0, tzinfo=None) + timedelta(minutes=1)
        day = local.date()
        for _ in range(366 * SEARCH_YEARS):
            if day.year in self.years and day.month in self.months and self.days.match(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = datetime(day.year, day.month, day.day, hour, minute)
                        if candidate >= local:
                            return candidate.replace(tzinfo=self.zone).astimezone(UTC)
            day += timedelta(days=1)
        return None


@dataclass(frozen=True)
class Days:
    """The days a cron expression's two day fields allow (one of them is ``?``), parsed once."""

    by_week: bool  # the day-of-month field is '?'
    month_days: frozenset[int] = frozenset()
    last_of_month: bool = False  # 'L'
    weekdays: frozenset[int] = frozenset()  # 1 = SUN ... 7 = SAT, as AWS counts
    last_weekdays: frozenset[int] = frozenset()  # '5L': the last Thursday
    nth_weekdays: frozenset[tuple[int, int]] = frozenset()  # '2#1': the first Monday

    @classmethod
    def parse(cls, day_of_month: str, day_of_week: str) -> Days:
        if day_of_month != "?":
            if day_of_month == "L":
                return cls(by_week=False, last_of_month=True)
            return cls(by_week=False, month_days=_values(day_of_month, 1, 31))
        weekdays, last, nth = set(), set(), set()
        for part in day_of_week.upper().split(","):
            if part.endswith("L"):
                last.add(_weekday(part[:-1]))
            elif "#" in part:
                name, _, count = part.partition("#")
                if count not in ("1", "2", "3", "4", "5"):
                    raise ScheduleError(f"cron day {part!r}: the week after '#' must be 1-5")
                nth.add((_weekday(name), int(count)))
            else:
                weekdays |= _values(part, 1, 7, _DAYS)
        return cls(by_week=True, weekdays=frozenset(weekdays), last_weekdays=frozenset(last),
                   nth_weekdays=frozenset(nth))

    def match(self, day: date) -> bool:
        last = calendar.monthrange(day.year, day.month)[1]
        if not self.by_week:
            return day.day in self.month_days or (self.last_of_month and day.day == last)
        weekday = (day.isoweekday() % 7) + 1
        return (weekday in self.weekdays or (weekday in self.last_weekdays and day.day > last - 7)
                or (weekday, (day.day - 1) // 7 + 1) in self.nth_weekdays)


def translate(expression: str) -> str:
    """The EventBridge form of ``expression``: the older quick start's ``custom(...)`` forms become cron (hours in
    UTC, weekdays 0 = Monday as Python counts them); other expressions are returned as they are."""
    expression = expression.strip()
    match = _CUSTOM.match(expression)
    if not expression.startswith("custom("):
        return expression
    if not match:
        raise ScheduleError(f"{expression!r}: expected custom(H * *), custom(D * hour), custom(W weekday hour) or "
                            "custom(M day hour)")
    unit, day, hour = match.group(1), match.group(2), match.group(3)
    if unit == "H":
        return "cron(0 * * * ? *)"
    limits = {"D": None, "W": (0, 6), "M": (1, 31)}[unit]
    if not hour.isdigit() or not 0 <= int(hour) <= 23:
        raise ScheduleError(f"{expression!r}: the hour must be 0-23 (UTC)")
    if limits and not (day.isdigit() and limits[0] <= int(day) <= limits[1]):
        what = "weekday 0-6 (0 = Monday)" if unit == "W" else "day of the month 1-31"
        raise ScheduleError(f"{expression!r}: expected a {what}")
    if unit == "D":
        return f"cron(0 {int(hour)} * * ? *)"
    if unit == "W":
        return f"cron(0 {int(hour)} ? * {(int(day) + 1) % 7 + 1} *)"
    return f"cron(0 {int(hour)} {int(day)} * ? *)"


def parse(expression: str, timezone: str = "UTC", anchor: datetime | None = None) -> Schedule:
    """Parse an EventBridge schedule expression (or a ``custom(...)`` one); ``anchor`` is when a rate schedule
    starts counting."""
    expression = translate(expression)
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"{timezone!r} is not a time zone name such as 'UTC' or 'Europe/Berlin'") from exc
    if match := _RATE.match(expression):
        value, unit = int(match.group(1)), match.group(2).rstrip("s")
        if value < 1 or (value == 1) != (match.group(2) == unit):
            raise ScheduleError(f"{expression}: use 'rate(1 {unit})' or 'rate(N {unit}s)' with N > 1")
        try:
            period = timedelta(seconds=value * _UNITS[unit])
        except OverflowError:  # beyond timedelta (about 2.7 million years): no schedule fires that rarely
            raise ScheduleError(f"{expression}: a period of at most 999999999 days") from None
        return Rate(period, anchor or datetime.now(UTC))
    if expression.startswith("at(") and expression.endswith(")"):
        try:
            return At(datetime.fromisoformat(expression[3:-1]).replace(tzinfo=zone).astimezone(UTC))
        except ValueError as exc:
            raise ScheduleError(f"{expression}: expected at(yyyy-mm-ddThh:mm:ss)") from exc
    if expression.startswith("cron(") and expression.endswith(")"):
        return _cron(expression[5:-1].split(), zone, expression)
    raise ScheduleError(f"{expression!r}: expected rate(...), cron(...) or at(...)")


def _cron(fields: list[str], zone: ZoneInfo, expression: str) -> Cron:
    if len(fields) != 6:
        raise ScheduleError(f"{expression}: cron takes 6 fields (minutes hours day-of-month month day-of-week year)")
    minutes, hours, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ScheduleError(f"{expression}: exactly one of day-of-month and day-of-week must be '?'")
    if "W" in dom:
        raise ScheduleError(f"{expression}: 'W' (nearest weekday) is not supported by the local cloud")
    return Cron(minutes=_values(minutes, 0, 59), hours=_values(hours, 0, 23), months=_values(month, 1, 12, _MONTHS),
                years=_values(year, 1970, 2199), days=Days.parse(dom, dow), zone=zone)


def _values(field: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    """The values a cron field allows: ``*``, ``a``, ``a-b``, ``*/n``, ``a/n``, ``a-b/n`` and lists of those."""
    values: set[int] = set()
    for part in field.upper().split(","):
        base, _, step = part.partition("/")
        if base in ("*", "?"):
            start, end = low, high
        else:
            first, _, last = base.partition("-")
            start = _number(first, names)
            end = _number(last, names) if last else (high if step else start)
        if not (low <= start <= high and low <= end <= high):
            raise ScheduleError(f"cron field {field!r}: values must be within {low}-{high}")
        values.update(range(start, end + 1, int(step) if step else 1))
    return frozenset(values)


def _number(text: str, names: dict[str, int] | None) -> int:
    if names and text in names:
        return names[text]
    if not text.isdigit():
        choices = f" or one of {', '.join(names)}" if names else ""
        raise ScheduleError(f"cron value {text!r} is not a number{choices}")
    return int(text)


def _weekday(text: str) -> int:
    weekday = _number(text, _DAYS)
    if not 1 <= weekday <= 7:
        raise ScheduleError(f"cron day of the week {text!r}: expected 1-7 or SUN-SAT")
    return weekday
