"""Relative dates: table-driven across month ends, leap years, negative offsets and time zones."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.dates import REPORT_FORMAT, resolve

MIDDAY = datetime(2026, 11, 27, 12, 30, 45, tzinfo=UTC)


@pytest.mark.parametrize(("now", "expression", "expected"), [
    (MIDDAY, "TODAY()", "2026-11-27T00:00:00"),
    (MIDDAY, "TODAY(-1)", "2026-11-26T00:00:00"),
    (MIDDAY, "today(+5)", "2026-12-02T00:00:00"),
    (datetime(2026, 1, 1, tzinfo=UTC), "TODAY(-1)", "2025-12-31T00:00:00"),
    (datetime(2024, 2, 28, tzinfo=UTC), "TODAY(1)", "2024-02-29T00:00:00"),  # leap year
    (datetime(2023, 2, 28, tzinfo=UTC), "TODAY(1)", "2023-03-01T00:00:00"),
    (MIDDAY, "NOW()", "2026-11-27T12:30:45"),
    (MIDDAY, "FirstDayOfOffsetMonth(0)", "2026-11-01T00:00:00"),
    (MIDDAY, "FIRSTDAYOFOFFSETMONTH(-2)", "2026-09-01T00:00:00"),
    (datetime(2026, 1, 15, tzinfo=UTC), "FIRSTDAYOFOFFSETMONTH(-2)", "2025-11-01T00:00:00"),
    (datetime(2026, 1, 31, tzinfo=UTC), "FIRSTDAYOFOFFSETMONTH(1)", "2026-02-01T00:00:00"),
    (MIDDAY, "FIFTEENTHDAYOFOFFSETMONTH(1)", "2026-12-15T00:00:00"),
    (datetime(2026, 12, 31, tzinfo=UTC), "FIFTEENTHDAYOFOFFSETMONTH(1)", "2027-01-15T00:00:00"),
    (datetime(2024, 1, 31, tzinfo=UTC), "LASTDAYOFOFFSETMONTH(1)", "2024-02-29T00:00:00"),  # leap February
    (datetime(2023, 1, 31, tzinfo=UTC), "LASTDAYOFOFFSETMONTH(1)", "2023-02-28T00:00:00"),
    (MIDDAY, "LASTDAYOFOFFSETMONTH(-1)", "2026-10-31T00:00:00"),
    (MIDDAY, "LASTDAYOFOFFSETMONTH(-11)", "2025-12-31T00:00:00"),
    (datetime(2026, 3, 31, tzinfo=UTC), "LASTDAYOFOFFSETMONTH(-1)", "2026-02-28T00:00:00"),
    (MIDDAY, "  TODAY( -7 )  ", "2026-11-20T00:00:00"),
])
def test_each_function_resolves_as_documented(now: datetime, expression: str, expected: str) -> None:
    assert resolve(expression, now) == expected


@pytest.mark.parametrize(("now", "zone", "expression", "expected"), [
    # 02:00 UTC on 1 March is still 28 February in New York: "today" is the request's day there
    (datetime(2026, 3, 1, 2, 0, tzinfo=UTC), "America/New_York", "TODAY()", "2026-02-28T00:00:00"),
    (datetime(2026, 3, 1, 2, 0, tzinfo=UTC), "America/New_York", "FIRSTDAYOFOFFSETMONTH(0)", "2026-02-01T00:00:00"),
    (datetime(2026, 3, 1, 2, 0, tzinfo=UTC), "America/New_York", "NOW()", "2026-02-28T21:00:00"),
    (datetime(2026, 11, 27, 20, 0, tzinfo=UTC), "Asia/Tokyo", "TODAY()", "2026-11-28T00:00:00"),
    (datetime(2026, 11, 27, 20, 0, tzinfo=UTC), "UTC", "TODAY()", "2026-11-27T00:00:00"),
])
def test_today_is_the_day_in_the_requests_time_zone(now: datetime, zone: str, expression: str,
                                                    expected: str) -> None:
    assert resolve(expression, now, zone=zone) == expected


def test_report_dates_use_their_own_format() -> None:
    assert resolve({"startDate": "TODAY(-1)", "endDate": "TODAY()"}, MIDDAY, REPORT_FORMAT) == {
        "startDate": "2026-11-26", "endDate": "2026-11-27"}


def test_values_inside_nested_objects_and_lists_are_resolved() -> None:
    request: dict[str, Any] = {
        "customerId": "democustomer", "requestType": "createExecution",
        "createExecutionRequest": {"timeWindowStart": "FIRSTDAYOFOFFSETMONTH(-2)",
                                   "timeWindowEnd": "FIRSTDAYOFOFFSETMONTH(-1)",
                                   "parameterValues": {"report_date": "now()", "days": ["TODAY(-1)", "TODAY(-2)"]},
                                   "ignoreDataGaps": True, "workflowExecutionTimeoutSeconds": "86400"}}

    resolved = resolve(request, MIDDAY)

    assert resolved["createExecutionRequest"] == {
        "timeWindowStart": "2026-09-01T00:00:00", "timeWindowEnd": "2026-10-01T00:00:00",
        "parameterValues": {"report_date": "2026-11-27T12:30:45",
                            "days": ["2026-11-26T00:00:00", "2026-11-25T00:00:00"]},
        "ignoreDataGaps": True, "workflowExecutionTimeoutSeconds": "86400"}  # the rest passes through verbatim
    assert request["createExecutionRequest"]["timeWindowStart"] == "FIRSTDAYOFOFFSETMONTH(-2)"  # not modified


@pytest.mark.parametrize("text", ["before TODAY()", "TODAY", "TODAY(abc)", "YESTERDAY()", "TODAY(-1) ok", ""])
def test_text_that_is_not_exactly_a_function_is_left_alone(text: str) -> None:
    assert resolve(text, MIDDAY) == text


def test_non_text_values_pass_through() -> None:
    assert resolve([1, 2.5, None, True, {"n": 3}], MIDDAY) == [1, 2.5, None, True, {"n": 3}]
