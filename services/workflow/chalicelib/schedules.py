"""Schedules: one EventBridge Scheduler schedule per workflow schedule, in the tenant's schedule group, whose
target sends the stored execution request to the workflow request queue. The request carries the schedule's name
and Scheduler's fire time, so relative dates resolve at fire time and a fire delivered twice runs once.

The AWS Solution's ``rule_name`` payloads are accepted (``contracts.py``); a delete by name alone finds the
schedule among the tenants' groups.
"""

from __future__ import annotations

from chalicelib.amc import tenant_config
from chalicelib.contracts import ListSchedules, ScheduleRequest
from chalicelib.records import workflow_records
from shared import aws, scheduler
from shared.config import require
from shared.contracts import ContractError, FieldError
from shared.requests import RequestContext
from shared.service import Service
from shared.status import Status


def put(request: ScheduleRequest, ctx: RequestContext, service: Service) -> None:
    """Create or update (a create of an existing name updates it, as the AWS Solution's ``put_rule`` did)."""
    client = aws.client("scheduler")
    group = scheduler.ensure_group(client, tenant_config(request.customerId)["scheduleGroup"], {
        "amci:stage": require("STAGE"), "amci:component": "workflow", "amci:tenant": request.customerId})
    execution = request.executionRequest.model_dump(exclude_none=True, exclude={"requestId"})
    written = scheduler.put_schedule(
        client, group=group, name=request.scheduleName, expression=request.scheduleExpression,
        timezone=request.timezone, description=request.description, enabled=request.enabled,
        target_arn=require("WORKFLOW_REQUEST_QUEUE_ARN"), role_arn=require("SCHEDULER_ROLE_ARN"),
        kms_key_arn=require("PLATFORM_KEY_ALIAS_ARN"),
        payload={**execution, "scheduleName": request.scheduleName, "scheduledTime": scheduler.FIRE_TIME})
    workflow_id = request.executionRequest.createExecutionRequest.workflow_id
    workflow_records().put(request.customerId, "schedule", request.scheduleName, scheduleName=request.scheduleName,
                         workflowId=workflow_id, scheduleExpression=request.scheduleExpression,
                         timezone=request.timezone, enabled=request.enabled, groupName=group)
    service.answer(ctx, request.customerId, Status.SUCCEEDED,
                   f"schedule {request.scheduleName} {written}: {request.scheduleExpression} ({request.timezone}), "
                   f"next run {scheduler.next_run(request.scheduleExpression, request.timezone, request.enabled)}",
                   {"scheduleName": request.scheduleName, "workflowId": workflow_id, "written": written})


def delete(request: scheduler.NamedSchedule, ctx: RequestContext, service: Service) -> None:
    customer_id, group = _locate(request)
    scheduler.delete_schedule(aws.client("scheduler"), group, request.scheduleName)
    workflow_records().delete(customer_id, "schedule", request.scheduleName)
    service.answer(ctx, customer_id, Status.SUCCEEDED, f"schedule {request.scheduleName} deleted",
                   {"scheduleName": request.scheduleName})


def set_state(request: scheduler.NamedSchedule, ctx: RequestContext, service: Service) -> None:
    """Enable or disable, keeping everything else of the schedule as it is."""
    customer_id, group = _locate(request)
    enabled = request.requestType == "enableSchedule"
    records = workflow_records()
    record = records.get(customer_id, "schedule", request.scheduleName)
    if record is None:  # not this tenant's: another tenant's schedule of that name stays untouched
        raise ContractError(request.requestType, [FieldError(
            "scheduleName", f"a schedule of tenant {customer_id} (see listSchedules)", request.scheduleName)])
    scheduler.set_state(aws.client("scheduler"), group, request.scheduleName, enabled)
    records.put(customer_id, "schedule", request.scheduleName, **{
        **{k: v for k, v in record.items() if k not in ("customerId", "recordId", "updatedAt")}, "enabled": enabled})
    service.answer(ctx, customer_id, Status.SUCCEEDED,
                   f"schedule {request.scheduleName} {'enabled' if enabled else 'disabled'}",
                   {"scheduleName": request.scheduleName, "enabled": enabled})


def list_all(request: ListSchedules, ctx: RequestContext, service: Service) -> None:
    tenant_config(request.customerId)  # an unknown tenant is refused, as by every other request
    found = [{"scheduleName": s["scheduleName"], "workflowId": s.get("workflowId"),
              "scheduleExpression": s["scheduleExpression"], "timezone": s["timezone"], "enabled": s["enabled"],
              "nextRun": scheduler.next_run(s["scheduleExpression"], s["timezone"], s["enabled"])}
             for s in workflow_records().all(request.customerId, "schedule#")]
    service.answer(ctx, request.customerId, Status.SUCCEEDED, f"{len(found)} schedules", {"schedules": found})


def _locate(request: scheduler.NamedSchedule) -> tuple[str, str]:
    """The tenant and group of the schedule; by name among the platform's tenant groups when no tenant is given."""
    if request.customerId:
        return request.customerId, tenant_config(request.customerId)["scheduleGroup"]
    prefix = f"amci-{require('STAGE')}-"
    groups = scheduler.find_group(aws.client("scheduler"), request.scheduleName, prefix)
    if len(groups) != 1:
        expected = "the tenant: several tenants have a schedule of that name" if groups else \
            "the tenant of an existing schedule: no tenant has a schedule of that name"
        raise ContractError(request.requestType, [FieldError("customerId", expected, request.scheduleName)])
    return groups[0].removeprefix(prefix), groups[0]
