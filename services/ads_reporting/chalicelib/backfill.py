"""Report backfills: one request asks for a date range longer than one report may cover; it becomes one report
request per window of the report type's maximum range, each through the report state machine.

Window ``i`` of backfill ``b`` is report request ``b-w<i>``: a redelivered backfill finds them and adds nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from chalicelib.contracts import BackfillReports
from chalicelib.source import max_days, table_name
from shared import dates
from shared.contracts import ContractError, FieldError
from shared.reports import Reports
from shared.requests import RequestContext
from shared.service import Service
from shared.status import PLATFORM_TENANT, Status

MAX_WINDOWS = 100


def start(request: BackfillReports, ctx: RequestContext, service: Service, reports: Reports) -> None:
    first, last = _day(request, "startDate"), _day(request, "endDate")
    if last < first:
        raise ContractError(request.request_type, [FieldError("endDate", "a day on or after startDate",
                                                              request.endDate)])
    report_type = request.requestBody["configuration"]["reportTypeId"]
    cuts = dates.windows(first, last, max_days(report_type))
    if len(cuts) > MAX_WINDOWS:
        raise ContractError(request.request_type, [FieldError(
            "startDate", f"a range of at most {MAX_WINDOWS} reports of {max_days(report_type)} days",
            request.startDate)])
    template = request.model_dump(exclude_none=True, exclude={"requestId", "requestType", "startDate", "endDate"})
    backfill_id = ctx.request_id
    reports.records.put(reports.service, "backfill", backfill_id, backfillId=backfill_id, reportType=report_type,
                        windows=[[a.isoformat(), (b - timedelta(days=1)).isoformat()] for a, b in cuts])
    submitted = 0
    for index, (window_start, following) in enumerate(cuts):
        body = {**template["requestBody"], "startDate": window_start.isoformat(),
                "endDate": (following - timedelta(days=1)).isoformat()}
        submitted += reports.submit(f"{backfill_id}-w{index:03d}", {**template, "requestBody": body},
                                    fingerprint=f"{backfill_id}:{index}", backfillId=backfill_id, window=index)
    service.answer(ctx, request.customerId or PLATFORM_TENANT, Status.SUCCEEDED,
                   f"backfill {backfill_id} of {table_name(template)}: {len(cuts)} {report_type} reports of up to "
                   f"{max_days(report_type)} days from {first} to {last} ({submitted} submitted now)",
                   {"backfillId": backfill_id, "reportType": report_type, "windows": len(cuts)})


def _day(request: BackfillReports, field: str) -> date:
    value = dates.resolve(getattr(request, field), datetime.now(UTC), dates.REPORT_FORMAT)
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ContractError(request.request_type, [FieldError(
            field, "a day (YYYY-MM-DD) or a relative date such as TODAY(-90)", getattr(request, field))]) from None
