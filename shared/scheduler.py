"""EventBridge Scheduler operations that services share: a service that runs requests on a schedule keeps one
Scheduler schedule per request in a schedule group, and creates, updates, pauses and deletes it as its users ask.
Kept here, in one place, so that each service tolerates the same retried calls and writes the same schedule.
The client is passed in, so callers choose how it is built (``shared.aws.client("scheduler")`` in the services).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from shared import schedules
from shared.aws import error_code
from shared.contracts import CUSTOMER_ID_PATTERN, Request

FIRE_TIME = "<aws.scheduler.scheduled-time>"  # Scheduler fills it in when it fires
FIRE_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"  # how it fills it in
SCHEDULE_NAME = r"^[A-Za-z0-9_.-]{1,40}$"

# What update_schedule would otherwise reset: it replaces the whole schedule, not the fields it is given.
_KEEP = ("Name", "GroupName", "ScheduleExpression", "ScheduleExpressionTimezone", "Description",
         "FlexibleTimeWindow", "Target", "KmsKeyArn", "StartDate", "EndDate")


def ensure_group(scheduler: Any, group: str, tags: Mapping[str, str]) -> str:
    """Groups are created on first use (with ``tags``, for cost allocation), so one that exists already (made
    before, or by a retry) is fine. Looked up first: moto replaces an existing group, with its schedules, where
    Scheduler answers ConflictException."""
    try:
        scheduler.get_schedule_group(Name=group)
        return group
    except Exception as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
    try:
        scheduler.create_schedule_group(Name=group, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    except Exception as exc:
        if error_code(exc) != "ConflictException":
            raise
    return group


def fired_at(scheduled_time: str | None) -> datetime:
    """When a scheduled request was due (its ``scheduledTime``), else now: relative dates resolve at that time."""
    if scheduled_time is None:
        return datetime.now(UTC)
    return datetime.strptime(scheduled_time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def request_key(request_id: str, schedule_name: str | None, scheduled_time: str | None,
                sender_id: str | None) -> str:
    """A request's idempotency key: a schedule's fire is named by its schedule and fire time, so a fire delivered
    twice runs once; any other request by its id (``request_id``: the sender's, else the message's)."""
    if schedule_name and scheduled_time and not sender_id:
        return f"{schedule_name}-{scheduled_time.replace('-', '').replace(':', '')}"
    return request_id


def put_schedule(scheduler: Any, *, group: str, name: str, expression: str, timezone: str, description: str,
                 enabled: bool, target_arn: str, role_arn: str, kms_key_arn: str, payload: Mapping[str, Any]) -> str:
    """A create of an existing name updates it (as the AWS Solution's ``put_rule`` did), so a retried request
    and a changed schedule are written alike; returns ``"created"`` or ``"updated"``."""
    spec = {"Name": name, "GroupName": group, "ScheduleExpression": schedules.translate(expression),
            "ScheduleExpressionTimezone": timezone, "Description": description,
            "State": "ENABLED" if enabled else "DISABLED", "FlexibleTimeWindow": {"Mode": "OFF"},
            "KmsKeyArn": kms_key_arn,
            "Target": {"Arn": target_arn, "RoleArn": role_arn, "Input": json.dumps(payload)}}
    try:
        scheduler.create_schedule(**spec)
        return "created"
    except Exception as exc:
        if error_code(exc) != "ConflictException":
            raise
    scheduler.update_schedule(**spec)
    return "updated"


def delete_schedule(scheduler: Any, group: str, name: str) -> None:
    """A schedule already gone was deleted before: a retried delete is done."""
    try:
        scheduler.delete_schedule(Name=name, GroupName=group)
    except Exception as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise


def set_state(scheduler: Any, group: str, name: str, enabled: bool) -> None:
    """Enable or disable, keeping everything else of the schedule as it is (an update replaces all of it)."""
    current = scheduler.get_schedule(Name=name, GroupName=group)
    scheduler.update_schedule(**{k: current[k] for k in _KEEP if current.get(k) is not None},
                              State="ENABLED" if enabled else "DISABLED")


def next_run(expression: str, timezone: str, enabled: Any) -> str:
    """When the schedule fires next, for people to read in answers and listings."""
    if not enabled:
        return "never (disabled)"
    following = schedules.parse(expression, timezone).next_after(datetime.now(UTC))
    return following.isoformat(timespec="minutes") if following else "never"


def find_group(scheduler: Any, name: str, group_prefix: str) -> list[str]:
    """The groups under ``group_prefix`` holding a schedule called ``name``, for requests that name a schedule
    but not its group; the caller decides what none or several mean."""
    pages = scheduler.get_paginator("list_schedules").paginate(NamePrefix=name)
    return sorted({s["GroupName"] for page in pages for s in page["Schedules"]
                   if s["Name"] == name and s["GroupName"].startswith(group_prefix)})


# -- the schedule requests every scheduling service answers ----------------------------------------------------


def from_rule_name(raw: Any, request_field: str, legacy_field: str, with_tenant: bool) -> Any:
    """The AWS Solution's schedule payloads in this shape: ``{legacy_field, "schedule_expression", "rule_name",
    "rule_description", "state"}`` creates, ``{"rule_name"}`` deletes; the request's ``customerId`` becomes the
    schedule's when ``with_tenant``. Anything else is returned as it is."""
    if not isinstance(raw, Mapping) or "rule_name" not in raw or "requestType" in raw:
        return raw
    kept = {k: raw[k] for k in ("requestId",) if k in raw}
    if "schedule_expression" not in raw:
        return {"requestType": "deleteSchedule", "scheduleName": raw.get("rule_name"), **kept}
    request = raw.get(legacy_field)
    tenant = request.get("customerId") if with_tenant and isinstance(request, Mapping) else None
    return {"requestType": "createSchedule", "scheduleName": raw.get("rule_name"),
            "scheduleExpression": raw.get("schedule_expression"), request_field: request,
            "description": raw.get("rule_description") or "", "enabled": raw.get("state", "ENABLED") != "DISABLED",
            **({"customerId": tenant} if tenant else {}), **kept}


class PutSchedule(Request):
    """Create or update a schedule. A subclass adds the request it sends, ``legacy_fields`` naming that field and
    the AWS Solution's name for it (e.g. ``("reportRequest", "report_request")``)."""

    request_type = "createSchedule"
    legacy_fields: ClassVar[tuple[str, str]]
    requestType: Literal["createSchedule", "updateSchedule"]
    scheduleName: str = Field(pattern=SCHEDULE_NAME)
    scheduleExpression: str = Field(min_length=1, max_length=256)
    timezone: str = "UTC"
    description: str = Field("", max_length=512)
    enabled: bool = True

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, raw: Any) -> Any:
        return from_rule_name(raw, *cls.legacy_fields, with_tenant="customerId" in cls.model_fields)

    @model_validator(mode="after")
    def _expression(self) -> PutSchedule:
        try:
            schedules.parse(self.scheduleExpression, self.timezone)
        except schedules.ScheduleError as exc:
            raise ValueError(f"scheduleExpression: {exc}") from None
        return self


class NamedSchedule(Request):
    """Delete, enable or disable a schedule (``{"rule_name"}``, the AWS Solution's delete, is accepted). A request
    naming ``customerId`` reaches only that tenant's schedules; the AWS Solution's names none."""

    request_type = "deleteSchedule"
    requestType: Literal["deleteSchedule", "enableSchedule", "disableSchedule"]
    scheduleName: str = Field(pattern=SCHEDULE_NAME)
    customerId: str | None = Field(None, pattern=CUSTOMER_ID_PATTERN)

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, raw: Any) -> Any:
        return from_rule_name(raw, "", "", with_tenant=False)


class EnableSchedule(NamedSchedule):
    request_type = "enableSchedule"


class DisableSchedule(NamedSchedule):
    request_type = "disableSchedule"


def classify_rule_name(raw: Mapping[str, Any]) -> str | None:
    """The request type of the AWS Solution's schedule payloads, which have none; None for other requests."""
    if "rule_name" not in raw or "requestType" in raw:
        return None
    return PutSchedule.request_type if "schedule_expression" in raw else NamedSchedule.request_type
