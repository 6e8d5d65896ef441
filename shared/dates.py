"""Relative dates in requests, in the AWS Solution's syntax, resolved when a request is handled (so a scheduled
request resolves at fire time):

======================================  ==========================================================
``NOW()``                               the current time, ``YYYY-MM-DDTHH:MM:SS`` whatever the format
``TODAY()``, ``TODAY(n)``               today plus ``n`` days (``n`` may be negative)
``FIRSTDAYOFOFFSETMONTH(n)``            the 1st of the month ``n`` months from this one
``FIFTEENTHDAYOFOFFSETMONTH(n)``        the 15th of that month
``LASTDAYOFOFFSETMONTH(n)``             its last day (28, 29, 30 or 31)
======================================  ==========================================================

Names are case-insensitive and a function must be the whole value (text around it is left alone, as the AWS
Solution did). Unlike the AWS Solution, values inside lists are resolved too, and "today" is the day in the
request's time zone when one is given.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

EXECUTION_FORMAT = "%Y-%m-%dT00:00:00"  # AMC's time windows
REPORT_FORMAT = "%Y-%m-%d"  # Ads and Selling Partner report dates
_NOW_FORMAT = "%Y-%m-%dT%H:%M:%S"
_FUNCTION = re.compile(r"^\s*(NOW|TODAY|FIRSTDAYOFOFFSETMONTH|FIFTEENTHDAYOFOFFSETMONTH|LASTDAYOFOFFSETMONTH)"
                       r"\(\s*([+-]?\d+)?\s*\)\s*$", re.IGNORECASE)


def resolve(value: Any, now: datetime, date_format: str = EXECUTION_FORMAT, zone: str | None = None) -> Any:
    """``value`` with every relative date in it (in nested objects and lists) replaced.

    ``now`` must be timezone-aware; ``zone`` (an IANA name such as ``America/New_York``) is where "today" is.
    """
    local = now.astimezone(ZoneInfo(zone)) if zone else now
    return _resolve(value, local, date_format)


def _resolve(value: Any, now: datetime, date_format: str) -> Any:
    if isinstance(value, Mapping):
        return {key: _resolve(item, now, date_format) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item, now, date_format) for item in value]
    if isinstance(value, str) and (match := _FUNCTION.match(value)):
        return _evaluate(match.group(1).upper(), int(match.group(2) or 0), now, date_format)
    return value


def _evaluate(function: str, offset: int, now: datetime, date_format: str) -> str:
    if function == "NOW":
        return now.strftime(_NOW_FORMAT)
    if function == "TODAY":
        return (now.date() + timedelta(days=offset)).strftime(date_format)
    year, month = _add_months(now.date(), offset)
    day = {"FIRSTDAYOFOFFSETMONTH": 1, "FIFTEENTHDAYOFOFFSETMONTH": 15,
           "LASTDAYOFOFFSETMONTH": calendar.monthrange(year, month)[1]}[function]
    return date(year, month, day).strftime(date_format)


def _add_months(day: date, months: int) -> tuple[int, int]:
    years, month_index = divmod(day.month - 1 + months, 12)
    return day.year + years, month_index + 1


def windows(start: date, end: date, days: int) -> list[tuple[date, date]]:
    """``[start, end]`` (whole days) cut into windows of ``days``, each ``(first day, day after the last)``; the
    last window may be shorter."""
    cuts, day = [], start
    while day <= end:
        following = min(day + timedelta(days=days), end + timedelta(days=1))
        cuts.append((day, following))
        day = following
    return cuts
