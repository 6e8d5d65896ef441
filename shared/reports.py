"""Amazon Ads and Selling Partner reports: one pipeline, two APIs.

A report request is recorded (``REPORT_RECORDS_TABLE``, owner: the service) and handed to the service's report
state machine (``infra/statemachines/report.asl.json``), whose tasks are :class:`Reports`' methods:

``create``    ask for the report once: a retried task finds the one it asked for
``poll``      follow it (cadence ``REPORT_POLL_SECONDS``) until it is ready, failed or empty, for at most
              ``REPORT_MAX_HOURS``
``download``  stream its file into the reports bucket, named after its content, with the request as metadata
``finish``    record the outcome and notify it once

What differs between the APIs is a :class:`ReportSource` each service supplies. Files land at
``adtech/<dataset>/<table>/report_date=<YYYY-MM-DD>/report-<reportId>.<format>[.gz]`` (:func:`report_key`) in the
reports bucket, where the data lake routes them by dataset, table and date; a replay overwrites the same object.
Schedules are EventBridge Scheduler schedules in the platform's group whose target is the service's request queue.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from itertools import islice
from typing import Any, Literal, Protocol

from pydantic import Field

from shared import aws, dates, scheduler
from shared.amazon import accounts
from shared.amazon.errors import InvalidRequest, NotFound, ServerError, Throttled, Unauthorized
from shared.amazon.http import AmbiguousFailure, Deadline
from shared.amazon.transfer import copy_to_s3, document_format
from shared.config import env_prefix, require
from shared.contracts import AUTH_ID_PATTERN, CUSTOMER_ID_PATTERN, ContractError, FieldError, Request
from shared.lake import normalise_name
from shared.orchestration import execution_name, start_execution
from shared.records import Records
from shared.requests import RequestContext
from shared.service import Service, ServiceHandler
from shared.status import PLATFORM_TENANT, Status, StatusMessage, error_summary

log = logging.getLogger(__name__)

REPORT = "report"  # the records' job kind
ERROR = str(Status.ERROR)
FINISHED = frozenset(str(s) for s in Status)
# The API will not make this report: asking again would not change that. Unauthorized comes after a fresh token
# (the client refreshes once when refused), so the credentials do not reach that profile or seller in that region.
_REFUSED = (InvalidRequest, NotFound, Unauthorized)
_PASSING = (Throttled, ServerError, AmbiguousFailure)  # worth another look at the next poll
_CREATE_SKEW_S = 120  # how far before a crashed attempt to look for the report it may have created
_DEADLINE_MARGIN_S = 5.0
# Step Functions keeps at most 25,000 events of an execution's history and a poll round writes about nine: the
# polling interval is stretched so that REPORT_MAX_HOURS of polling stays within it.
MAX_POLLS = 2500  # a task stops calling the API this long before its Lambda would be cut off


# -- what a service supplies ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """Where a report stands: the API's status and, once nothing more will happen, the ``outcome`` (SUCCEEDED: the
    file is ready); what to tell the user; what the download needs (e.g. the document's id)."""

    status: str
    outcome: Status | None = None
    message: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportFile:
    """Where to download a report's file: a pre-signed URL (never logged) and whether the file is gzip."""

    url: str = field(repr=False)
    compressed: bool


@dataclass(frozen=True)
class Described:
    """A report request as the pipeline names it: its table, type and date range, and the API's own S3 metadata
    for the data lake (keys in lower-case-with-hyphens). Worked out once, when the request is recorded: later steps
    read the record, so a retry after midnight still names the file as the first attempt did."""

    table: str
    report_type: str
    start: date
    end: date
    metadata: Mapping[str, str] = field(default_factory=dict)


class ReportSource(Protocol):
    """One API's reports. ``request`` is the stored request (relative dates resolved); ``deadline`` bounds every
    call. Errors are those of ``shared.amazon.errors``."""

    api: str  # "ads" | "sp": errors and the HTTP session
    dataset: str  # "ads_report" | "sp_report": the key's second level
    table_field: str  # "tableName" | "tablePrefix": the request field naming the lake table
    schedule_prefix: str  # "ads" | "sp": schedules of both services share the platform's group

    def describe(self, request: Mapping[str, Any]) -> Described: ...

    def create(self, request: Mapping[str, Any], deadline: Deadline) -> str: ...

    def find(self, request: Mapping[str, Any], since: datetime, deadline: Deadline) -> str | None: ...

    def check(self, request: Mapping[str, Any], report_id: str, deadline: Deadline) -> Progress: ...

    def file(self, request: Mapping[str, Any], report_id: str, details: Mapping[str, Any],
             deadline: Deadline) -> ReportFile: ...


# -- contracts every reporting service shares ----------------------------------------------------------------------


class ReportRequest(Request):
    """Fields every report request has besides its API's: the tenant it is for (notified through the tenant's
    subscription; else the platform), the credential set, and, on a schedule's fire, the schedule and fire time.
    ``requestBody`` holds the API's request, with relative dates (``TODAY(-1)``...) resolved when it is handled."""

    request_type = "createReport"
    requestType: Literal["createReport"] = "createReport"
    customerId: str | None = Field(None, pattern=CUSTOMER_ID_PATTERN)
    authId: str | None = Field(None, pattern=AUTH_ID_PATTERN)
    scheduleName: str | None = Field(None, pattern=scheduler.SCHEDULE_NAME)
    scheduledTime: str | None = Field(None, pattern=scheduler.FIRE_TIME_PATTERN)
    requestBody: dict[str, Any]

    def resolved(self, now: datetime) -> dict[str, Any]:
        """The request to store: dates resolved at ``now``, schedule fields and ``requestId`` left out."""
        kept = self.model_dump(exclude_none=True, exclude={"requestId", "scheduleName", "scheduledTime"})
        return {**kept, "requestBody": dates.resolve(self.requestBody, now, dates.REPORT_FORMAT)}


class ReportSchedule(scheduler.PutSchedule):
    """A schedule that sends ``reportRequest`` (a subclass names its type) to the service; the AWS Solution's
    ``{"report_request", "schedule_expression", "rule_name", ...}`` is accepted too."""

    legacy_fields = ("reportRequest", "report_request")
    reportRequest: ReportRequest


class ListSchedules(Request):
    """The service's report schedules; a tenant's only when ``customerId`` is given."""

    request_type = "listSchedules"
    requestType: Literal["listSchedules"]
    customerId: str | None = Field(None, pattern=CUSTOMER_ID_PATTERN)


class ListReports(Request):
    """The service's report records, newest first: ``status`` and ``customerId`` filter, ``limit`` caps."""

    request_type = "listReports"
    requestType: Literal["listReports"]
    status: str | None = Field(None, pattern=r"^[A-Z_]{2,20}$")
    customerId: str | None = Field(None, pattern=CUSTOMER_ID_PATTERN)
    limit: int = Field(50, ge=1, le=500)


def classify(raw: Mapping[str, Any]) -> str | None:
    """``requestType`` (an update is a create of an existing schedule); the AWS Solution's report requests have
    none (``requestBody``), nor its schedules (``rule_name``)."""
    request_type = raw.get("requestType")
    if isinstance(request_type, str):
        return ReportSchedule.request_type if request_type == "updateSchedule" else request_type
    return scheduler.classify_rule_name(raw) or (ReportRequest.request_type if "requestBody" in raw else None)


def report_key(dataset: str, table: str, report_date: date, report_id: str, file_format: str,
               compressed: bool) -> str:
    """Where a report's file lands in the reports bucket (the data lake's contract)."""
    suffix = ".gz" if compressed else ""
    return f"adtech/{dataset}/{table}/report_date={report_date.isoformat()}/report-{report_id}.{file_format}{suffix}"


# -- the pipeline -------------------------------------------------------------------------------------------------


class Reports:
    """The report pipeline of one service (``service``: ``ads_reporting`` or ``sp_reporting``)."""

    def __init__(self, service: str, source: ReportSource) -> None:
        self.service, self.source = service, source

    def routes(self, request_type: type[ReportRequest],
               schedule_type: type[ReportSchedule]) -> list[tuple[type[Request], ServiceHandler]]:
        """The requests every reporting service answers, given its report and schedule contracts."""
        return [(request_type, self.request), (schedule_type, self.put_schedule),
                (scheduler.NamedSchedule, self.delete_schedule), (scheduler.EnableSchedule, self.set_schedule_state),
                (scheduler.DisableSchedule, self.set_schedule_state),
                (ListSchedules, self.list_schedules), (ListReports, self.list_reports)]

    @cached_property
    def records(self) -> Records:
        return Records(aws.table(require("REPORT_RECORDS_TABLE")), owner_key="service", job_kind=REPORT,
                       status_key="reportStatus", finished=FINISHED,
                       history_days=int(require("REPORT_HISTORY_DAYS")))

    # -- requests -----------------------------------------------------------------------------------------------

    def request(self, request: ReportRequest, ctx: RequestContext, service: Service) -> None:
        """Record the report request and start its state machine (once, however often it is delivered)."""
        key = scheduler.request_key(ctx.request_id, request.scheduleName, request.scheduledTime, request.requestId)
        self.submit(key, request.resolved(scheduler.fired_at(request.scheduledTime)), request.fingerprint(),
                    **({"scheduleName": request.scheduleName} if request.scheduleName else {}))

    def submit(self, key: str, request: Mapping[str, Any], fingerprint: str, **fields: Any) -> bool:
        """Record report ``key`` and start its state machine; False when it was already submitted (a redelivery).

        Raises ContractError when ``key`` was used for another request."""
        described = self.source.describe(request)
        self._claim_table(described.table, request.get("customerId") or PLATFORM_TENANT, "createReport")
        # The request is kept as JSON text: DynamoDB would turn its numbers into Decimals (and refuse floats).
        record = self.records.add_job(self.service, key, request=json.dumps(request), fingerprint=fingerprint,
                                      tableName=described.table, reportType=described.report_type,
                                      startDate=described.start.isoformat(), endDate=described.end.isoformat(),
                                      metadata=dict(described.metadata),
                                      **{k: v for k, v in (("customerId", request.get("customerId")),) if v},
                                      **fields)
        if record.get("fingerprint") != fingerprint:
            raise ContractError("createReport", [FieldError(
                "requestId", "an id not used before for a different report request", key)])
        arn = require(f"{env_prefix(self.service)}_REPORTS_STATE_MACHINE_ARN")
        _, started = start_execution(aws.client("stepfunctions"), arn,
                                     execution_name(self.source.schedule_prefix, key),
                                     {"service": self.service, "requestId": key})
        return started

    def list_reports(self, request: ListReports, ctx: RequestContext, service: Service) -> None:
        matching = (r for r in self.records.recent_jobs(self.service) if request.status in (None, r["reportStatus"])
                    and request.customerId in (None, r.get("customerId")))
        found = [_summary(r) for r in islice(matching, request.limit)]
        service.answer(ctx, request.customerId or PLATFORM_TENANT, Status.SUCCEEDED, f"{len(found)} reports",
                       {"reports": found})

    # -- schedules ----------------------------------------------------------------------------------------------

    def put_schedule(self, request: ReportSchedule, ctx: RequestContext, service: Service) -> None:
        """Create or update (a create of an existing name updates it, as the AWS Solution's ``put_rule`` did)."""
        described = self.source.describe(request.reportRequest.resolved(datetime.now(UTC)))  # refuses bad input
        tenant = request.reportRequest.customerId
        existing = self.records.get(self.service, "schedule", request.scheduleName)
        if existing is not None and existing.get("customerId") != tenant:  # another tenant's (or the platform's)
            raise ContractError(request.requestType, [FieldError(
                "scheduleName", "a schedule name no other tenant uses", request.scheduleName)])
        self._claim_table(described.table, tenant or PLATFORM_TENANT, request.requestType)
        report = request.reportRequest.model_dump(exclude_none=True, exclude={"requestId"})
        written = scheduler.put_schedule(  # in the platform's group, which the platform stack creates
            aws.client("scheduler"), group=require("PLATFORM_SCHEDULE_GROUP"),
            name=self._schedule_name(request.scheduleName),
            expression=request.scheduleExpression, timezone=request.timezone, description=request.description,
            enabled=request.enabled, target_arn=require(f"{env_prefix(self.service)}_REQUEST_QUEUE_ARN"),
            role_arn=require("SCHEDULER_ROLE_ARN"), kms_key_arn=require("PLATFORM_KEY_ALIAS_ARN"),
            payload={**report, "scheduleName": request.scheduleName, "scheduledTime": scheduler.FIRE_TIME})
        self.records.put(self.service, "schedule", request.scheduleName, scheduleName=request.scheduleName,
                         scheduleExpression=request.scheduleExpression, timezone=request.timezone,
                         enabled=request.enabled, tableName=described.table, reportType=described.report_type,
                         **({"customerId": tenant} if tenant else {}))
        next_run = scheduler.next_run(request.scheduleExpression, request.timezone, request.enabled)
        service.answer(ctx, tenant or PLATFORM_TENANT, Status.SUCCEEDED,
                       f"schedule {request.scheduleName} {written}: {request.scheduleExpression} ({request.timezone}),"
                       f" next run {next_run}", {"scheduleName": request.scheduleName, "written": written,
                                                 "tableName": described.table, "nextRun": next_run})

    def delete_schedule(self, request: scheduler.NamedSchedule, ctx: RequestContext, service: Service) -> None:
        record = self._reachable_schedule(request)
        if record is not None or request.customerId is None:  # a tenant's delete of no schedule of its own is done
            scheduler.delete_schedule(aws.client("scheduler"), require("PLATFORM_SCHEDULE_GROUP"),
                                      self._schedule_name(request.scheduleName))
            self.records.delete(self.service, "schedule", request.scheduleName)
        service.answer(ctx, (record or {}).get("customerId") or request.customerId or PLATFORM_TENANT,
                       Status.SUCCEEDED, f"schedule {request.scheduleName} deleted",
                       {"scheduleName": request.scheduleName})

    def set_schedule_state(self, request: scheduler.NamedSchedule, ctx: RequestContext, service: Service) -> None:
        enabled = request.requestType == "enableSchedule"
        record = self._reachable_schedule(request)
        if record is None:
            raise ContractError(request.requestType, [FieldError(
                "scheduleName", "an existing schedule (see listSchedules)", request.scheduleName)])
        scheduler.set_state(aws.client("scheduler"), require("PLATFORM_SCHEDULE_GROUP"),
                            self._schedule_name(request.scheduleName), enabled)
        kept = {k: v for k, v in record.items() if k not in ("service", "recordId", "updatedAt")}
        self.records.put(self.service, "schedule", request.scheduleName, **{**kept, "enabled": enabled})
        service.answer(ctx, record.get("customerId") or PLATFORM_TENANT, Status.SUCCEEDED,
                       f"schedule {request.scheduleName} {'enabled' if enabled else 'disabled'}",
                       {"scheduleName": request.scheduleName, "enabled": enabled})

    def list_schedules(self, request: ListSchedules, ctx: RequestContext, service: Service) -> None:
        found = [{"scheduleName": s["scheduleName"], "scheduleExpression": s["scheduleExpression"],
                  "timezone": s["timezone"], "enabled": s["enabled"], "tableName": s.get("tableName"),
                  "reportType": s.get("reportType"),
                  "nextRun": scheduler.next_run(s["scheduleExpression"], s["timezone"], s["enabled"])}
                 for s in self.records.all(self.service, "schedule#")
                 if request.customerId in (None, s.get("customerId"))]
        service.answer(ctx, request.customerId or PLATFORM_TENANT, Status.SUCCEEDED, f"{len(found)} schedules",
                       {"schedules": found})

    def _reachable_schedule(self, request: scheduler.NamedSchedule) -> dict[str, Any] | None:
        """The schedule's record when the request may act on it: a request naming a tenant reaches that tenant's
        schedules only (another's is refused, untouched); one naming none, as the AWS Solution's, reaches any."""
        record = self.records.get(self.service, "schedule", request.scheduleName)
        if record is not None and request.customerId not in (None, record.get("customerId")):
            raise ContractError(request.requestType, [FieldError(
                "scheduleName", f"a schedule of tenant {request.customerId} (see listSchedules)",
                request.scheduleName)])
        return record

    # -- state machine tasks ------------------------------------------------------------------------------------

    def create(self, state: dict[str, Any], context: Any) -> dict[str, Any]:
        """Ask for the report once: a retried task uses the report it recorded, or finds the one it asked for."""
        key, deadline = state["requestId"], _deadline(context)
        record = self._record(key)
        max_s = int(require("REPORT_MAX_HOURS")) * 3600
        state = {**state, "pollSeconds": max(int(require("REPORT_POLL_SECONDS")), math.ceil(max_s / MAX_POLLS)),
                 "deadline": state.get("deadline") or int(time.time()) + max_s}
        if record.get("reportId"):
            return {**state, "reportId": record["reportId"], "terminal": False}
        request = json.loads(record["request"])
        attempted = record.get("createAttemptAt")
        report_id = self.source.find(request, datetime.fromtimestamp(int(attempted) - _CREATE_SKEW_S, UTC),
                                     deadline) if attempted else None
        if report_id is None:
            if not attempted:  # the first attempt is the one to look back to
                self.records.update_job(self.service, key, createAttemptAt=int(time.time()))
            try:
                report_id = self.source.create(request, deadline)
            except _REFUSED as refusal:
                return {**state, "terminal": True, "outcome": str(Status.REJECTED),
                        "message": f"{self.source.api.upper()} refused the report: {refusal.detail}"}
        self.records.update_job(self.service, key, reportId=report_id, reportStatus="REQUESTED")
        return {**state, "reportId": report_id, "terminal": False}

    def poll(self, state: dict[str, Any], context: Any) -> dict[str, Any]:
        """The report's status now; a passing error waits for the next look; past the deadline it is given up."""
        key = state["requestId"]
        request = json.loads(self._record(key)["request"])
        try:
            progress = self.source.check(request, state["reportId"], _deadline(context))
        except _PASSING as passing:
            progress = Progress(state.get("status") or "UNKNOWN", message=f"{type(passing).__name__}: {passing.detail}")
            if time.time() <= state["deadline"]:
                return {**state, "terminal": False, "ready": False, "lastError": progress.message}
        if progress.outcome is None and time.time() > state["deadline"]:
            return {**state, "terminal": True, "ready": False, "outcome": str(Status.FAILED), "status": progress.status,
                    "message": "the report was not ready within REPORT_MAX_HOURS" + (
                        f" (last error: {progress.message})" if progress.message else "")}
        if progress.status != state.get("status"):  # the record changes when the status does, not at every look
            self.records.update_job(self.service, key, reportStatus=progress.status)
        ready = progress.outcome == Status.SUCCEEDED
        return {**state, "status": progress.status, "ready": ready, "lastError": None,
                "terminal": progress.outcome is not None and not ready, "message": progress.message,
                "outcome": str(progress.outcome) if progress.outcome else None, "details": dict(progress.details)}

    def download(self, state: dict[str, Any], context: Any) -> dict[str, Any]:
        """Stream the file into the reports bucket; a retry asks for a fresh URL and overwrites the same object,
        unless the file was stored already (a retry after the record was written)."""
        key, deadline = state["requestId"], _deadline(context)
        record = self._record(key)
        if not record.get("s3Uri"):
            record = self._copy(record, state["reportId"], state.get("details") or {}, deadline)
        return {**state, "terminal": True, "outcome": str(Status.SUCCEEDED), "s3Uri": record["s3Uri"],
                "size": int(record["size"]), "message": None}

    def finish(self, state: dict[str, Any], service: Service) -> dict[str, Any]:
        """Record the outcome and notify once; safe to retry."""
        key, error = state["requestId"], state.get("error")
        outcome = ERROR if error else state.get("outcome") or ERROR
        message = error_summary(error) if error else state.get("message")
        record = self.records.update_job(self.service, key, reportStatus=outcome, message=message,
                                         apiStatus=state.get("status"))
        self.records.notify_once(self.service, key, lambda: service.publisher.publish(
            self._outcome_message(record, state, Status(outcome), message)))
        return {"service": self.service, "requestId": key, "outcome": outcome}

    # -- helpers --------------------------------------------------------------------------------------------------

    def _record(self, key: str) -> dict[str, Any]:
        record = self.records.job(self.service, key)
        if record is None:
            raise LookupError(f"no record of report request {key}")
        return record

    def _copy(self, record: Mapping[str, Any], report_id: str, details: Mapping[str, Any],
              deadline: Deadline) -> dict[str, Any]:
        """Copy the report's file under its key, with the request as metadata; the record, with the file."""
        found = self.source.file(json.loads(record["request"]), report_id, details, deadline)
        metadata = {**record.get("metadata", {}), "request-id": record["requestId"],
                    "requested-at": record["createdAt"], "report-id": report_id, "report-type": record["reportType"],
                    "table-name": record["tableName"], "start-date": record["startDate"],
                    "end-date": record["endDate"],
                    **({"customer-id": record["customerId"]} if record.get("customerId") else {})}
        copied = copy_to_s3(found.url, aws.client("s3"), require("REPORTS_BUCKET"), lambda head: report_key(
            self.source.dataset, record["tableName"], date.fromisoformat(record["startDate"]), report_id,
            document_format(head), found.compressed), session=accounts.http(self.source.api).session,
            metadata=metadata, api=self.source.api)
        return self.records.update_job(self.service, record["requestId"], s3Uri=f"s3://{copied.bucket}/{copied.key}",
                                       size=copied.size)

    def _claim_table(self, table: str, tenant: str, request_type: str) -> None:
        """A dataset's tables are shared by its tenants' reports, so each table is one tenant's: the first report
        (or schedule) into it claims it, and another tenant's naming it is refused rather than mixed in (reports
        that name no tenant count as the platform's). Claimed by the lake's name for it, which several spellings
        share."""
        holder = self.records.put_new(self.service, "table", normalise_name(table), customerId=tenant)["customerId"]
        if holder != tenant:
            log.warning("report table held by another tenant", extra={"table": table, "holder": holder})
            raise ContractError(request_type, [FieldError(
                self.source.table_field, "a table no other tenant's reports go to", table)])

    def _schedule_name(self, name: str) -> str:
        return f"{self.source.schedule_prefix}-{name}"

    def _outcome_message(self, record: Mapping[str, Any], state: Mapping[str, Any], outcome: Status,
                         message: str | None) -> StatusMessage:
        report_id, table = state.get("reportId"), record["tableName"]
        where = f" -> {record['s3Uri']}" if outcome == Status.SUCCEEDED and record.get("s3Uri") else ""
        summary = (f"report {table} ({record['reportType']}, {record['startDate']}..{record['endDate']}) "
                   f"{outcome}{where}" + (f": {message}" if message else ""))
        return StatusMessage(
            service=self.service, request_type="createReport", status=outcome, summary=summary,
            tenant_id=record.get("customerId") or PLATFORM_TENANT, request_id=record["requestId"],
            about=f"{table} {report_id or ''}".strip(),
            details={**_summary(record), "reportId": report_id, "apiStatus": state.get("status"), "message": message,
                     "s3Uri": record.get("s3Uri"), "metadata": record.get("metadata", {}),
                     **{k: int(record[k]) for k in ("window",) if k in record}})


def _deadline(context: Any) -> Deadline:
    """The Lambda's remaining time, less a margin to record what happened."""
    remaining_s = context.get_remaining_time_in_millis() / 1000 if context is not None else 60.0
    return Deadline(max(1.0, remaining_s - _DEADLINE_MARGIN_S))


def _summary(record: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("requestId", "reportStatus", "reportId", "tableName", "reportType", "startDate", "endDate", "customerId",
            "createdAt", "updatedAt", "message", "s3Uri", "scheduleName", "backfillId")
    found = {k: record[k] for k in keep if record.get(k) is not None}
    return {**found, "size": int(record["size"])} if record.get("size") is not None else found
