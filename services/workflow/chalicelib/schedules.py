"""Schedules: one EventBridge Scheduler schedule per workflow schedule, in the tenant's schedule group, whose
target sends the stored execution request to the workflow request queue. The request carries the schedule's name
and Scheduler's fire time, so relative dates resolve at fire time and a fire delivered twice runs once.

The AWS Solution's ``rule_name`` payloads are accepted (``contracts.py``); a delete by name alone finds the
schedule among the tenants' groups.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from chalicelib.amc import tenant_config
from chalicelib.contracts import ListSchedules, NamedSchedule, ScheduleRequest
from chalicelib.records import Records, table
from shared import aws, schedules
from shared.aws import error_code
from shared.config import require
from shared.contracts import ContractError, FieldError
from shared.requests import RequestContext
from shared.service import Service
from shared.status import Status

FIRE_TIME = "<aws.scheduler.scheduled-time>"  # Scheduler fills it in when it fires


def put(request: ScheduleRequest, ctx: RequestContext, service: Service) -> None:
    """Create or update (a create of an existing name updates it, as the AWS Solution's ``put_rule`` did)."""
    group = _ensure_group(tenant_config(request.customerId)["scheduleGroup"])
    execution = request.executionRequest.model_dump(exclude_none=True, exclude={"requestId"})
    spec = {"Name": request.scheduleName, "GroupName": group,
            "ScheduleExpression": schedules.translate(request.scheduleExpression),
            "ScheduleExpressionTimezone": request.timezone, "Description": request.description,
            "State": "ENABLED" if request.enabled else "DISABLED", "FlexibleTimeWindow": {"Mode": "OFF"},
            "KmsKeyArn": require("PLATFORM_KEY_ALIAS_ARN"),
            "Target": {"Arn": require("WORKFLOW_REQUEST_QUEUE_ARN"), "RoleArn": require("SCHEDULER_ROLE_ARN"),
                       "Input": json.dumps({**execution, "scheduleName": request.scheduleName,
                                            "scheduledTime": FIRE_TIME})}}
    scheduler = aws.client("scheduler")
    try:
        scheduler.create_schedule(**spec)
        written = "created"
    except Exception as exc:
        if error_code(exc) != "ConflictException":
            raise
        scheduler.update_schedule(**spec)
        written = "updated"
    workflow_id = request.executionRequest.createExecutionRequest.workflow_id
    Records(table()).put(request.customerId, "schedule", request.scheduleName, scheduleName=request.scheduleName,
                         workflowId=workflow_id, scheduleExpression=request.scheduleExpression,
                         timezone=request.timezone, enabled=request.enabled, groupName=group)
    service.answer(ctx, request.customerId, Status.SUCCEEDED,
                   f"schedule {request.scheduleName} {written}: {request.scheduleExpression} ({request.timezone}), "
                   f"next run {_next_run(request.scheduleExpression, request.timezone, request.enabled)}",
                   {"scheduleName": request.scheduleName, "workflowId": workflow_id, "written": written})


def delete(request: NamedSchedule, ctx: RequestContext, service: Service) -> None:
    customer_id, group = _locate(request)
    try:
        aws.client("scheduler").delete_schedule(Name=request.scheduleName, GroupName=group)
    except Exception as exc:
        if error_code(exc) != "ResourceNotFoundException":  # deleted before: a retried delete is done
            raise
    Records(table()).delete(customer_id, "schedule", request.scheduleName)
    service.answer(ctx, customer_id, Status.SUCCEEDED, f"schedule {request.scheduleName} deleted",
                   {"scheduleName": request.scheduleName})


def set_state(request: NamedSchedule, ctx: RequestContext, service: Service) -> None:
    """Enable or disable, keeping everything else of the schedule as it is."""
    customer_id, group = _locate(request)
    scheduler, enabled = aws.client("scheduler"), request.requestType == "enableSchedule"
    current = scheduler.get_schedule(Name=request.scheduleName, GroupName=group)
    keep = ("Name", "GroupName", "ScheduleExpression", "ScheduleExpressionTimezone", "Description",
            "FlexibleTimeWindow", "Target", "KmsKeyArn", "StartDate", "EndDate")
    scheduler.update_schedule(**{k: current[k] for k in keep if current.get(k) is not None},
                              State="ENABLED" if enabled else "DISABLED")
    records = Records(table())
    record = records.get(customer_id, "schedule", request.scheduleName) or {}
    records.put(customer_id, "schedule", request.scheduleName, **{
        **{k: v for k, v in record.items() if k not in ("customerId", "recordId", "updatedAt")}, "enabled": enabled})
    service.answer(ctx, customer_id, Status.SUCCEEDED,
                   f"schedule {request.scheduleName} {'enabled' if enabled else 'disabled'}",
                   {"scheduleName": request.scheduleName, "enabled": enabled})


def list_all(request: ListSchedules, ctx: RequestContext, service: Service) -> None:
    found = [{"scheduleName": s["scheduleName"], "workflowId": s.get("workflowId"),
              "scheduleExpression": s["scheduleExpression"], "timezone": s["timezone"], "enabled": s["enabled"],
              "nextRun": _next_run(s["scheduleExpression"], s["timezone"], s["enabled"])}
             for s in Records(table()).all(request.customerId, "schedule#")]
    service.answer(ctx, request.customerId, Status.SUCCEEDED, f"{len(found)} schedules", {"schedules": found})


def _locate(request: NamedSchedule) -> tuple[str, str]:
    """The tenant and group of the schedule; by name among the platform's tenant groups when no tenant is given."""
    if request.customerId:
        return request.customerId, tenant_config(request.customerId)["scheduleGroup"]
    prefix = f"amci-{require('STAGE')}-"
    pages = aws.client("scheduler").get_paginator("list_schedules").paginate(NamePrefix=request.scheduleName)
    groups = sorted({s["GroupName"] for page in pages for s in page["Schedules"]
                     if s["Name"] == request.scheduleName and s["GroupName"].startswith(prefix)})
    if len(groups) != 1:
        expected = "the tenant: several tenants have a schedule of that name" if groups else \
            "the tenant of an existing schedule: no tenant has a schedule of that name"
        raise ContractError(request.requestType, [FieldError("customerId", expected, request.scheduleName)])
    return groups[0].removeprefix(prefix), groups[0]


def _ensure_group(group: str) -> str:
    """The tenant's schedule group, created on first use (offboarding deletes it with its schedules)."""
    try:
        aws.client("scheduler").create_schedule_group(Name=group)
    except Exception as exc:
        if error_code(exc) != "ConflictException":
            raise
    return group


def _next_run(expression: str, timezone: str, enabled: Any) -> str:
    if not enabled:
        return "never (disabled)"
    following = schedules.parse(expression, timezone).next_after(datetime.now(UTC))
    return following.isoformat(timespec="minutes") if following else "never"
