"""SP-API Reports' state: the reports of each region and app, their lifecycle, their documents and the rate
limits. Plain Python, named after the API's operations; ``routes.py`` serves it over HTTP.

A report's status is computed from the clock when it is read: IN_QUEUE for ``timings.queued_s``, IN_PROGRESS
for ``timings.processing_s``, then its outcome: the one a fault forces (DONE, FATAL or CANCELLED), else CANCELLED
for a Sales and Traffic report starting more than two years ago, else DONE; a status once reached is kept, whatever
the timings become. Reports are kept ``timings.retention_days``.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from local.sandbox.errors import SandboxError
from local.sandbox.files import Files, StoredFile
from local.sandbox.sp import data
from shared.amazon.regions import MARKETPLACES
from shared.amazon.sp import DOCUMENTED_LIMITS, TokenBucket

IN_QUEUE, IN_PROGRESS, DONE, CANCELLED, FATAL = "IN_QUEUE", "IN_PROGRESS", "DONE", "CANCELLED", "FATAL"
STATUSES = (CANCELLED, DONE, FATAL, IN_PROGRESS, IN_QUEUE)
OUTCOMES = (DONE, FATAL, CANCELLED)  # a report's end, which a fault may also force (routes.py declares them)
GRANULARITIES = {"dateGranularity": ("DAY", "WEEK", "MONTH"), "asinGranularity": ("PARENT", "CHILD", "SKU")}
FAULT_REASON = "The report could not be generated: processing failed (fault injected in the sandbox)."
ONE_MARKETPLACE = ("Report rejected for this client. Multiple marketplaces were provided for this report type that "
                   "can only be applied to one marketplace at a time.")
FUTURE_TOLERANCE = timedelta(minutes=5)  # clocks differ: "now" from a client a little ahead is still now


class SpError(SandboxError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, message, code=code)


def invalid(message: str) -> SpError:
    return SpError(400, "InvalidInput", message)


@dataclass
class Timings:
    """How long reports take and how long things last; change them at any time (tests make them short)."""

    queued_s: float = 1.0
    processing_s: float = 2.0
    document_url_s: int = 300  # a document URL expires after 5 minutes
    retention_days: float = 90


@dataclass
class StoredReport:
    report_id: str
    region: str
    client: str
    request: data.DocumentRequest
    created: float
    outcome: str
    status: str = IN_QUEUE
    started: float | None = None
    ended: float | None = None
    document_id: str | None = None

    def as_json(self) -> dict[str, object]:
        """The ``Report`` of the model."""
        report: dict[str, object] = {
            "reportId": self.report_id, "reportType": self.request.report_type,
            "dataStartTime": data.iso(self.request.start), "dataEndTime": data.iso(self.request.end),
            "createdTime": _iso_epoch(self.created), "processingStatus": self.status,
            "marketplaceIds": list(self.request.marketplace_ids)}
        if self.started is not None:
            report["processingStartTime"] = _iso_epoch(self.started)
        if self.ended is not None:
            report["processingEndTime"] = _iso_epoch(self.ended)
        if self.document_id:
            report["reportDocumentId"] = self.document_id
        return report


@dataclass(frozen=True)
class ReportsQuery:
    """getReports' filters (``created_*`` as epoch seconds), and where the previous page ended."""

    report_types: tuple[str, ...]
    processing_statuses: tuple[str, ...] = ()
    marketplace_ids: tuple[str, ...] = ()
    page_size: int = 10
    created_since: float | None = None
    created_until: float | None = None
    after: tuple[float, int] | None = None  # (created, report id) of the last report sent


@dataclass
class SpState:
    files: Files
    outcome_fault: Callable[[], str | None] = lambda: None  # the outcome a fault forces on the next report
    clock: Callable[[], float] = time.time
    timings: Timings = field(default_factory=Timings)
    limits: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(DOCUMENTED_LIMITS))

    def __post_init__(self) -> None:
        self.reports: dict[tuple[str, str, str], StoredReport] = {}  # (region, client, report id) -> report
        self.documents: dict[tuple[str, str, str], StoredReport] = {}  # (region, client, document id) -> report
        self._buckets: dict[tuple[str, str], tuple[tuple[float, float], TokenBucket]] = {}
        self._ids = itertools.count(50_031_019_933)
        self._documents = itertools.count(1)
        self._lock = threading.RLock()

    # -- rate limits -----------------------------------------------------------------------------------------

    def take_token(self, client: str, operation: str) -> bool:
        """Whether ``client`` may call ``operation`` now (a token bucket per client and operation)."""
        limit = self.limits.get(operation)
        if limit is None:
            return True
        with self._lock:
            found = self._buckets.get((client, operation))
            if found is None or found[0] != limit:  # a changed limit starts a full bucket
                found = self._buckets[(client, operation)] = (limit, TokenBucket(*limit, time.monotonic()))
            return found[1].reserve(time.monotonic(), max_wait=0) is not None

    # -- operations ------------------------------------------------------------------------------------------

    def create_report(self, region: str, client: str, body: Mapping[str, object]) -> str:
        request = self._specification(region, body)
        outcome = self.outcome_fault()
        if outcome is None:
            outcome = CANCELLED if _too_old(request, self.clock()) else DONE
        with self._lock:
            self._forget_expired()
            report = StoredReport(str(next(self._ids)), region, client, request, self.clock(), outcome)
            self.reports[(region, client, report.report_id)] = report
        return report.report_id

    def get_report(self, region: str, client: str, report_id: str) -> dict[str, object]:
        with self._lock:
            return self._advanced(self._report(region, client, report_id)).as_json()

    def get_reports(self, region: str, client: str, query: ReportsQuery) -> dict[str, object]:
        now = self.clock()
        since = query.created_since if query.created_since is not None else now - self.timings.retention_days * 86400
        until = query.created_until if query.created_until is not None else now
        if since > until:
            raise invalid("createdSince must be before createdUntil")
        with self._lock:
            self._forget_expired()
            found = [self._advanced(r) for r in self.reports.values()
                     if r.region == region and r.client == client and since <= r.created <= until
                     and r.request.report_type in query.report_types
                     and (not query.marketplace_ids or set(query.marketplace_ids) & set(r.request.marketplace_ids))
                     and (query.after is None or (r.created, int(r.report_id)) < query.after)]
            found = [r for r in found if not query.processing_statuses or r.status in query.processing_statuses]
            found.sort(key=lambda r: (r.created, int(r.report_id)), reverse=True)
            page = found[:query.page_size]
            response: dict[str, object] = {"reports": [r.as_json() for r in page]}
        if len(found) > len(page):
            last = page[-1]
            response["nextToken"] = next_token(query, since, until, (last.created, int(last.report_id)))
        return response

    def cancel_report(self, region: str, client: str, report_id: str) -> None:
        with self._lock:
            report = self._advanced(self._report(region, client, report_id))
            if report.status != IN_QUEUE:
                raise invalid(f"Report {report_id} cannot be cancelled: it is {report.status}, and only reports "
                              f"IN_QUEUE can be cancelled.")
            report.status, report.outcome = CANCELLED, CANCELLED

    def get_report_document(self, region: str, client: str, document_id: str,
                            content_encoding: bool = False) -> dict[str, object]:
        with self._lock:
            if (region, client, document_id) not in self.documents:
                raise SpError(404, "NotFound", f"Report document {document_id} was not found.")
        name = f"sp/{'encoded/' if content_encoding else ''}{document_id}"
        return {"reportDocumentId": document_id, "url": self.files.url(name, self.timings.document_url_s),
                "compressionAlgorithm": "GZIP"}

    # -- internals -------------------------------------------------------------------------------------------

    def _specification(self, region: str, body: Mapping[str, object]) -> data.DocumentRequest:
        """The request of a createReport body, or InvalidInput saying what is wrong."""
        report_type = body.get("reportType")
        if not isinstance(report_type, str) or not report_type:
            raise invalid("reportType is required: a report type such as GET_SALES_AND_TRAFFIC_REPORT")
        marketplaces = _marketplaces(region, body.get("marketplaceIds"))
        options = body.get("reportOptions") or {}
        if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
            raise invalid("reportOptions must be an object of strings")
        now = datetime.fromtimestamp(self.clock(), UTC)
        start, end = _when(body, "dataStartTime", now), _when(body, "dataEndTime", now)
        if start > end:
            raise invalid("dataStartTime must not be after dataEndTime")
        if report_type == data.SALES_AND_TRAFFIC:
            if len(marketplaces) > 1:
                raise invalid(ONE_MARKETPLACE)
            for option, allowed in GRANULARITIES.items():
                if option in options and options[option] not in allowed:
                    raise invalid(f"reportOptions.{option} must be one of {', '.join(allowed)}")
        return data.DocumentRequest(report_type, tuple(marketplaces), start, end, dict(options))

    def _report(self, region: str, client: str, report_id: str) -> StoredReport:
        report = self.reports.get((region, client, report_id))
        if report is None:
            raise SpError(404, "NotFound", f"Report {report_id} was not found.")
        return report

    def _advanced(self, report: StoredReport) -> StoredReport:
        """The report moved on as far as the clock says (under the lock)."""
        if report.status in OUTCOMES:
            return report
        now, timings = self.clock(), self.timings
        if report.started is None and now >= report.created + timings.queued_s:
            report.started, report.status = report.created + timings.queued_s, IN_PROGRESS
        if report.started is not None and now >= report.started + timings.processing_s:
            report.ended, report.status = report.started + timings.processing_s, report.outcome
            if report.outcome in (DONE, FATAL):
                self._publish(report)
        return report

    def _publish(self, report: StoredReport) -> None:
        """Give a finished report its document: the report's data, or the reason it failed."""
        report.document_id = (f"amzn1.spdoc.1.4.{report.region}.{uuid.uuid4()}.T{secrets.token_hex(7).upper()}"
                              f".{next(self._documents)}")
        if report.outcome == FATAL:
            error = data.error_document(FAULT_REASON)
            chunks, content_type = (lambda: iter([error])), data.JSON_TYPE
        else:
            chunks, content_type = data.document(report.request)
        self.files.put(f"sp/{report.document_id}", StoredFile(chunks, content_type))
        self.files.put(f"sp/encoded/{report.document_id}", StoredFile(chunks, content_type, "gzip"))
        self.documents[(report.region, report.client, report.document_id)] = report

    def _forget_expired(self) -> None:
        oldest = self.clock() - self.timings.retention_days * 86400
        for key in [key for key, report in self.reports.items() if report.created < oldest]:
            report = self.reports.pop(key)
            if report.document_id:
                self.documents.pop((report.region, report.client, report.document_id), None)


def next_token(query: ReportsQuery, since: float, until: float, after: tuple[float, int]) -> str:
    """An opaque token carrying the filters and where the page ended."""
    state = {"types": query.report_types, "statuses": query.processing_statuses,
             "marketplaces": query.marketplace_ids, "size": query.page_size, "since": since, "until": until,
             "after": after}
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode()


def from_next_token(token: str) -> ReportsQuery:
    try:
        state = json.loads(base64.urlsafe_b64decode(token.encode()))
        return ReportsQuery(tuple(state["types"]), tuple(state["statuses"]), tuple(state["marketplaces"]),
                            int(state["size"]), float(state["since"]), float(state["until"]),
                            (float(state["after"][0]), int(state["after"][1])))
    except (ValueError, KeyError, TypeError, IndexError, binascii.Error):
        raise invalid("The nextToken is not valid.") from None


def parse_time(value: str, name: str) -> datetime:
    """An ISO 8601 date-time (``Z`` or an offset; none means UTC), or InvalidInput naming the parameter."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise invalid(f"{name} must be an ISO 8601 date-time, got {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _marketplaces(region: str, value: object) -> list[str]:
    if not isinstance(value, list) or not 1 <= len(value) <= 25 or not all(isinstance(m, str) for m in value):
        raise invalid("marketplaceIds is required: a list of 1 to 25 marketplace ids")
    wrong = [m for m in value if m not in MARKETPLACES or MARKETPLACES[m][1].value.lower() != region]
    if wrong:
        raise invalid(f"Report rejected for this client. Some of the marketplaces are not allowed for this Report: "
                      f"{', '.join(wrong)} (not marketplaces of the {region.upper()} region)")
    return list(dict.fromkeys(value))


def _when(body: Mapping[str, object], name: str, now: datetime) -> datetime:
    value = body.get(name)
    if value is None:
        return now
    if not isinstance(value, str):
        raise invalid(f"{name} must be an ISO 8601 date-time string")
    when = parse_time(value, name)
    if when > now + FUTURE_TOLERANCE:
        raise invalid(f"{name} must not be in the future")
    return when


def _too_old(request: data.DocumentRequest, now: float) -> bool:
    """A Sales and Traffic report whose start date is more than two years ago is cancelled: no data."""
    if request.report_type != data.SALES_AND_TRAFFIC:
        return False
    today = datetime.fromtimestamp(now, UTC).date()
    two_years_ago = today.replace(year=today.year - 2, day=28 if (today.month, today.day) == (2, 29) else today.day)
    return request.start.date() < two_years_ago


def _iso_epoch(seconds: float) -> str:
    return data.iso(datetime.fromtimestamp(seconds, UTC))


def split_list(values: Sequence[str]) -> tuple[str, ...]:
    """Query list values, comma-separated (the SDK's form) or repeated."""
    return tuple(item for value in values for item in value.split(",") if item)
