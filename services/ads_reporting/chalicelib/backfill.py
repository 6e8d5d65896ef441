"""Report backfills: one request asks for a date range longer than one report may cover; it becomes one report
request per window of the report type's maximum range, each through the report state machine.

Window ``i`` of backfill ``b`` is report request ``b-w<i>``. The windows are worked out once and recorded, so a
redelivered backfill (even after midnight, when its relative dates would resolve otherwise) submits the same ones,
which find their records and add nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from chalicelib.contracts import BackfillReports
from chalicelib.source import max_days, table_name
from shared import dates
from shared.amazon.ads import REPORT_TYPES
from shared.contracts import ContractError, FieldError
from shared.reports import Reports
from shared.requests import RequestContext
from shared.service import Service
from shared.status import PLATFORM_TENANT, Status

MAX_WINDOWS = 100


def start(request: BackfillReports, ctx: RequestContext, service: Service, reports: Reports) -> None:
    report_type = request.requestBody["configuration"]["reportTypeId"]
    template = request.model_dump(exclude_none=True, exclude={"requestId", "requestType", "startDate", "endDate"})
    backfill = reports.records.put_new(reports.service, "backfill", ctx.request_id, backfillId=ctx.request_id,
                                       reportType=report_type, fingerprint=request.fingerprint(),
                                       windows=_windows(request, report_type))
    if backfill["fingerprint"] != request.fingerprint():
        raise ContractError(request.request_type, [FieldError(
            "requestId", "an id not used before for a different backfill", ctx.request_id)])
    submitted = sum(reports.submit(f"{ctx.request_id}-w{index:03d}", _window(template, first, last),
                                   fingerprint=f"{request.fingerprint()}:{index}", backfillId=ctx.request_id,
                                   window=index)
                    for index, (first, last) in enumerate(backfill["windows"]))
    service.answer(ctx, request.customerId or PLATFORM_TENANT, Status.SUCCEEDED,
                   f"backfill {ctx.request_id} of {table_name(template)}: {len(backfill['windows'])} {report_type} "
                   f"reports of up to {max_days(report_type)} days from {backfill['windows'][0][0]} to "
                   f"{backfill['windows'][-1][1]} ({submitted} submitted now)",
                   {"backfillId": ctx.request_id, "reportType": report_type, "windows": len(backfill["windows"])})


def _windows(request: BackfillReports, report_type: str) -> list[list[str]]:
    """``[first, last]`` day of each report: the range cut at the report type's maximum; refused (ContractError)
    when it is backwards, too long, or starts before Amazon keeps the type's data."""
    first, last = _day(request, "startDate"), _day(request, "endDate")
    if last < first:
        raise ContractError(request.request_type, [FieldError("endDate", "a day on or after startDate",
                                                              request.endDate)])
    known = REPORT_TYPES.get(report_type)
    if known and first < datetime.now(UTC).date() - timedelta(days=known.retention_days):
        raise ContractError(request.request_type, [FieldError(
            "startDate", f"a day within the last {known.retention_days} days (Amazon keeps {report_type} data that "
            f"long)", request.startDate)])
    cuts = dates.windows(first, last, max_days(report_type))
    if len(cuts) > MAX_WINDOWS:
        raise ContractError(request.request_type, [FieldError(
            "startDate", f"a range of at most {MAX_WINDOWS} reports of {max_days(report_type)} days",
            request.startDate)])
    return [[a.isoformat(), (b - timedelta(days=1)).isoformat()] for a, b in cuts]


def _window(template: dict[str, Any], first: str, last: str) -> dict[str, Any]:
    return {**template, "requestBody": {**template["requestBody"], "startDate": first, "endDate": last}}


def _day(request: BackfillReports, field: str) -> date:
    value = dates.resolve(getattr(request, field), datetime.now(UTC), dates.REPORT_FORMAT)
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ContractError(request.request_type, [FieldError(
            field, "a day (YYYY-MM-DD) or a relative date such as TODAY(-90)", getattr(request, field))]) from None
