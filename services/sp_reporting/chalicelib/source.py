"""Selling Partner Reports 2021-06-30 as a source of the report pipeline (``shared/reports.py``): DONE is a file
to fetch, FATAL a failure whose error document says why, CANCELLED a report with no data (not an error)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared import aws
from shared.amazon import accounts
from shared.amazon.http import Deadline
from shared.amazon.regions import Region, marketplace_region
from shared.amazon.sp import ProcessingStatus, SpReportsClient, TableRateLimiter
from shared.config import require
from shared.contracts import ContractError, FieldError
from shared.reports import Described, Progress, ReportFile
from shared.status import Status

ERROR_DOCUMENT_CHARS = 2000  # of a FATAL report's error document, in the notification


@functools.cache
def client(auth_id: str | None) -> SpReportsClient:
    """One client per credential set for the container; its rate limits are shared with every container through
    the report records table (the service's partition, ``ratelimit#<authId>#<operation>``)."""
    limiter = TableRateLimiter(lambda: aws.table(require("REPORT_RECORDS_TABLE")), {"service": "sp_reporting"},
                               f"ratelimit#{auth_id or accounts.DEFAULT_AUTH_ID}")
    return SpReportsClient(accounts.tokens(auth_id), limiter=limiter)


def region(request: Mapping[str, Any]) -> Region:
    return marketplace_region(request["requestBody"]["marketplaceIds"][0])


class SpSource:
    api, dataset, schedule_prefix, table_field = "sp", "sp_report", "sp", "tablePrefix"

    def describe(self, request: Mapping[str, Any]) -> Described:
        body = request["requestBody"]
        start, end = _time(body, "dataStartTime"), _time(body, "dataEndTime")
        if start and end and end < start:
            raise ContractError("createReport", [FieldError("requestBody.dataEndTime", "a time after dataStartTime",
                                                            body["dataEndTime"])])
        today = datetime.now(UTC).date()
        first, last = (start.date() if start else today), (end.date() if end else today)
        # A tenant's default tables are its own: a dataset's tables are shared, one tenant each (shared/reports.py)
        default = [request.get("customerId"), region(request).value, body["reportType"]]
        table = request.get("tablePrefix") or "-".join(part for part in default if part)
        return Described(table, body["reportType"], first, last,
                         {"marketplace-ids": ",".join(body["marketplaceIds"]), "region": region(request).value})

    def create(self, request: Mapping[str, Any], deadline: Deadline) -> str:
        body = request["requestBody"]
        return client(request.get("authId")).create_report(
            body["reportType"], body["marketplaceIds"], data_start_time=_time(body, "dataStartTime"),
            data_end_time=_time(body, "dataEndTime"), report_options=body.get("reportOptions"), deadline=deadline)

    def find(self, request: Mapping[str, Any], since: datetime, deadline: Deadline) -> str | None:
        """A report shows its type, marketplaces and times, not its options: a request with options, or without
        times, could adopt another's report (other data), so it is asked for again instead."""
        body = request["requestBody"]
        if body.get("reportOptions") or not (body.get("dataStartTime") and body.get("dataEndTime")):
            return None
        return client(request.get("authId")).find_report(
            body["reportType"], body["marketplaceIds"], data_start_time=_time(body, "dataStartTime"),
            data_end_time=_time(body, "dataEndTime"), created_since=since, deadline=deadline)

    def check(self, request: Mapping[str, Any], report_id: str, deadline: Deadline) -> Progress:
        sp = client(request.get("authId"))
        report = sp.get_report(report_id, region=region(request), deadline=deadline)
        status = str(report.processing_status)
        if report.processing_status == ProcessingStatus.DONE:
            return Progress(status, Status.SUCCEEDED, details={"reportDocumentId": report.report_document_id})
        if report.processing_status == ProcessingStatus.CANCELLED:
            return Progress(status, Status.NO_DATA, "Amazon cancelled the report: there is no data for it")
        if report.processing_status == ProcessingStatus.FATAL:
            return Progress(status, Status.FAILED, self._error_document(sp, request, report.report_document_id,
                                                                        deadline))
        return Progress(status)

    def file(self, request: Mapping[str, Any], report_id: str, details: Mapping[str, Any],
             deadline: Deadline) -> ReportFile:
        """A fresh URL (they last five minutes) for the report's document."""
        document = client(request.get("authId")).get_report_document(details["reportDocumentId"],
                                                                     region=region(request), deadline=deadline)
        return ReportFile(document.url, compressed=document.compression_algorithm == "GZIP")

    @staticmethod
    def _error_document(sp: SpReportsClient, request: Mapping[str, Any], document_id: str | None,
                        deadline: Deadline) -> str:
        if not document_id:
            return "Amazon could not make the report (FATAL) and gave no error document"
        document = sp.get_report_document(document_id, region=region(request), deadline=deadline)
        text = sp.read_document(document, deadline).decode("utf-8", "replace")
        return f"Amazon could not make the report (FATAL): {text[:ERROR_DOCUMENT_CHARS]}"


def _time(body: Mapping[str, Any], name: str) -> datetime | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ContractError("createReport", [FieldError(f"requestBody.{name}", "an ISO 8601 date or date-time",
                                                        value)]) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
