"""Amazon Ads reporting v3 as a source of the report pipeline (``shared/reports.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from shared.amazon import accounts
from shared.amazon.ads import REPORT_TYPES, AdsClient, ReportStatus
from shared.amazon.http import Deadline
from shared.contracts import ContractError, FieldError
from shared.reports import Described, Progress, ReportFile
from shared.status import Status

DEFAULT_MAX_DAYS = 31  # the longest range of most report types, for one this code does not know


def client(auth_id: str | None) -> AdsClient:
    """A client with ``auth_id``'s tokens; cheap, since tokens and connections are kept per container."""
    return AdsClient(accounts.tokens(auth_id), http=accounts.http("ads"))


def table_name(request: Mapping[str, Any]) -> str:
    report_type = request["requestBody"]["configuration"]["reportTypeId"]
    return request.get("tableName") or f"{request['profileId']}-{report_type}"


def max_days(report_type: str) -> int:
    known = REPORT_TYPES.get(report_type)
    return known.max_days if known else DEFAULT_MAX_DAYS


class AdsSource:
    api, dataset, schedule_prefix, table_field = "ads", "ads_report", "ads", "tableName"

    def describe(self, request: Mapping[str, Any]) -> Described:
        """Refuses (ContractError) dates that are not dates, in the wrong order or further apart than the report
        type allows: Amazon would, later and less clearly."""
        body = request["requestBody"]
        report_type = body["configuration"]["reportTypeId"]
        start, end = _date(body, "startDate"), _date(body, "endDate")
        if end < start:
            raise ContractError("createReport", [FieldError("requestBody.endDate", "a date on or after startDate",
                                                            body["endDate"])])
        if (end - start).days + 1 > max_days(report_type):
            raise ContractError("createReport", [FieldError(
                "requestBody.endDate", f"at most {max_days(report_type)} days after startDate for {report_type} "
                f"(backfillReports splits longer ranges)", body["endDate"])])
        return Described(table_name(request), report_type, start, end, {
            "profile-id": request["profileId"], "region": request["region"],
            "ad-product": str(body["configuration"].get("adProduct", ""))})

    def create(self, request: Mapping[str, Any], deadline: Deadline) -> str:
        return client(request.get("authId")).create_report(request["profileId"], request["region"],
                                                           request["requestBody"], deadline=deadline).report_id

    def find(self, request: Mapping[str, Any], since: datetime, deadline: Deadline) -> str | None:
        return None  # asking again is safe: Amazon answers 425 naming the report still running

    def check(self, request: Mapping[str, Any], report_id: str, deadline: Deadline) -> Progress:
        report = client(request.get("authId")).get_report(request["profileId"], request["region"], report_id,
                                                          deadline=deadline)
        if report.status == ReportStatus.COMPLETED:
            return Progress(str(report.status), Status.SUCCEEDED)
        if report.status == ReportStatus.FAILED:
            return Progress(str(report.status), Status.FAILED, report.failure_reason or "the report failed")
        return Progress(str(report.status))

    def file(self, request: Mapping[str, Any], report_id: str, details: Mapping[str, Any],
             deadline: Deadline) -> ReportFile:
        """A fresh URL: each read of a COMPLETED report issues one valid for an hour."""
        report = client(request.get("authId")).get_report(request["profileId"], request["region"], report_id,
                                                          deadline=deadline)
        return ReportFile(str(report.url), compressed=True)


def _date(body: Mapping[str, Any], name: str) -> date:
    try:
        return date.fromisoformat(body[name])
    except ValueError:
        raise ContractError("createReport", [FieldError(f"requestBody.{name}", "a date, YYYY-MM-DD",
                                                        body[name])]) from None
