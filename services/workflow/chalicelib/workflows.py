"""Workflow requests: create (falling back to update when the workflow exists), update, get, delete, list, on
the tenant's AMC instance; every outcome is a notification carrying AMC's own message when it refused. A workflow
that a schedule runs cannot be deleted."""

from __future__ import annotations

from typing import Any

from chalicelib.amc import client_for, tenant_config
from chalicelib.contracts import ListWorkflows, WorkflowRequest
from chalicelib.records import schedules_using, workflow_records
from shared.amazon.amc import Workflow
from shared.amazon.errors import InvalidRequest, NotFound, Unauthorized
from shared.requests import RequestContext
from shared.service import Service
from shared.status import Status

_REFUSALS = (InvalidRequest, NotFound, Unauthorized)  # AMC said no: retrying would not change its answer


def handle(request: WorkflowRequest, ctx: RequestContext, service: Service) -> None:
    body, records = request.workflowRequest, workflow_records()
    client = client_for(tenant_config(request.customerId))
    operation, workflow_id = body.requestType, body.workflow_id
    if operation == "deleteWorkflow" and (users := schedules_using(records, request.customerId, workflow_id)):
        service.answer(ctx, request.customerId, Status.FAILED,
                       f"workflow {workflow_id} is run by schedules {', '.join(users)}: delete those schedules or "
                       "point them at another workflow first", {"workflowId": workflow_id, "schedules": users},
                       request_type=operation)
        return
    try:
        summary, details = _run(client, operation, workflow_id, body.workflowDefinition)
    except _REFUSALS as refusal:
        service.answer(ctx, request.customerId, Status.FAILED, f"{operation} {workflow_id} refused by AMC: "
                       f"{refusal.detail}", {"workflowId": workflow_id, "amcStatus": refusal.status,
                                             "amcCode": refusal.code}, request_type=operation)
        return
    if operation == "deleteWorkflow":
        records.delete(request.customerId, "workflow", workflow_id)
    elif operation != "getWorkflow":
        records.put(request.customerId, "workflow", workflow_id, workflowId=workflow_id)
    service.answer(ctx, request.customerId, Status.SUCCEEDED, summary, {"workflowId": workflow_id, **details},
                   request_type=operation)


def list_all(request: ListWorkflows, ctx: RequestContext, service: Service) -> None:
    workflows = [w.workflow_id for w in client_for(tenant_config(request.customerId)).list_workflows()]
    service.answer(ctx, request.customerId, Status.SUCCEEDED, f"{len(workflows)} workflows", {"workflows": workflows})


def _run(client: Any, operation: str, workflow_id: str, definition: Any) -> tuple[str, dict[str, Any]]:
    if operation == "createWorkflow":
        written = client.create_or_update_workflow(Workflow.from_api(definition.model_dump()))
        return f"workflow {workflow_id} {written.lower()}", {"written": str(written)}
    if operation == "updateWorkflow":
        client.update_workflow(Workflow.from_api(definition.model_dump()))
        return f"workflow {workflow_id} updated", {}
    if operation == "getWorkflow":
        return f"workflow {workflow_id}", {"workflowDefinition": client.get_workflow(workflow_id).to_api()}
    client.delete_workflow(workflow_id, missing_ok=True)
    return f"workflow {workflow_id} deleted", {}
