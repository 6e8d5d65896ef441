"""The workflow manager's requests. The AWS Solution's shapes are accepted unchanged: workflow requests
``{"customerId", "workflowRequest": {"requestType": "createWorkflow", "workflowDefinition": {...}}}``, execution
requests ``{"customerId", "requestType": "createExecution", "createExecutionRequest": {...}}`` and schedules
``{"execution_request", "schedule_expression", "rule_name"}``; the operations it lacked (lists, sync, schedule
management, backfills) use ``requestType`` like every other service."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared import scheduler, schedules
from shared.contracts import CUSTOMER_ID_PATTERN, Request

WORKFLOW_ID = r"^[A-Za-z0-9._-]{1,128}$"  # AMC: alphanumerics, '.', '-', '_'; no spaces
EXECUTION_ID = r"^[A-Za-z0-9-]{1,64}$"
TIME_WINDOW_TYPES = ("EXPLICIT", "MOST_RECENT_DAY", "MOST_RECENT_WEEK", "CURRENT_MONTH", "PREVIOUS_MONTH")


class WorkflowDefinition(BaseModel):
    """Passed to AMC as it is; only what the platform relies on is checked."""

    model_config = ConfigDict(extra="allow", frozen=True)
    workflowId: str = Field(pattern=WORKFLOW_ID)
    sqlQuery: str = Field(min_length=1)


class WorkflowRequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    customerId: str | None = Field(None, pattern=CUSTOMER_ID_PATTERN)
    requestType: Literal["createWorkflow", "updateWorkflow", "getWorkflow", "deleteWorkflow"]
    workflowId: str | None = Field(None, pattern=WORKFLOW_ID)
    workflowDefinition: WorkflowDefinition | None = None

    @model_validator(mode="after")
    def _needs(self) -> WorkflowRequestBody:
        if self.requestType in ("createWorkflow", "updateWorkflow") and self.workflowDefinition is None:
            raise ValueError(f"workflowDefinition: {self.requestType} needs the workflow's definition")
        if self.requestType in ("getWorkflow", "deleteWorkflow") and not (self.workflowId or self.workflowDefinition):
            raise ValueError(f"workflowId: {self.requestType} needs the id of the workflow")
        return self

    @property
    def workflow_id(self) -> str:
        return str(self.workflowId or self.workflowDefinition.workflowId)  # type: ignore[union-attr]


class WorkflowRequest(Request):
    """A workflow operation for one tenant (the AWS Solution's ``workflowRequest`` envelope)."""

    request_type = "workflowRequest"
    customerId: str = Field(pattern=CUSTOMER_ID_PATTERN)
    workflowRequest: WorkflowRequestBody


class ListWorkflows(Request):
    request_type = "listWorkflows"
    requestType: Literal["listWorkflows"]
    customerId: str = Field(pattern=CUSTOMER_ID_PATTERN)


class ExecutionBody(BaseModel):
    """``createExecutionRequest``: sent to AMC as it is, after its relative dates are resolved. Only what the
    platform relies on is checked; every other field (``ignoreDataGaps``, ``useAsyncValidation``, ...) passes."""

    model_config = ConfigDict(extra="allow", frozen=True)
    workflowId: str | None = Field(None, pattern=WORKFLOW_ID)
    workflow: WorkflowDefinition | None = None
    timeWindowType: Literal[TIME_WINDOW_TYPES] | None = None  # type: ignore[valid-type]
    timeWindowStart: str | None = None
    timeWindowEnd: str | None = None
    timeWindowTimeZone: str | None = None

    @model_validator(mode="after")
    def _one_workflow(self) -> ExecutionBody:
        if (self.workflowId is None) == (self.workflow is None):
            raise ValueError("workflowId: give the id of a saved workflow, or an ad hoc 'workflow', not both")
        if self.timeWindowType == "EXPLICIT" and not (self.timeWindowStart and self.timeWindowEnd):
            raise ValueError("timeWindowStart: an EXPLICIT time window needs timeWindowStart and timeWindowEnd")
        return self

    @field_validator("timeWindowTimeZone")
    @classmethod
    def _zone(cls, zone: str | None) -> str | None:
        if zone is not None:
            schedules.parse("rate(1 day)", zone)  # raises a clear error for an unknown zone
        return zone

    @property
    def workflow_id(self) -> str:
        return str(self.workflowId or self.workflow.workflowId)  # type: ignore[union-attr]

    def to_api(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class CreateExecution(Request):
    """Run a saved or ad hoc workflow; ``scheduleName``/``scheduledTime`` are set by a schedule firing."""

    request_type = "createExecution"
    requestType: Literal["createExecution"]
    customerId: str = Field(pattern=CUSTOMER_ID_PATTERN)
    createExecutionRequest: ExecutionBody
    scheduleName: str | None = Field(None, pattern=scheduler.SCHEDULE_NAME)
    scheduledTime: str | None = Field(None, pattern=scheduler.FIRE_TIME_PATTERN)


class _OneExecution(Request):
    """Cancel and status name the AMC execution; a ``createExecutionRequest`` the AWS Solution insisted on is
    accepted and ignored."""

    customerId: str = Field(pattern=CUSTOMER_ID_PATTERN)
    workflowExecutionId: str = Field(pattern=EXECUTION_ID)
    createExecutionRequest: dict[str, Any] | None = None


class CancelExecution(_OneExecution):
    request_type = "cancelExecution"
    requestType: Literal["cancelExecution"]


class GetExecutionStatus(_OneExecution):
    request_type = "getExecutionStatus"
    requestType: Literal["getExecutionStatus"]


class ListExecutions(Request):
    """The tenant's execution records, newest first: ``status`` filters, ``limit`` caps."""

    request_type = "listExecutions"
    requestType: Literal["listExecutions"]
    customerId: str = Field(pattern=CUSTOMER_ID_PATTERN)
    status: Literal["QUEUED", "PENDING", "RUNNING", "PUBLISHING", "SUCCEEDED", "FAILED", "REJECTED", "CANCELLED",
                    "ERROR"] | None = None
    limit: int = Field(50, ge=1, le=500)


class SyncExecutions(Request):
    """Bring the records up to date with AMC for the last ``days``, executions started elsewhere included."""

    request_type = "syncExecutions"
    requestType: Literal["syncExecutions"]
    customerId: str = Field(pattern=CUSTOMER_ID_PATTERN)
    days: int = Field(1, ge=1, le=90)


class ScheduleRequest(scheduler.PutSchedule):
    """Create or update a schedule that sends ``executionRequest`` to the workflow manager."""

    legacy_fields = ("executionRequest", "execution_request")
    customerId: str = Field(pattern=CUSTOMER_ID_PATTERN)
    executionRequest: CreateExecution

    @model_validator(mode="after")
    def _same_tenant(self) -> ScheduleRequest:
        if self.executionRequest.customerId != self.customerId:
            raise ValueError("executionRequest: its customerId must be the schedule's customerId")
        return self


class UpdateSchedule(ScheduleRequest):
    request_type = "updateSchedule"


class ListSchedules(Request):
    request_type = "listSchedules"
    requestType: Literal["listSchedules"]
    customerId: str = Field(pattern=CUSTOMER_ID_PATTERN)


class Backfill(Request):
    """Executions of one workflow over ``startDate``..``endDate`` (inclusive days, relative dates allowed), one per
    window of ``windowDays``, each with ``createExecutionRequest``'s other fields."""

    request_type = "backfillExecutions"
    requestType: Literal["backfillExecutions"]
    customerId: str = Field(pattern=CUSTOMER_ID_PATTERN)
    startDate: str
    endDate: str
    windowDays: int = Field(1, ge=1, le=366)
    createExecutionRequest: ExecutionBody


class ResubmitBackfill(Request):
    """Run again the windows of backfill ``backfillId`` that did not succeed."""

    request_type = "resubmitBackfill"
    requestType: Literal["resubmitBackfill"]
    customerId: str = Field(pattern=CUSTOMER_ID_PATTERN)
    backfillId: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")


def classify(raw: Mapping[str, Any]) -> str | None:
    """``requestType``; the AWS Solution's workflow requests carry theirs inside ``workflowRequest``, and its
    schedule requests have none (``rule_name``)."""
    if isinstance(raw.get("workflowRequest"), Mapping):
        return WorkflowRequest.request_type
    if legacy := scheduler.classify_rule_name(raw):
        return legacy
    request_type = raw.get("requestType")
    return request_type if isinstance(request_type, str) else None
