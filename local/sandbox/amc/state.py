"""AMC's state: instances, their workflows, and workflow executions whose status follows the clock.

An execution waits ``pending_s`` (queued and validated), then for a free slot (at most ``concurrency_limit``
executions of an instance run at once), runs ``running_s``, publishes its results for ``publishing_s`` and
succeeds, unless a fault outcome makes it FAILED (at the end of its run) or REJECTED (at validation, without a
slot). Statuses are computed from the clock whenever anybody looks (:meth:`AmcState.advance`), and a ticker
advances every instance in the background, so results land in the instance's bucket even if nobody polls.
Events are replayed in time order, so a queued execution starts exactly when a slot frees, not when it is read.

Timings are captured per execution when it is created: changing :class:`AmcTimings` affects later executions.
Tests that must see something happen while executions wait hold them (``concurrency_limit = 0`` keeps them queued,
a long ``running_s`` keeps them running) and then let them go (the limit restored, :meth:`AmcState.end_running`).
Errors are :class:`AmcError` (``status``, ``code``, ``message``); the routes turn them into HTTP answers.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from local.sandbox.errors import SandboxError

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "REJECTED", "CANCELLED"})
FAULT_OUTCOMES = ("FAILED", "REJECTED")  # what a fault can make of an execution (routes.py declares them)
TIME_WINDOW_TYPES = ("EXPLICIT", "MOST_RECENT_DAY", "MOST_RECENT_WEEK", "CURRENT_MONTH", "PREVIOUS_MONTH")
DEFAULT_TIMEOUT_S = 21600
EXPIRY_S = 24 * 3600
WORKFLOW_ID = re.compile(r"^[A-Za-z0-9._-]{1,256}$")
_EXECUTION_FIELDS = {"workflowId", "workflow", "timeWindowType", "timeWindowStart", "timeWindowEnd",
                     "timeWindowTimeZone", "parameterValues", "ignoreDataGaps", "requireSyntheticData",
                     "disableAggregationControls", "workflowExecutionTimeoutSeconds", "outputFormat"}
_BOOLEANS = ("ignoreDataGaps", "requireSyntheticData", "disableAggregationControls")

# Error codes (the ``code`` of the JSON error body); messages follow AMC's where known.
BAD_REQUEST = "BAD_REQUEST"
NOT_FOUND = "NOT_FOUND"
WORKFLOW_ALREADY_EXISTS = "WORKFLOW_ALREADY_EXISTS"  # 400, "Workflow with ID {id} already exists."
RESULTS_UNAVAILABLE = "RESULTS_UNAVAILABLE"  # 400, "Execution with ID {id} is unavailable for download."
INVALID_STATE = "INVALID_STATE"  # 400, updating (cancelling) an execution that has finished

REJECTED_REASON = ('Execution "{execution}" of workflow "{workflow}" could not be run because too many workflows '
                   "have already been run against the same input data sources in the same or overlapping time "
                   "windows.")
FAILED_REASON = "Query execution failed: an internal error occurred while running the query. Please retry."
TIMEOUT_REASON = "Workflow execution exceeded workflowExecutionTimeoutSeconds ({seconds}) and was stopped."
CANCELLED_REASON = "The workflow execution was cancelled."


class AmcError(SandboxError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, message, code=code)


@dataclass
class AmcTimings:
    """Seconds each phase lasts (set at run time: ``sandbox.amc.timings.running_s = 0.2``)."""

    pending_s: float = 2.0
    running_s: float = 4.0
    publishing_s: float = 2.0
    tick_s: float = 0.1  # how often the background ticker advances executions


@dataclass
class Delivery:
    """What became of a succeeded execution's results (filled by the deliver callback)."""

    output_columns: list[dict[str, str]]
    output_s3_uri: str = "N/A"
    files: list[str] = field(default_factory=list)  # sandbox.files names of the CSV parts
    metadata_files: list[str] = field(default_factory=list)


@dataclass
class Execution:
    execution_id: str
    instance_id: str
    workflow_id: str
    workflow: dict[str, Any]  # the definition it runs (a snapshot for saved workflows)
    saved: bool
    request: dict[str, Any]  # the normalised request fields echoed in the API shape
    created_at: float
    pending_s: float
    running_s: float
    publishing_s: float
    outcome: str | None = None  # FAILED | REJECTED forced by a fault, or a timeout
    reason: str | None = None
    started_at: float | None = None
    final_status: str | None = None
    final_at: float | None = None
    delivery: Delivery | None = None

    @property
    def ends_at(self) -> float:
        """When a started execution stops holding its slot."""
        assert self.started_at is not None
        run = self.running_s if self.outcome else self.running_s + self.publishing_s
        return self.started_at + run

    def status_at(self, now: float) -> str:
        if self.final_status:
            return self.final_status
        if self.started_at is None:
            return "PENDING"
        return "RUNNING" if now < self.started_at + self.running_s else "PUBLISHING"

    def updated_at(self, now: float) -> float:
        status = self.status_at(now)
        if self.final_status and self.final_at is not None:
            return self.final_at
        if status == "PENDING" or self.started_at is None:
            return self.created_at
        return self.started_at if status == "RUNNING" else self.started_at + self.running_s


@dataclass
class Instance:
    instance_id: str
    advertiser_id: str
    marketplace_id: str
    results_bucket: str | None = None
    concurrency_limit: int = 10
    workflows: dict[str, dict[str, Any]] = field(default_factory=dict)
    executions: dict[str, Execution] = field(default_factory=dict)  # in creation order
    slot_freed_at: float = 0.0  # the last cancellation: nothing queued may start before it
    peak_active: int = 0  # the most executions queued or running at once: a client's gate keeps it <= the limit

    def live(self) -> list[Execution]:
        return [e for e in self.executions.values() if e.final_status is None]


Deliver = Callable[[Instance, Execution, float], Delivery]


class AmcState:
    def __init__(self, timings: AmcTimings | None = None, deliver: Deliver | None = None,
                 outcome: Callable[[], str | None] = lambda: None, clock: Callable[[], float] = time.time) -> None:
        """``deliver`` makes a succeeded execution's results; ``outcome`` says whether a new one must fail."""
        self.timings = timings or AmcTimings()
        self.execution_page_size = 100
        self._deliver = deliver or (lambda _instance, _execution, _at: Delivery([]))
        self._outcome = outcome
        self._clock = clock
        self.instances: dict[str, Instance] = {}
        self._lock = threading.RLock()

    # -- instances -----------------------------------------------------------------------------------------

    def register_instance(self, instance_id: str, advertiser_id: str, marketplace_id: str,
                          results_bucket: str | None = None, concurrency_limit: int = 10) -> Instance:
        """Add an instance, or change an existing one's settings (its workflows and executions are kept)."""
        with self._lock:
            instance = self.instances.get(instance_id)
            if instance is None:
                instance = self.instances[instance_id] = Instance(instance_id, advertiser_id, marketplace_id)
            instance.advertiser_id, instance.marketplace_id = advertiser_id, marketplace_id
            instance.results_bucket, instance.concurrency_limit = results_bucket, concurrency_limit
            return instance

    def instance(self, instance_id: str) -> Instance:
        found = self.instances.get(instance_id)
        if found is None:
            raise AmcError(404, NOT_FOUND, f"Instance with ID {instance_id} not found.")
        return found

    # -- workflows -----------------------------------------------------------------------------------------

    def create_workflow(self, instance_id: str, body: Any) -> None:
        workflow = _workflow_definition(body)
        with self._lock:
            instance = self.instance(instance_id)
            if workflow["workflowId"] in instance.workflows:
                raise AmcError(400, WORKFLOW_ALREADY_EXISTS,
                               f"Workflow with ID {workflow['workflowId']} already exists.")
            instance.workflows[workflow["workflowId"]] = workflow

    def get_workflow(self, instance_id: str, workflow_id: str) -> dict[str, Any]:
        with self._lock:
            return _workflow_out(self._workflow(instance_id, workflow_id))

    def update_workflow(self, instance_id: str, workflow_id: str, body: Any) -> None:
        workflow = _workflow_definition(body)
        if workflow["workflowId"] != workflow_id:
            raise AmcError(400, BAD_REQUEST, f"workflowId in the body ({workflow['workflowId']}) does not match "
                           f"the path ({workflow_id}).")
        with self._lock:
            self._workflow(instance_id, workflow_id)
            self.instance(instance_id).workflows[workflow_id] = workflow

    def delete_workflow(self, instance_id: str, workflow_id: str) -> None:
        with self._lock:
            self._workflow(instance_id, workflow_id)
            del self.instance(instance_id).workflows[workflow_id]

    def list_workflows(self, instance_id: str, limit: str | None, next_token: str | None) -> dict[str, Any]:
        size = _limit(limit)
        after = _token(next_token, "workflows")
        with self._lock:
            ids = sorted(i for i in self.instance(instance_id).workflows if after is None or i > after)
            page = ids[:size]
            result: dict[str, Any] = {"workflows": [_workflow_out(self.instance(instance_id).workflows[i])
                                                    for i in page]}
        if len(ids) > size:
            result["nextToken"] = _make_token("workflows", page[-1])
        return result

    def _workflow(self, instance_id: str, workflow_id: str) -> dict[str, Any]:
        found = self.instance(instance_id).workflows.get(workflow_id)
        if found is None:
            raise AmcError(404, NOT_FOUND, f"Workflow with ID {workflow_id} not found.")
        return found

    # -- executions ----------------------------------------------------------------------------------------

    def create_execution(self, instance_id: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise AmcError(400, BAD_REQUEST, "The request body must be a JSON object.")
        unknown = sorted(set(body) - _EXECUTION_FIELDS)
        if unknown:
            raise AmcError(400, BAD_REQUEST, f"Unrecognized field(s): {', '.join(unknown)}.")
        if ("workflowId" in body) == ("workflow" in body):
            raise AmcError(400, BAD_REQUEST, "Exactly one of workflowId (a saved workflow) or workflow "
                           "(an ad hoc workflow) is required.")
        request = _execution_request(body)
        with self._lock:
            instance = self.instance(instance_id)
            if "workflow" in body:
                workflow = _workflow_definition(body["workflow"], ad_hoc=True)
            else:
                workflow = dict(self._workflow(instance_id, str(body["workflowId"])))
            now, timings = self.advance(instance_id), self.timings  # what was due before it, first
            execution = Execution(str(uuid.uuid4()), instance_id, workflow["workflowId"], workflow,
                                  "workflowId" in body, request, now, timings.pending_s, timings.running_s,
                                  timings.publishing_s)
            outcome = self._outcome()
            if outcome is not None:  # one of FAULT_OUTCOMES
                execution.outcome = outcome
                execution.reason = (REJECTED_REASON.format(execution=execution.execution_id,
                                                           workflow=execution.workflow_id)
                                    if outcome == "REJECTED" else FAILED_REASON)
            elif execution.running_s + execution.publishing_s > request["workflowExecutionTimeoutSeconds"]:
                execution.outcome = "FAILED"
                execution.running_s = float(request["workflowExecutionTimeoutSeconds"])
                execution.reason = TIMEOUT_REASON.format(seconds=request["workflowExecutionTimeoutSeconds"])
            instance.executions[execution.execution_id] = execution
            instance.peak_active = max(instance.peak_active, len(instance.live()))
            return self._execution_out(execution, now, include_workflow=False)

    def get_execution(self, instance_id: str, execution_id: str, include_workflow: bool = False) -> dict[str, Any]:
        with self._lock:
            now = self.advance(instance_id)
            return self._execution_out(self._execution(instance_id, execution_id), now, include_workflow)

    def list_executions(self, instance_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        zone = _zone(query.get("timeZone") or "UTC")
        low = _query_time(query.get("minCreationTime"), zone, "minCreationTime")
        high = _query_time(query.get("maxCreationTime"), zone, "maxCreationTime")
        workflow_id = query.get("workflowId") or None
        include = str(query.get("includeWorkflow", "false")).lower() == "true"
        after = _token(query.get("nextToken"), "executions")
        with self._lock:
            now = self.advance(instance_id)
            found = [e for e in self.instance(instance_id).executions.values()
                     if (workflow_id is None or e.workflow_id == workflow_id)
                     and (low is None or e.created_at >= low) and (high is None or e.created_at <= high)
                     and (after is None or [e.created_at, e.execution_id] > after)]
            found.sort(key=lambda e: (e.created_at, e.execution_id))
            page = found[:self.execution_page_size]
            result: dict[str, Any] = {"executions": [self._execution_out(e, now, include) for e in page]}
        if len(found) > len(page):
            result["nextToken"] = _make_token("executions", [page[-1].created_at, page[-1].execution_id])
        return result

    def update_execution(self, instance_id: str, execution_id: str, body: Any) -> dict[str, Any]:
        """Cancel (``{"status": "CANCELLED"}``) or change the flags of an execution that has not finished."""
        if not isinstance(body, dict):
            raise AmcError(400, BAD_REQUEST, "The request body must be a JSON object.")
        status = body.get("status")
        if status is not None and status != "CANCELLED":
            raise AmcError(400, BAD_REQUEST, f"status can only be set to CANCELLED, not {status!r}.")
        for name in _BOOLEANS:
            if name in body and not isinstance(body[name], bool):
                raise AmcError(400, BAD_REQUEST, f"{name} must be a boolean.")
        with self._lock:
            now = self.advance(instance_id)
            execution = self._execution(instance_id, execution_id)
            current = execution.status_at(now)
            if current in TERMINAL:
                raise AmcError(400, INVALID_STATE, f"Execution with ID {execution_id} is in terminal status "
                               f"{current} and cannot be updated.")
            execution.request.update({name: body[name] for name in _BOOLEANS if name in body})
            if status == "CANCELLED":
                self._cancel(execution, now)
            return self._execution_out(execution, now, include_workflow=False)

    def delete_execution(self, instance_id: str, execution_id: str) -> dict[str, Any]:
        """Clear a queued or running execution (it ends CANCELLED)."""
        return self.update_execution(instance_id, execution_id, {"status": "CANCELLED"})

    def download_files(self, instance_id: str, execution_id: str) -> Delivery:
        with self._lock:
            now = self.advance(instance_id)
            execution = self._execution(instance_id, execution_id)
            if execution.status_at(now) != "SUCCEEDED" or execution.delivery is None:
                raise AmcError(400, RESULTS_UNAVAILABLE,
                               f"Execution with ID {execution_id} is unavailable for download.")
            return execution.delivery

    def _execution(self, instance_id: str, execution_id: str) -> Execution:
        found = self.instance(instance_id).executions.get(execution_id)
        if found is None:
            raise AmcError(404, NOT_FOUND, f"Execution with ID {execution_id} not found.")
        return found

    def _cancel(self, execution: Execution, now: float) -> None:
        execution.final_status, execution.final_at, execution.reason = "CANCELLED", now, CANCELLED_REASON
        instance = self.instances[execution.instance_id]
        instance.slot_freed_at = max(instance.slot_freed_at, now)

    # -- the clock -----------------------------------------------------------------------------------------

    def advance(self, instance_id: str) -> float:
        """Apply every start and finish due by now, in time order; returns now."""
        with self._lock:
            now = self._clock()
            instance = self.instance(instance_id)
            floor = instance.slot_freed_at
            for event_at, kind, execution in self._events(instance, now, floor):
                if kind == "start":
                    execution.started_at = event_at
                else:
                    self._finish(instance, execution, event_at)
            return now

    def end_running(self, instance_id: str, execution_id: str | None = None) -> int:
        """End now the RUNNING phase of the instance's running executions (or of one); how many it ended.

        Tests hold an execution with a long ``running_s`` until what they watch for has happened, then let it go."""
        with self._lock:
            now, ended = self.advance(instance_id), 0
            for execution in self.instance(instance_id).live():
                if execution_id in (None, execution.execution_id) and execution.status_at(now) == "RUNNING":
                    assert execution.started_at is not None
                    execution.running_s, ended = now - execution.started_at, ended + 1
            return ended

    def advance_all(self) -> None:
        with self._lock:
            ids = [i for i, instance in self.instances.items() if instance.live()]
        for instance_id in ids:
            self.advance(instance_id)

    def _events(self, instance: Instance, now: float, floor: float) -> Iterator[tuple[float, str, Execution]]:
        """The next due event, repeatedly: a rejection, a finish (frees a slot) or a queued execution starting."""
        while True:
            live = instance.live()
            running = sorted((e for e in live if e.started_at is not None), key=lambda e: e.ends_at)
            queued = [e for e in live if e.started_at is None]
            candidates: list[tuple[float, int, Execution, str]] = []
            rejected = [e for e in queued if e.outcome == "REJECTED"]
            if rejected:
                first = min(rejected, key=lambda e: e.created_at + e.pending_s)
                candidates.append((first.created_at + first.pending_s, 0, first, "finish"))
            if running:
                candidates.append((running[0].ends_at, 1, running[0], "finish"))
            waiting = [e for e in queued if e.outcome != "REJECTED"]
            if waiting and len(running) < instance.concurrency_limit:
                first = waiting[0]
                candidates.append((max(first.created_at + first.pending_s, floor), 2, first, "start"))
            due = [c for c in candidates if c[0] <= now]
            if not due:
                return
            event_at, _order, execution, kind = min(due, key=lambda c: (c[0], c[1]))
            floor = max(floor, event_at)
            yield event_at, kind, execution

    def _finish(self, instance: Instance, execution: Execution, at: float) -> None:
        if execution.outcome:
            execution.final_status, execution.final_at = execution.outcome, at
            return
        execution.delivery = self._deliver(instance, execution, at)
        execution.final_status, execution.final_at = "SUCCEEDED", at

    # -- the API shape -------------------------------------------------------------------------------------

    def _execution_out(self, execution: Execution, now: float, include_workflow: bool) -> dict[str, Any]:
        status = execution.status_at(now)
        out: dict[str, Any] = {
            "workflowExecutionId": execution.execution_id, "workflowId": execution.workflow_id, "status": status,
            "executionCategory": "AD_HOC", "createTime": iso(execution.created_at),
            "lastUpdatedTime": iso(execution.updated_at(now)), "expireTime": iso(execution.created_at + EXPIRY_S),
            "waitUntil": iso(execution.created_at - 3600), "dataGaps": [], **execution.request}
        if execution.started_at is not None:
            out["validatedTime"] = iso(execution.created_at + execution.pending_s, millis=True)
        if status in ("SUCCEEDED", "FAILED") and execution.started_at is not None:
            out["executionTime"] = max(1, round((execution.final_at or now) - execution.started_at))
            out["availableTimeBeforeWindowSecs"] = 0
            out["invalidationOffsetSecs"] = 266400
        if status == "SUCCEEDED" and execution.delivery is not None:
            out["outputColumns"] = execution.delivery.output_columns
            out["outputS3URI"] = execution.delivery.output_s3_uri
        if status in ("FAILED", "REJECTED", "CANCELLED") and execution.reason:
            out["statusReason"] = execution.reason
        if include_workflow:
            out["workflow"] = _workflow_out(execution.workflow)
        return dict(sorted(out.items()))


# -- requests ----------------------------------------------------------------------------------------------


def _workflow_definition(body: Any, ad_hoc: bool = False) -> dict[str, Any]:
    """A workflow definition, checked; an ad hoc one without an id gets ``transient_<uuid>``."""
    if not isinstance(body, dict):
        raise AmcError(400, BAD_REQUEST, "The workflow must be a JSON object.")
    workflow = dict(body)
    if ad_hoc and not workflow.get("workflowId"):
        workflow["workflowId"] = f"transient_{uuid.uuid4()}"
    workflow_id = workflow.get("workflowId")
    if not isinstance(workflow_id, str) or not WORKFLOW_ID.match(workflow_id):
        raise AmcError(400, BAD_REQUEST, "workflowId is required and may contain only letters, digits, '.', '-' "
                       f"and '_' (got {workflow_id!r}).")
    sql = workflow.get("sqlQuery")
    if not isinstance(sql, str) or not sql.strip():
        raise AmcError(400, BAD_REQUEST, "sqlQuery is required.")
    if not re.match(r"\s*(\(\s*)*(select|with)\b", _strip_comments(sql), re.I):
        raise AmcError(400, BAD_REQUEST, "sqlQuery must be a SELECT statement (optionally starting with WITH).")
    parameters = workflow.get("inputParameters", [])
    if not isinstance(parameters, list) or not all(isinstance(p, dict) and p.get("name") and p.get("dataType")
                                                   for p in parameters):
        raise AmcError(400, BAD_REQUEST, "inputParameters must be a list of objects with name and dataType.")
    for option in ("filteredMetricsDiscriminatorColumn", "distinctUserCountColumn", "filteredReasonColumn"):
        if option in workflow and not isinstance(workflow[option], str):
            raise AmcError(400, BAD_REQUEST, f"{option} must be a string (a column name).")
    return workflow


def _workflow_out(workflow: Mapping[str, Any]) -> dict[str, Any]:
    """As AMC returns it: an array parameter type gains ``elementNullable: false``."""
    out = dict(workflow)
    if out.get("inputParameters"):
        out["inputParameters"] = [_parameter_out(p) for p in out["inputParameters"]]
    return out


def _parameter_out(parameter: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(parameter)
    if isinstance(out.get("dataType"), dict) and out["dataType"].get("type") == "ARRAY":
        out["dataType"] = {"elementNullable": False, **out["dataType"]}
    return out


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", " ", sql, flags=re.S)


def _execution_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """The execution fields AMC echoes: the time window normalised to UTC, parameters and flags."""
    window_type = body.get("timeWindowType") or "MOST_RECENT_DAY"
    if window_type not in TIME_WINDOW_TYPES:
        raise AmcError(400, BAD_REQUEST, f"timeWindowType must be one of {', '.join(TIME_WINDOW_TYPES)}.")
    zone_name = body.get("timeWindowTimeZone") or "UTC"
    zone = _zone(zone_name)
    parameters = body.get("parameterValues", {})
    if not isinstance(parameters, dict):
        raise AmcError(400, BAD_REQUEST, "parameterValues must be an object of parameter names to values.")
    timeout = body.get("workflowExecutionTimeoutSeconds", DEFAULT_TIMEOUT_S)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 0 < timeout <= 86400:
        raise AmcError(400, BAD_REQUEST, "workflowExecutionTimeoutSeconds must be an integer from 1 to 86400.")
    request: dict[str, Any] = {"parameterValues": parameters, "workflowExecutionTimeoutSeconds": timeout,
                               "ignoreDataGaps": False, "disableAggregationControls": False}
    for name in _BOOLEANS:
        if name in body:
            if not isinstance(body[name], bool):
                raise AmcError(400, BAD_REQUEST, f"{name} must be a boolean.")
            request[name] = body[name]
    start_local, end_local = _window(window_type, body, zone)
    start_utc = start_local.replace(tzinfo=zone).astimezone(UTC)
    end_utc = end_local.replace(tzinfo=zone).astimezone(UTC)
    request.update({"timeWindowStart": _z(start_utc), "timeWindowEnd": _z(end_utc),
                    "timeWindowStartOriginal": _local(start_local, body.get("timeWindowStart"), window_type),
                    "timeWindowEndOriginal": _local(end_local, body.get("timeWindowEnd"), window_type),
                    "timeWindowTimeZoneOriginal": zone_name})
    return request


def _window(window_type: str, body: Mapping[str, Any], zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The window's local (naive) start and end in ``zone``."""
    if window_type == "EXPLICIT":
        start = _local_time(body.get("timeWindowStart"), "timeWindowStart")
        end = _local_time(body.get("timeWindowEnd"), "timeWindowEnd")
        if start >= end:
            raise AmcError(400, BAD_REQUEST, "timeWindowStart must be before timeWindowEnd.")
        return start, end
    today = datetime.now(zone).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    if window_type == "MOST_RECENT_DAY":
        return today - timedelta(days=1), today
    if window_type == "MOST_RECENT_WEEK":
        return today - timedelta(days=7), today
    first = today.replace(day=1)
    if window_type == "CURRENT_MONTH":
        return first, today if today > first else today + timedelta(days=1)
    return (first - timedelta(days=1)).replace(day=1), first  # PREVIOUS_MONTH


def _local_time(value: Any, name: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise AmcError(400, BAD_REQUEST, f"{name} is required when timeWindowType is EXPLICIT "
                       "(a local time like 2024-01-20T00:00:00).")
    try:
        parsed = datetime.fromisoformat(value.removesuffix("Z"))
    except ValueError:
        raise AmcError(400, BAD_REQUEST, f"{name} {value!r} is not a time like 2024-01-20T00:00:00.") from None
    return parsed.replace(tzinfo=None) if parsed.tzinfo is None else parsed.astimezone(UTC).replace(tzinfo=None)


def _local(value: datetime, given: Any, window_type: str) -> str:
    return given if window_type == "EXPLICIT" and isinstance(given, str) else value.strftime("%Y-%m-%dT%H:%M:%S")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise AmcError(400, BAD_REQUEST, f"Unknown time zone {name!r}: expected an IANA name such as "
                       "America/New_York.") from None


def _query_time(value: str | None, zone: ZoneInfo, name: str) -> float | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.removesuffix("Z"))
    except ValueError:
        raise AmcError(400, BAD_REQUEST, f"{name} must look like yyyy-MM-ddTHH:mm:ss (got {value!r}).") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).timestamp()


def _limit(value: str | None) -> int:
    if value in (None, ""):
        return 100
    try:
        size = int(value)
    except ValueError:
        size = 0
    if not 1 <= size <= 100:
        raise AmcError(400, BAD_REQUEST, f"limit must be an integer from 1 to 100 (got {value!r}).")
    return size


def _make_token(kind: str, after: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps({"kind": kind, "after": after}).encode()).decode()


def _token(value: str | None, kind: str) -> Any:
    if not value:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(value.encode()))
        if decoded["kind"] == kind:
            return decoded["after"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        pass
    raise AmcError(400, BAD_REQUEST, "The nextToken is invalid.")


def iso(timestamp: float, millis: bool = False) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
