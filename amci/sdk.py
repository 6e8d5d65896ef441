"""The AMC Insights SDK: every operation of every service as a Python call, for notebooks, scripts and the CLI.

    from amci.sdk import Insights

    insights = Insights.local()                      # the local cloud (.local/endpoints.json)
    insights = Insights.aws("prod", profile="ops")   # a deployed stage
    insights.tenants.list()
    run = insights.executions.run("acme", "top_campaigns", time_window_type="MOST_RECENT_WEEK")
    run.ok, run.details["s3Uri"]
    insights.lake.query("SELECT * FROM top_campaigns_adhoc LIMIT 10", database="amci_prod_acme").as_dicts()

A call sends the service the same request any other system would (its request queue) and waits for the outcome
on the status topic; long jobs (an execution, a report, a backfill) report their progress to ``progress`` while
they run. Nothing here bypasses a service: the SDK reads the platform's tables only to show progress and health.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from amci.auth import Auth
from amci.inbox import Notification
from amci.platform import Platform, wait_for
from shared import lake
from shared.requests import dead_letter, redrive

SUCCESSFUL = ("SUCCEEDED", "NO_DATA")


@dataclass(frozen=True)
class Outcome:
    """What a service answered: ``status`` (SUCCEEDED, FAILED, REJECTED, ERROR, NO_DATA...), a one-line
    ``summary`` and the ``details`` of the request type (a record, a list, an S3 location...)."""

    request_id: str
    service: str
    status: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in SUCCESSFUL

    def check(self) -> Outcome:
        """The outcome itself when it succeeded; raises RequestFailed otherwise."""
        if not self.ok:
            raise RequestFailed(self)
        return self

    def as_dict(self) -> dict[str, Any]:
        return {"requestId": self.request_id, "service": self.service, "status": self.status,
                "summary": self.summary, "details": self.details}

    def __str__(self) -> str:
        return f"{self.status}: {self.summary}"

    @classmethod
    def of(cls, service: str, note: Notification) -> Outcome:
        return cls(str(note.body.get("request_id")), service, note.attributes["status"], str(note.body["summary"]),
                   dict(note.body.get("details") or {}))


def _with_request_id(message: dict[str, Any]) -> str:
    """A dead letter's body to send again, with the request id it ran under (a body without one ran under its
    message id, which a new message would not keep): it cannot run twice."""
    try:
        body = json.loads(message["Body"])
    except ValueError:
        return str(message["Body"])
    if not isinstance(body, dict) or "requestId" in body:
        return str(message["Body"])
    return json.dumps({**body, "requestId": dead_letter(message)[0]})


class RequestFailed(Exception):
    """A request did not succeed; ``outcome`` says how and why."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(str(outcome))
        self.outcome = outcome


@dataclass(frozen=True)
class Progress:
    """Where a long job is: its ``status`` so far (QUEUED, RUNNING...), seconds waited, and for a backfill the
    windows ``done`` of ``total``."""

    what: str
    status: str
    elapsed_s: float
    done: int = 0
    total: int = 0


ProgressCallback = Callable[[Progress], None]


class Insights:
    """The platform, one object: ``tenants``, ``auth``, ``workflows``, ``executions``, ``ads``, ``sp``, ``lake``,
    and :meth:`request` for any request as it is."""

    def __init__(self, platform: Platform, timeout_s: float = 3600,
                 progress: ProgressCallback | None = None) -> None:
        self.platform, self.timeout_s, self.progress = platform, timeout_s, progress

    @classmethod
    def local(cls, endpoints_file: str | Path | None = None, **options: Any) -> Insights:
        """The local cloud: ``endpoints_file``, else ``$AMCI_ENDPOINTS``, else ``.local/endpoints.json``."""
        return cls(Platform.local(endpoints_file), **options)

    @classmethod
    def aws(cls, stage: str, profile: str | None = None, region: str | None = None, **options: Any) -> Insights:
        return cls(Platform.aws(stage, profile, region), **options)

    def request(self, service: str, body: dict[str, Any], timeout_s: float | None = None,
                watch: Callable[[], str | None] | None = None, what: str | None = None) -> Outcome:
        """Send ``body`` to ``service`` as it is and wait for its outcome. ``watch`` (the job's status so far) is
        asked while waiting and reported to ``progress``."""
        body = {"requestId": uuid.uuid4().hex, **body}
        waiting = None
        if watch is not None and self.progress is not None:
            label, report = what or body.get("requestType", "request"), self.progress
            waiting = lambda elapsed: report(Progress(label, watch() or "QUEUED", elapsed))  # noqa: E731
        note = self.platform.ask(service, body, timeout_s or self.timeout_s, waiting)
        return Outcome.of(service, note)

    def diagnose(self, service: str, repeat: int = 1, interval_s: int = 1) -> Outcome:
        """Run ``service``'s diagnostics, the platform's canary: every resource it is configured to use is checked
        ``repeat`` times, ``interval_s`` apart, through its request queue, state machine, task functions and the
        status topic. FAILED names each resource that did not answer."""
        return self.request(service, {"requestType": "diagnose", "repeat": repeat, "intervalSeconds": interval_s})

    def status(self, recent_hours: float = 24) -> dict[str, Any]:
        """The platform's health (what ``amci status`` shows); failures within ``recent_hours`` make it troubled."""
        from amci.status import platform_status

        return platform_status(self.platform, recent_hours=recent_hours)

    def redrive(self, service: str, limit: int = 1000, rejected: bool = False) -> dict[str, Any]:
        """Send what ``service``'s request DLQ holds back to its request queue, e.g. requests that failed on every
        attempt during an outage. Rejected requests stay (their sender must fix them) unless ``rejected``.
        ``{"service", "redriven": n, "kept": [{"requestId", "reason"}]}``."""
        sqs, queue = self.platform.client("sqs"), self.platform.request_queues[service]

        def deliver(message: dict[str, Any]) -> None:
            sqs.send_message(QueueUrl=queue, MessageBody=_with_request_id(message))

        done = redrive(sqs, self.platform.request_dlq_url(service), deliver, limit,
                       keep=lambda message: not rejected and dead_letter(message)[1] is not None)
        kept = [dead_letter(message) for message in done.kept]
        return {"service": service, "redriven": done.delivered,
                "kept": [{"requestId": request_id, "reason": reason} for request_id, reason in kept]}

    @cached_property
    def tenants(self) -> Tenants:
        return Tenants(self)

    @cached_property
    def auth(self) -> Auth:
        return Auth(self.platform)

    @cached_property
    def workflows(self) -> Workflows:
        return Workflows(self)

    @cached_property
    def executions(self) -> Executions:
        return Executions(self)

    @cached_property
    def ads(self) -> AdsReports:
        return AdsReports(self)

    @cached_property
    def sp(self) -> SpReports:
        return SpReports(self)

    @cached_property
    def lake(self) -> Lake:
        return Lake(self)

    # -- for the services' clients --------------------------------------------------------------------------------

    def _status_of(self, table_output: str, key: dict[str, str], attribute: str) -> Callable[[], str | None]:
        table = self.platform.table(table_output)
        return lambda: (table.get_item(Key=key).get("Item") or {}).get(attribute)

    def _backfill(self, service: str, body: dict[str, Any], what: str, wait: bool) -> Outcome:
        """Submit a backfill; with ``wait``, wait for each of its windows' outcomes too (``details["windows"]``
        becomes their outcomes)."""
        body, deadline = {"requestId": uuid.uuid4().hex, **body}, time.monotonic() + self.timeout_s
        with self.platform.inbox() as inbox:
            self.platform.send(service, body)
            submitted = Outcome.of(service, wait_for(inbox, lambda n: n.body.get("request_id") == body["requestId"],
                                                     self.timeout_s))
            if not (wait and submitted.ok):
                return submitted
            total, prefix = int(submitted.details["windows"]), f"{body['requestId']}-w"
            windows = lambda: {n.body["request_id"]: n for n in inbox.received  # noqa: E731
                               if str(n.body.get("request_id", "")).startswith(prefix)}
            report = self.progress or (lambda _: None)
            wait_for(inbox, lambda _: len(windows()) >= total, deadline - time.monotonic(),
                     lambda elapsed: report(Progress(what, "RUNNING", elapsed, len(windows()), total)))
            outcomes = [Outcome.of(service, n) for _, n in sorted(windows().items())]
        failed = [o for o in outcomes if not o.ok]
        return Outcome(submitted.request_id, service, "FAILED" if failed else "SUCCEEDED",
                       f"{submitted.summary}; {total - len(failed)} of {total} windows succeeded",
                       {**submitted.details, "windows": [o.as_dict() for o in outcomes]})


# -- tenants ------------------------------------------------------------------------------------------------------


class Tenants:
    """The AMC instances onboarded (the tenant service)."""

    def __init__(self, insights: Insights) -> None:
        self._ask = lambda body: insights.request("tenant", body)

    def add(self, customer_details: dict[str, Any]) -> Outcome:
        """Onboard a tenant (or update it in place): the AWS Solution's ``customer_details``."""
        return self._ask({"requestType": "addTenant", "customer_details": customer_details})

    def update(self, customer_details: dict[str, Any]) -> Outcome:
        return self._ask({"requestType": "updateTenant", "customer_details": customer_details})

    def get(self, customer_id: str) -> Outcome:
        return self._ask({"requestType": "getTenant", "customer_id": customer_id})

    def list(self) -> Outcome:
        return self._ask({"requestType": "listTenants"})

    def offboard(self, customer_id: str) -> Outcome:
        """Remove the tenant's wiring, configuration and grants; its bucket and data are kept."""
        return self._ask({"requestType": "offboardTenant", "customer_id": customer_id})


# -- schedules (the same operations in the workflow manager and both reporting services) ---------------------------


class Schedules:
    """A service's schedules: each sends a request (``request_field``) on a cron/rate expression."""

    def __init__(self, insights: Insights, service: str, request_field: str, customer_id: str | None = None) -> None:
        self._insights, self.service, self._field = insights, service, request_field
        self._tenant = {"customerId": customer_id} if customer_id else {}

    def create(self, name: str, expression: str, request: dict[str, Any], timezone: str = "UTC",
               description: str = "", enabled: bool = True, update: bool = False) -> Outcome:
        """A schedule ``name`` sending ``request`` at ``expression`` (``cron(0 6 * * ? *)``, ``rate(1 day)``...)
        in ``timezone``; ``update`` changes an existing one."""
        return self._ask({"requestType": "updateSchedule" if update else "createSchedule", "scheduleName": name,
                          "scheduleExpression": expression, "timezone": timezone, "description": description,
                          "enabled": enabled, self._field: {**self._tenant, **request}})

    def delete(self, name: str) -> Outcome:
        return self._ask({"requestType": "deleteSchedule", "scheduleName": name})

    def enable(self, name: str) -> Outcome:
        return self._ask({"requestType": "enableSchedule", "scheduleName": name})

    def disable(self, name: str) -> Outcome:
        return self._ask({"requestType": "disableSchedule", "scheduleName": name})

    def list(self) -> Outcome:
        return self._ask({"requestType": "listSchedules"})

    def _ask(self, body: dict[str, Any]) -> Outcome:
        return self._insights.request(self.service, {**self._tenant, **body})


# -- the workflow manager ------------------------------------------------------------------------------------------


class Workflows:
    """A tenant's saved AMC workflows."""

    def __init__(self, insights: Insights) -> None:
        self._insights = insights

    def create(self, customer_id: str, workflow_id: str, sql: str, **definition: Any) -> Outcome:
        """Save ``sql`` as workflow ``workflow_id``; ``definition`` adds AMC's other fields (``inputParameters``,
        ``filteredMetricsDiscriminatorColumn``...)."""
        return self._ask(customer_id, "createWorkflow", workflowDefinition={
            "workflowId": workflow_id, "sqlQuery": sql, **definition})

    def update(self, customer_id: str, workflow_id: str, sql: str, **definition: Any) -> Outcome:
        return self._ask(customer_id, "updateWorkflow", workflowDefinition={
            "workflowId": workflow_id, "sqlQuery": sql, **definition})

    def get(self, customer_id: str, workflow_id: str) -> Outcome:
        return self._ask(customer_id, "getWorkflow", workflowId=workflow_id)

    def delete(self, customer_id: str, workflow_id: str) -> Outcome:
        return self._ask(customer_id, "deleteWorkflow", workflowId=workflow_id)

    def list(self, customer_id: str) -> Outcome:
        return self._insights.request("workflow", {"requestType": "listWorkflows", "customerId": customer_id})

    def _ask(self, customer_id: str, request_type: str, **fields: Any) -> Outcome:
        return self._insights.request("workflow", {"customerId": customer_id, "workflowRequest": {
            "requestType": request_type, **fields}})


class Executions:
    """AMC executions: run (and wait for) a workflow, follow, cancel, list, sync, backfill, schedule."""

    def __init__(self, insights: Insights) -> None:
        self._insights = insights

    def run(self, customer_id: str, workflow_id: str | None = None, *, sql: str | None = None,
            time_window_type: str | None = None, start: str | None = None, end: str | None = None,
            timezone: str | None = None, parameters: dict[str, Any] | None = None, **options: Any) -> Outcome:
        """Run saved workflow ``workflow_id`` (or ad hoc ``sql``) and wait for it: ``start``/``end`` (dates,
        timestamps or relative dates such as ``TODAY(-7)``) make an EXPLICIT window; ``options`` pass to AMC
        (``ignoreDataGaps``, ``workflowExecutionTimeoutSeconds``...)."""
        body = execution_request(workflow_id, sql, time_window_type, start, end, timezone, parameters, options)
        request_id = uuid.uuid4().hex
        return self._insights.request(
            "workflow", _create_execution(request_id, customer_id, body),
            watch=self._record(customer_id, request_id, "executionStatus"),
            what=f"{customer_id} {body.get('workflowId') or body['workflow']['workflowId']}")

    def start(self, customer_id: str, workflow_id: str | None = None, *, sql: str | None = None,
              time_window_type: str | None = None, start: str | None = None, end: str | None = None,
              timezone: str | None = None, parameters: dict[str, Any] | None = None, **options: Any) -> str:
        """Start an execution as :meth:`run` does, without waiting for it to finish: its AMC
        ``workflowExecutionId`` as soon as AMC has it (to :meth:`cancel` it, or follow it with :meth:`get`).
        Raises RequestFailed when the request was refused."""
        body = execution_request(workflow_id, sql, time_window_type, start, end, timezone, parameters, options)
        request_id, platform = uuid.uuid4().hex, self._insights.platform
        execution_id = self._record(customer_id, request_id, "workflowExecutionId")
        deadline = time.monotonic() + self._insights.timeout_s
        with platform.inbox() as inbox:
            platform.send("workflow", _create_execution(request_id, customer_id, body))
            while time.monotonic() < deadline:
                answered = next((n for n in inbox.drain(wait_s=1) if n.body.get("request_id") == request_id), None)
                if found := execution_id():
                    return found
                if answered is not None:  # over before AMC had it: refused
                    raise RequestFailed(Outcome.of("workflow", answered))
        raise TimeoutError(f"AMC had not started the execution within {self._insights.timeout_s:.0f}s")

    def get(self, customer_id: str, execution_id: str) -> Outcome:
        """AMC's status of execution ``execution_id`` (recorded too)."""
        return self._ask(customer_id, "getExecutionStatus", workflowExecutionId=execution_id)

    def cancel(self, customer_id: str, execution_id: str) -> Outcome:
        return self._ask(customer_id, "cancelExecution", workflowExecutionId=execution_id)

    def list(self, customer_id: str, status: str | None = None, limit: int = 50) -> Outcome:
        """The tenant's executions, newest first."""
        return self._ask(customer_id, "listExecutions", limit=limit, **({"status": status} if status else {}))

    def sync(self, customer_id: str, days: int = 1) -> Outcome:
        """Bring the records up to date with AMC (executions started elsewhere included)."""
        return self._ask(customer_id, "syncExecutions", days=days)

    def backfill(self, customer_id: str, workflow_id: str, start: str, end: str, window_days: int = 1,
                 wait: bool = True, **options: Any) -> Outcome:
        """One execution per ``window_days`` from ``start`` to ``end`` (inclusive days); with ``wait``, until
        each has finished."""
        return self._insights._backfill("workflow", {
            "requestType": "backfillExecutions", "customerId": customer_id, "startDate": start, "endDate": end,
            "windowDays": window_days, "createExecutionRequest": {"workflowId": workflow_id, **options}},
            f"{customer_id} {workflow_id} backfill", wait)

    def resubmit(self, customer_id: str, backfill_id: str) -> Outcome:
        """Run again the windows of a backfill that did not succeed."""
        return self._ask(customer_id, "resubmitBackfill", backfillId=backfill_id)

    def schedules(self, customer_id: str | None = None) -> Schedules:
        """The tenant's execution schedules: each sends a createExecution request (``{"requestType":
        "createExecution", "createExecutionRequest": execution_request(...)}``) at its times. Without a tenant,
        delete, enable and disable find the schedule by its name."""
        return Schedules(self._insights, "workflow", "executionRequest", customer_id)

    def _ask(self, customer_id: str, request_type: str, **fields: Any) -> Outcome:
        return self._insights.request("workflow", {"requestType": request_type, "customerId": customer_id,
                                                   **fields})

    def _record(self, customer_id: str, request_id: str, attribute: str) -> Callable[[], str | None]:
        """``attribute`` of the execution record of request ``request_id``, as it is when called."""
        return self._insights._status_of("WorkflowRecordsTable", {"customerId": customer_id,
                                                                  "recordId": f"execution#{request_id}"}, attribute)


def _create_execution(request_id: str, customer_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"requestId": request_id, "requestType": "createExecution", "customerId": customer_id,
            "createExecutionRequest": body}


def execution_request(workflow_id: str | None = None, sql: str | None = None, time_window_type: str | None = None,
                      start: str | None = None, end: str | None = None, timezone: str | None = None,
                      parameters: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
                      ) -> dict[str, Any]:
    """A ``createExecutionRequest`` (for :meth:`Executions.run` and execution schedules)."""
    if (workflow_id is None) == (sql is None):
        raise ValueError("workflow_id or sql: run a saved workflow or ad hoc SQL, one of them")
    body: dict[str, Any] = {"workflowId": workflow_id} if workflow_id else {
        "workflow": {"workflowId": f"adhoc-{uuid.uuid4().hex[:8]}", "sqlQuery": sql}}
    if start or end:
        body.update(timeWindowType="EXPLICIT", timeWindowStart=start, timeWindowEnd=end)
    elif time_window_type:
        body["timeWindowType"] = time_window_type
    if timezone:
        body["timeWindowTimeZone"] = timezone
    if parameters:
        body["parameterValues"] = parameters
    return {**body, **(options or {})}


# -- the reporting services ----------------------------------------------------------------------------------------


class _Reports:
    """What both reporting services answer: a report (waited for, with progress), the list, the schedules."""

    service: str

    def __init__(self, insights: Insights) -> None:
        self._insights = insights

    def request(self, body: dict[str, Any], what: str) -> Outcome:
        """Send a report request as it is (the AWS Solution's payload) and wait for the report."""
        request_id = body.get("requestId") or uuid.uuid4().hex
        return self._insights.request(self.service, {**body, "requestId": request_id}, what=what, watch=(
            self._insights._status_of("ReportRecordsTable", {"service": self.service,
                                                             "recordId": f"report#{request_id}"}, "reportStatus")))

    def reports(self, status: str | None = None, customer_id: str | None = None, limit: int = 50) -> Outcome:
        """The reports requested, newest first."""
        return self._insights.request(self.service, {"requestType": "listReports", "limit": limit, **{
            k: v for k, v in (("status", status), ("customerId", customer_id)) if v}})

    @property
    def schedules(self) -> Schedules:
        return Schedules(self._insights, self.service, "reportRequest")


class AdsReports(_Reports):
    """Amazon Ads: profiles, reporting v3 reports, backfills and schedules."""

    service = "ads_reporting"

    def profiles(self, regions: list[str] | None = None, auth_id: str | None = None) -> Outcome:
        """The advertising profiles of the credential set, in ``regions`` (default: every region)."""
        return self._insights.request(self.service, {"requestType": "listProfiles", **{
            k: v for k, v in (("region", regions), ("authId", auth_id)) if v}})

    def report(self, profile_id: str, region: str, report_type: str, start: str, end: str, columns: list[str],
               group_by: list[str], **options: Any) -> Outcome:
        """A report of ``report_type`` (``spCampaigns``...) for ``start``..``end`` (dates or ``TODAY(-n)``); see
        :func:`ads_report_request` for ``options``."""
        body = ads_report_request(profile_id, region, report_type, start, end, columns, group_by, **options)
        return self.request(body, f"{report_type} {start}..{end}")

    def backfill(self, profile_id: str, region: str, report_type: str, start: str, end: str, columns: list[str],
                 group_by: list[str], wait: bool = True, **options: Any) -> Outcome:
        """Reports over ``start``..``end``, split within the report type's maximum range; with ``wait``, until
        each is in."""
        body = ads_report_request(profile_id, region, report_type, "", "", columns, group_by, **options)
        del body["requestBody"]["startDate"], body["requestBody"]["endDate"]
        return self._insights._backfill(self.service, {**body, "requestType": "backfillReports", "startDate": start,
                                                       "endDate": end}, f"{report_type} backfill", wait)


def ads_report_request(profile_id: str, region: str, report_type: str, start: str, end: str, columns: list[str],
                       group_by: list[str], *, ad_product: str | None = None, time_unit: str = "DAILY",
                       filters: list[dict[str, Any]] | None = None, table: str | None = None,
                       auth_id: str | None = None, customer_id: str | None = None) -> dict[str, Any]:
    """An Ads report request (the AWS Solution's payload); the ad product defaults to the report type's."""
    from shared.amazon.ads import REPORT_TYPES

    known = REPORT_TYPES.get(report_type)
    ad_product = ad_product or (known.ad_product if known else None)  # an unknown type: Amazon says what it lacks
    configuration = {**({"adProduct": ad_product} if ad_product else {}), "reportTypeId": report_type,
                     "groupBy": group_by, "columns": columns, "timeUnit": time_unit, "format": "GZIP_JSON",
                     **({"filters": filters} if filters else {})}
    return {"profileId": str(profile_id), "region": region, "requestBody": {
        "startDate": start, "endDate": end, "configuration": configuration},
        **{k: v for k, v in (("tableName", table), ("authId", auth_id), ("customerId", customer_id)) if v}}


class SpReports(_Reports):
    """Selling Partner: reports (any report type) and schedules."""

    service = "sp_reporting"

    def report(self, report_type: str, marketplace_ids: list[str], start: str | None = None, end: str | None = None,
               options: dict[str, str] | None = None, table_prefix: str | None = None, auth_id: str | None = None,
               customer_id: str | None = None) -> Outcome:
        """A report of ``report_type`` for the marketplaces (one region) over ``start``..``end``."""
        body = sp_report_request(report_type, marketplace_ids, start, end, options, table_prefix, auth_id,
                                 customer_id)
        return self.request(body, f"{report_type} {start or ''}..{end or ''}")


def sp_report_request(report_type: str, marketplace_ids: list[str], start: str | None = None,
                      end: str | None = None, options: dict[str, str] | None = None, table_prefix: str | None = None,
                      auth_id: str | None = None, customer_id: str | None = None) -> dict[str, Any]:
    """An SP report request (the AWS Solution's payload)."""
    body = {"reportType": report_type, "marketplaceIds": marketplace_ids, **{k: v for k, v in (
        ("dataStartTime", start), ("dataEndTime", end), ("reportOptions", options)) if v}}
    return {"requestBody": body, **{k: v for k, v in (
        ("tablePrefix", table_prefix), ("authId", auth_id), ("customerId", customer_id)) if v}}


# -- the data lake -------------------------------------------------------------------------------------------------


class Lake:
    """Datasets, SQL, dead letters and the pipeline's state."""

    def __init__(self, insights: Insights) -> None:
        self._insights, self._platform = insights, insights.platform

    def datasets(self) -> Outcome:
        return self._insights.request("datalake", {"requestType": "listDatasets"})

    def register(self, dataset: dict[str, Any]) -> Outcome:
        """Register (or change) a dataset: ``team``, ``dataset``, its ``stageA`` entry point, batching limits."""
        return self._insights.request("datalake", {"requestType": "registerDataset", **dataset})

    def query(self, sql: str, database: str | None = None, timeout_s: float = 300) -> lake.Rows:
        """Run SQL (Athena; DuckDB in the local cloud). Raises lake.QueryFailed with the reason, TimeoutError when
        it has not finished within ``timeout_s``."""
        try:
            return lake.query(self._platform.client("athena"), sql, database=database, timeout_s=timeout_s,
                              output=f"s3://{self._platform.buckets['stage']}/athena/")
        except lake.QueryTimedOut as exc:
            raise TimeoutError(str(exc)) from exc

    def redrive(self, stage: str) -> Outcome:
        """Send stage ``a`` or ``b``'s dead letters back through it."""
        return self._insights.request("datalake", {"requestType": "redrive", "stage": stage})

    def status(self) -> list[dict[str, Any]]:
        """Per dataset: files waiting for stage B, files in a run, and the latest run."""
        from amci.status import lake_status

        datasets = [d["dataset"] for d in self.datasets().check().details["datasets"]]
        return lake_status(self._platform, datasets)
