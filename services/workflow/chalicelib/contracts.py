"""The workflow manager's workflow requests, in the AWS Solution's shape unchanged:
``{"customerId": ..., "workflowRequest": {"requestType": "createWorkflow", "workflowDefinition": {...}}}``, and
``listWorkflows`` which it lacked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts import Request

CUSTOMER_ID = r"^[a-z][a-z0-9-]{1,29}$"
WORKFLOW_ID = r"^[A-Za-z0-9._-]{1,128}$"  # AMC: alphanumerics, '.', '-', '_'; no spaces
WORKFLOW_REQUESTS = ("createWorkflow", "updateWorkflow", "getWorkflow", "deleteWorkflow")


class WorkflowDefinition(BaseModel):
    """Passed to AMC as it is; only what the platform relies on is checked."""

    model_config = ConfigDict(extra="allow", frozen=True)
    workflowId: str = Field(pattern=WORKFLOW_ID)
    sqlQuery: str = Field(min_length=1)


class WorkflowRequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    customerId: str | None = Field(None, pattern=CUSTOMER_ID)
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
    customerId: str = Field(pattern=CUSTOMER_ID)
    workflowRequest: WorkflowRequestBody


class ListWorkflows(Request):
    request_type = "listWorkflows"
    requestType: Literal["listWorkflows"]
    customerId: str = Field(pattern=CUSTOMER_ID)


def classify(raw: Mapping[str, Any]) -> str | None:
    """``requestType``; the AWS Solution's workflow requests carry theirs inside ``workflowRequest``."""
    if isinstance(raw.get("workflowRequest"), Mapping):
        return WorkflowRequest.request_type
    request_type = raw.get("requestType")
    return request_type if isinstance(request_type, str) else None
