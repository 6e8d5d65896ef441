"""Workflow requests: create (falling back to update when the workflow exists), update, get, delete, list, on
the tenant's AMC instance; every outcome is a notification carrying AMC's own message when it refused."""

from __future__ import annotations

from typing import Any

from chalicelib.amc import client_for, tenant_config, tenants_table
from chalicelib.contracts import ListWorkflows, WorkflowRequest
from shared.amazon.amc import Workflow
from shared.amazon.errors import InvalidRequest, NotFound, Unauthorized
from shared.amazon.lwa import TokenProvider
from shared.requests import RequestContext
from shared.service import Service
from shared.status import Status, StatusMessage

_TOKENS: dict[str, TokenProvider] = {}  # per authId, for the life of the container: tokens are reused
_REFUSALS = (InvalidRequest, NotFound, Unauthorized)  # AMC said no: retrying would not change its answer


def handle(request: WorkflowRequest, ctx: RequestContext, service: Service) -> None:
    body = request.workflowRequest
    client = client_for(tenant_config(request.customerId, tenants_table()), _TOKENS)
    operation, workflow_id = body.requestType, body.workflow_id
    try:
        summary, details = _run(client, operation, workflow_id, body.workflowDefinition)
    except _REFUSALS as refusal:
        _publish(service, ctx, request.customerId, operation, Status.FAILED,
                 f"{operation} {workflow_id} refused by AMC: {refusal.detail}",
                 {"workflowId": workflow_id, "amcStatus": refusal.status, "amcCode": refusal.code})
        return
    _publish(service, ctx, request.customerId, operation, Status.SUCCEEDED, summary, {"workflowId": workflow_id,
                                                                                      **details})


def list_all(request: ListWorkflows, ctx: RequestContext, service: Service) -> None:
    client = client_for(tenant_config(request.customerId, tenants_table()), _TOKENS)
    workflows = [w.workflow_id for w in client.list_workflows()]
    _publish(service, ctx, request.customerId, ctx.request_type, Status.SUCCEEDED,
             f"{len(workflows)} workflows", {"workflows": workflows})


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


def _publish(service: Service, ctx: RequestContext, tenant: str, operation: str, status: Status, summary: str,
             details: dict[str, Any]) -> None:
    service.publisher.publish(StatusMessage(service=ctx.service, request_type=operation, status=status,
                                            tenant_id=tenant, request_id=ctx.request_id, summary=summary,
                                            details=details))
