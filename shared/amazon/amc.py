"""Amazon Marketing Cloud's reporting API (workflows, workflow executions, results), for one AMC instance.

Amazon publishes no SDK for it: this is a thin client on :class:`AmazonHttp`, which retries 429 and 5xx within
the caller's :class:`Deadline` and refreshes the token once on a 401. Results are dataclasses; errors are typed
(:class:`WorkflowExists`, :class:`ResultsNotReady`, :class:`ExecutionFinished` besides those of ``errors.py``).
Decisions rest on HTTP statuses, error codes and follow-up reads, never on the wording of a message.

Creating an execution is not idempotent on Amazon's side. After an ambiguous failure (a timeout, a dropped
connection, a 5xx), :meth:`AmcClient.create_execution` looks, by listing executions created since just before
the call, for the one it may have created, and only retries when there is none. A request that timed out may
still be running on the server, so after a timeout it keeps looking for ``settle_s`` before concluding.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from shared.amazon.errors import AmazonApiError, Duplicate, InvalidRequest, NotFound
from shared.amazon.http import AmazonHttp, AmbiguousFailure, Auth, Deadline, create_once
from shared.amazon.regions import Endpoints, Region

log = logging.getLogger(__name__)
T = TypeVar("T")

# The error codes the AMC API (and the sandbox) answer with; see local/sandbox/amc/routes.py.
WORKFLOW_ALREADY_EXISTS = "WORKFLOW_ALREADY_EXISTS"


class WorkflowExists(Duplicate):
    """A workflow with this id already exists in the instance."""


class ResultsNotReady(InvalidRequest):
    """The execution has no results to download (yet, or ever: it did not succeed)."""


class ExecutionFinished(InvalidRequest):
    """The execution has already finished, so it cannot be cancelled or changed."""


class ExecutionStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PUBLISHING = "PUBLISHING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"


TERMINAL_STATUSES = frozenset({ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.REJECTED,
                               ExecutionStatus.CANCELLED})


class TimeWindowType(StrEnum):
    EXPLICIT = "EXPLICIT"
    MOST_RECENT_DAY = "MOST_RECENT_DAY"
    MOST_RECENT_WEEK = "MOST_RECENT_WEEK"
    CURRENT_MONTH = "CURRENT_MONTH"
    PREVIOUS_MONTH = "PREVIOUS_MONTH"


class WorkflowWrite(StrEnum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"


# -- what goes in and comes out ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workflow:
    """A workflow definition. ``sql_query`` is None for legacy workflows defined by ``query`` operations."""

    workflow_id: str
    sql_query: str | None = None
    input_parameters: tuple[Mapping[str, Any], ...] = ()
    filtered_metrics_discriminator_column: str | None = None
    distinct_user_count_column: str | None = None
    filtered_reason_column: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # fields this client does not model, kept as they are

    _FIELDS = {"workflowId": "workflow_id", "sqlQuery": "sql_query", "inputParameters": "input_parameters",
               "filteredMetricsDiscriminatorColumn": "filtered_metrics_discriminator_column",
               "distinctUserCountColumn": "distinct_user_count_column",
               "filteredReasonColumn": "filtered_reason_column"}

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> Workflow:
        known = {attr: body[key] for key, attr in cls._FIELDS.items() if key in body}
        known["input_parameters"] = tuple(known.get("input_parameters") or ())
        return cls(**known, extra={k: v for k, v in body.items() if k not in cls._FIELDS})

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {**self.extra}
        for key, attr in self._FIELDS.items():
            value = getattr(self, attr)
            if value not in (None, (), ""):  # an ad hoc workflow may leave its id to AMC (transient_<uuid>)
                body[key] = list(value) if key == "inputParameters" else value
        return body

    def same_definition(self, other: Workflow) -> bool:
        """Whether ``other`` defines the same query (AMC adds defaults such as ``elementNullable`` when reading)."""
        return (self.workflow_id, self.sql_query) == (other.workflow_id, other.sql_query) and \
            [p.get("name") for p in self.input_parameters] == [p.get("name") for p in other.input_parameters]


@dataclass(frozen=True)
class OutputColumn:
    name: str
    column_type: str
    data_type: str


@dataclass(frozen=True)
class ExecutionRequest:
    """What to run: a saved workflow (``workflow_id``) or an ad hoc one (``workflow``), over a time window.

    EXPLICIT windows take local times (naive datetimes or ``2024-01-20T00:00:00``) in ``time_zone`` (IANA name;
    AMC's default is UTC); an aware datetime is converted to UTC and needs no ``time_zone``.
    """

    workflow_id: str | None = None
    workflow: Workflow | None = None
    time_window_type: TimeWindowType | str | None = None  # None: AMC's default, MOST_RECENT_DAY
    time_window_start: datetime | str | None = None
    time_window_end: datetime | str | None = None
    time_zone: str | None = None
    parameter_values: Mapping[str, Any] = field(default_factory=dict)
    ignore_data_gaps: bool | None = None
    require_synthetic_data: bool | None = None
    disable_aggregation_controls: bool | None = None
    timeout_seconds: int | None = None

    def __post_init__(self) -> None:
        if (self.workflow_id is None) == (self.workflow is None):
            raise ValueError("give exactly one of workflow_id (a saved workflow) or workflow (ad hoc)")
        explicit = self.time_window_type == TimeWindowType.EXPLICIT
        if explicit != (self.time_window_start is not None and self.time_window_end is not None):
            raise ValueError("time_window_start and time_window_end go with time_window_type EXPLICIT, and only")

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {"workflowId": self.workflow_id} if self.workflow_id else {
            "workflow": self.workflow.to_api() if self.workflow else {}}
        zone = self.time_zone
        if self.time_window_type is not None:
            body["timeWindowType"] = str(self.time_window_type)
        if self.time_window_start is not None and self.time_window_end is not None:
            body["timeWindowStart"], zone = _local_time(self.time_window_start, zone)
            body["timeWindowEnd"], zone = _local_time(self.time_window_end, zone)
        optional = {"timeWindowTimeZone": zone, "ignoreDataGaps": self.ignore_data_gaps,
                    "requireSyntheticData": self.require_synthetic_data,
                    "disableAggregationControls": self.disable_aggregation_controls,
                    "workflowExecutionTimeoutSeconds": self.timeout_seconds}
        body.update({key: value for key, value in optional.items() if value is not None})
        if self.parameter_values:
            body["parameterValues"] = dict(self.parameter_values)
        return body


@dataclass(frozen=True)
class Execution:
    execution_id: str
    workflow_id: str
    status: ExecutionStatus | str  # a status this client does not know stays a string
    status_reason: str | None
    create_time: datetime | None
    last_updated_time: datetime | None
    time_window_start: datetime | None
    time_window_end: datetime | None
    parameter_values: Mapping[str, Any]
    output_columns: tuple[OutputColumn, ...]
    output_s3_uri: str | None  # None when AMC says "N/A" (the instance has no bucket)
    workflow: Workflow | None  # with include_workflow
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status == ExecutionStatus.SUCCEEDED

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> Execution:
        status = str(body.get("status", ""))
        output_uri = body.get("outputS3URI")
        return cls(
            execution_id=str(body["workflowExecutionId"]), workflow_id=str(body.get("workflowId", "")),
            status=ExecutionStatus(status) if status in ExecutionStatus.__members__ else status,
            status_reason=body.get("statusReason"), create_time=_time(body.get("createTime")),
            last_updated_time=_time(body.get("lastUpdatedTime")),
            time_window_start=_time(body.get("timeWindowStart")), time_window_end=_time(body.get("timeWindowEnd")),
            parameter_values=dict(body.get("parameterValues") or {}),
            output_columns=tuple(OutputColumn(c.get("name", ""), c.get("columnType", ""), c.get("dataType", ""))
                                 for c in body.get("outputColumns") or ()),
            output_s3_uri=output_uri if output_uri and output_uri != "N/A" else None,
            workflow=Workflow.from_api(body["workflow"]) if isinstance(body.get("workflow"), dict) else None,
            raw=dict(body))


@dataclass(frozen=True)
class DownloadUrls:
    """Pre-signed URLs (valid about 10 minutes): never log them."""

    urls: tuple[str, ...] = field(repr=False)
    metadata_urls: tuple[str, ...] = field(repr=False, default=())


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_token: str | None


# -- the client ----------------------------------------------------------------------------------------------


class AmcClient:
    """The reporting API of one AMC instance, reached through ``advertiser_id`` in ``marketplace_id``."""

    def __init__(self, http: AmazonHttp, endpoints: Endpoints, auth: Auth, instance_id: str, advertiser_id: str,
                 marketplace_id: str, region: Region = Region.NA, *, settle_s: float = 15.0,
                 settle_poll_s: float = 1.0, creation_skew_s: float = 120.0,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        """``settle_s``: how long to keep looking for an execution a timed-out create may still be making;
        ``creation_skew_s``: how far before the call an execution found afterwards may claim to be created."""
        self.http, self.auth = http, auth
        self.instance_id, self.advertiser_id, self.marketplace_id = instance_id, advertiser_id, marketplace_id
        self.base_url = f"{endpoints.base('amc', region)}/amc/reporting/{quote(instance_id, safe='')}"
        self.settle_s, self.settle_poll_s, self.creation_skew_s = settle_s, settle_poll_s, creation_skew_s
        self._clock, self._sleep = clock, sleep

    # -- workflows -------------------------------------------------------------------------------------------

    def create_workflow(self, workflow: Workflow, deadline: Deadline | None = None) -> None:
        """Create ``workflow``; :class:`WorkflowExists` if its id is taken (by another definition)."""
        def create() -> bool:
            self._call("createWorkflow", "POST", "/workflows", deadline, idempotent=False, json=workflow.to_api())
            return True

        def already_created() -> bool | None:  # after an ambiguous failure: did our definition land?
            existing = self._get_workflow_or_none(workflow.workflow_id, deadline)
            return True if existing is not None and existing.same_definition(workflow) else None

        create_once("createWorkflow", self.http, create, already_created, deadline)

    def get_workflow(self, workflow_id: str, deadline: Deadline | None = None) -> Workflow:
        return Workflow.from_api(self._call("getWorkflow", "GET", f"/workflows/{_id(workflow_id)}", deadline).json())

    def update_workflow(self, workflow: Workflow, deadline: Deadline | None = None) -> None:
        self._call("updateWorkflow", "PUT", f"/workflows/{_id(workflow.workflow_id)}", deadline,
                   json=workflow.to_api())

    def delete_workflow(self, workflow_id: str, deadline: Deadline | None = None, missing_ok: bool = False) -> None:
        """Delete a workflow (AMC refuses while a schedule uses it). ``missing_ok``: a missing one is no error,
        which also makes a retried delete that had succeeded harmless."""
        try:
            self._call("deleteWorkflow", "DELETE", f"/workflows/{_id(workflow_id)}", deadline)
        except NotFound:
            if not missing_ok:
                raise

    def list_workflows_page(self, limit: int | None = None, next_token: str | None = None,
                            deadline: Deadline | None = None) -> Page[Workflow]:
        params = {key: value for key, value in (("limit", limit), ("nextToken", next_token)) if value}
        body = self._call("listWorkflows", "GET", "/workflows", deadline, params=params).json()
        return Page([Workflow.from_api(w) for w in body.get("workflows") or []], body.get("nextToken") or None)

    def list_workflows(self, page_size: int | None = None, deadline: Deadline | None = None) -> Iterator[Workflow]:
        """Every workflow of the instance, page after page."""
        return _pages(lambda token: self.list_workflows_page(page_size, token, deadline))

    def create_or_update_workflow(self, workflow: Workflow, deadline: Deadline | None = None) -> WorkflowWrite:
        """Create the workflow, or update it when one with its id exists (told by the error code or by a read)."""
        try:
            self.create_workflow(workflow, deadline)
            return WorkflowWrite.CREATED
        except WorkflowExists:
            pass
        except InvalidRequest as exc:  # another 400: an existing workflow explains it only if one is there
            if self._get_workflow_or_none(workflow.workflow_id, deadline) is None:
                raise
            log.info("workflow exists (create refused with %s); updating it", exc.code or exc.status,
                     extra={"workflow_id": workflow.workflow_id})
        self.update_workflow(workflow, deadline)
        return WorkflowWrite.UPDATED

    # -- executions ------------------------------------------------------------------------------------------

    def create_execution(self, request: ExecutionRequest | Mapping[str, Any],
                         deadline: Deadline | None = None) -> Execution:
        """Start an execution, at most once: an ambiguous failure is followed by a look for what it created.

        ``request`` may also be the API's own body, sent as it is (fields this client does not model pass)."""
        body = request.to_api() if isinstance(request, ExecutionRequest) else dict(request)
        since = self._clock() - self.creation_skew_s
        failures: list[AmbiguousFailure] = []

        def create() -> Execution:
            try:
                response = self._call("createWorkflowExecution", "POST", "/workflowExecutions", deadline,
                                      idempotent=False, json=body)
            except AmbiguousFailure as failure:
                failures.append(failure)
                raise
            return Execution.from_api(response.json())

        def created() -> Execution | None:
            timed_out = failures[-1].status is None  # no answer: the server may still be creating it
            return self._find_created(body, since, self.settle_s if timed_out else 0.0, deadline)

        return create_once("createWorkflowExecution", self.http, create, created, deadline)

    def get_execution(self, execution_id: str, include_workflow: bool = False,
                      deadline: Deadline | None = None) -> Execution:
        params = {"includeWorkflow": "true"} if include_workflow else None
        return Execution.from_api(self._call("getWorkflowExecution", "GET", f"/workflowExecutions/{_id(execution_id)}",
                                             deadline, params=params).json())

    def list_executions_page(self, *, workflow_id: str | None = None, min_creation_time: datetime | None = None,
                             max_creation_time: datetime | None = None, include_workflow: bool = False,
                             next_token: str | None = None, deadline: Deadline | None = None) -> Page[Execution]:
        """One page of executions; creation times are UTC (naive datetimes are taken as UTC)."""
        params = {"workflowId": workflow_id, "minCreationTime": _query_time(min_creation_time),
                  "maxCreationTime": _query_time(max_creation_time),
                  "includeWorkflow": "true" if include_workflow else None, "nextToken": next_token}
        body = self._call("listWorkflowExecutions", "GET", "/workflowExecutions", deadline,
                          params={key: value for key, value in params.items() if value}).json()
        return Page([Execution.from_api(e) for e in body.get("executions") or []], body.get("nextToken") or None)

    def list_executions(self, *, workflow_id: str | None = None, min_creation_time: datetime | None = None,
                        max_creation_time: datetime | None = None, include_workflow: bool = False,
                        deadline: Deadline | None = None) -> Iterator[Execution]:
        """Every execution matching the filters, page after page."""
        return _pages(lambda token: self.list_executions_page(
            workflow_id=workflow_id, min_creation_time=min_creation_time, max_creation_time=max_creation_time,
            include_workflow=include_workflow, next_token=token, deadline=deadline))

    def cancel_execution(self, execution_id: str, deadline: Deadline | None = None) -> None:
        """Cancel a queued or running execution; :class:`ExecutionFinished` if it finished otherwise first.

        Cancelling a cancelled execution is no error, so a retried cancel is harmless."""
        try:
            self._call("updateWorkflowExecution", "PUT", f"/workflowExecutions/{_id(execution_id)}", deadline,
                       json={"status": ExecutionStatus.CANCELLED.value})
        except InvalidRequest as exc:
            current = self.get_execution(execution_id, deadline=deadline)
            if current.status == ExecutionStatus.CANCELLED:
                return
            if current.terminal:
                raise _as(ExecutionFinished, exc) from None
            raise

    def download_urls(self, execution_id: str, deadline: Deadline | None = None) -> DownloadUrls:
        """The result files' URLs; :class:`ResultsNotReady` until the execution has SUCCEEDED."""
        try:
            body = self._call("getWorkflowExecutionDownloadUrls", "GET",
                              f"/workflowExecutions/{_id(execution_id)}/downloadUrls", deadline).json()
        except InvalidRequest as exc:  # the call has no input to be wrong: a 400 means no results to give
            raise _as(ResultsNotReady, exc) from None
        return DownloadUrls(tuple(body.get("downloadUrls") or ()), tuple(body.get("metadataDownloadUrls") or ()))

    # -- plumbing --------------------------------------------------------------------------------------------

    def _call(self, operation: str, method: str, path: str, deadline: Deadline | None, idempotent: bool = True,
              **body: Any) -> Any:
        headers = {"Amazon-Advertising-API-AdvertiserId": self.advertiser_id,
                   "Amazon-Advertising-API-MarketplaceId": self.marketplace_id}
        try:
            return self.http.call(operation, method, f"{self.base_url}{path}", idempotent=idempotent, auth=self.auth,
                                  deadline=deadline, headers=headers, **body)
        except AmazonApiError as exc:
            if operation == "createWorkflow" and (exc.code == WORKFLOW_ALREADY_EXISTS or exc.status == 409):
                raise _as(WorkflowExists, exc) from None
            raise

    def _get_workflow_or_none(self, workflow_id: str, deadline: Deadline | None) -> Workflow | None:
        try:
            return self.get_workflow(workflow_id, deadline)
        except NotFound:
            return None

    def _find_created(self, body: Mapping[str, Any], since: float, settle_s: float,
                      deadline: Deadline | None) -> Execution | None:
        """The execution ``body`` created since ``since``, looking for up to ``settle_s`` (within the deadline)."""
        if deadline is not None:
            settle_s = min(settle_s, max(0.0, deadline.remaining() - 1.0))
        stop = time.monotonic() + settle_s
        while True:
            found = self.find_execution(body, since, deadline)
            left = stop - time.monotonic()
            if found is not None or left <= 0:
                return found
            self._sleep(min(self.settle_poll_s, left))

    def find_execution(self, body: Mapping[str, Any], since: float, deadline: Deadline | None = None
                       ) -> Execution | None:
        """The newest execution created since ``since`` (epoch seconds) that ``body`` would have created."""
        ad_hoc = "workflow" in body
        workflow_id = body.get("workflowId") or (body.get("workflow") or {}).get("workflowId")
        candidates = [e for e in self.list_executions(
            workflow_id=workflow_id, min_creation_time=datetime.fromtimestamp(since, UTC), include_workflow=ad_hoc,
            deadline=deadline) if _made_by(e, body)]
        if candidates:
            log.info("found the execution an ambiguous create had made",
                     extra={"instance_id": self.instance_id, "execution_id": candidates[-1].execution_id})
        return max(candidates, key=lambda e: e.create_time or datetime.min.replace(tzinfo=UTC), default=None)


def _made_by(execution: Execution, body: Mapping[str, Any]) -> bool:
    """Whether ``execution`` is what ``body`` asks for: same workflow (or ad hoc query), window and parameters."""
    raw = execution.raw
    if "workflow" in body:
        if execution.workflow is None or execution.workflow.sql_query != body["workflow"].get("sqlQuery"):
            return False
    elif execution.workflow_id != body.get("workflowId"):
        return False
    if body.get("timeWindowType") == TimeWindowType.EXPLICIT:
        for key in ("timeWindowStart", "timeWindowEnd"):
            if _naive(raw.get(f"{key}Original")) != _naive(body.get(key)):
                return False
        if (raw.get("timeWindowTimeZoneOriginal") or "UTC") != (body.get("timeWindowTimeZone") or "UTC"):
            return False
    return dict(raw.get("parameterValues") or {}) == dict(body.get("parameterValues") or {})


def _pages(fetch: Callable[[str | None], Page[T]]) -> Iterator[T]:
    token: str | None = None
    while True:
        page = fetch(token)
        yield from page.items
        if not page.next_token or page.next_token == token:
            return
        token = page.next_token


def _as(kind: type[AmazonApiError], exc: AmazonApiError) -> AmazonApiError:
    return kind(exc.api, exc.operation, exc.detail, exc.status, exc.code, exc.request_id, exc.retry_after)


def _id(value: str) -> str:
    return quote(value, safe="")


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _naive(value: Any) -> datetime | None:
    parsed = _time(value)
    return parsed.replace(tzinfo=None) if parsed else None


def _local_time(value: datetime | str, zone: str | None) -> tuple[str, str | None]:
    """AMC's local-time text for a window bound, and the time zone it is in."""
    if isinstance(value, str):
        return value, zone
    if value.tzinfo is not None:
        if zone not in (None, "UTC"):
            raise ValueError("give naive local datetimes with time_zone, or aware datetimes without it")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "UTC"
    return value.strftime("%Y-%m-%dT%H:%M:%S"), zone


def _query_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    utc = value.astimezone(UTC) if value.tzinfo else value
    return utc.strftime("%Y-%m-%dT%H:%M:%S")
