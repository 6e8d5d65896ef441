"""EventBridge Scheduler operations that services share: a service that runs requests on a schedule keeps one
Scheduler schedule per request in a schedule group, and creates, updates, pauses and deletes it as its users ask.
Kept here, in one place, so that each service tolerates the same retried calls and writes the same schedule.
The client is passed in, so callers choose how it is built (``shared.aws.client("scheduler")`` in the services).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared import schedules
from shared.aws import error_code

FIRE_TIME = "<aws.scheduler.scheduled-time>"  # Scheduler fills it in when it fires
FIRE_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"  # how it fills it in

# What update_schedule would otherwise reset: it replaces the whole schedule, not the fields it is given.
_KEEP = ("Name", "GroupName", "ScheduleExpression", "ScheduleExpressionTimezone", "Description",
         "FlexibleTimeWindow", "Target", "KmsKeyArn", "StartDate", "EndDate")


def ensure_group(scheduler: Any, group: str) -> str:
    """Groups are created on first use, so one that exists already (made before, or by a retry) is fine. Looked
    up first: moto replaces an existing group, with its schedules, where Scheduler answers ConflictException."""
    try:
        scheduler.get_schedule_group(Name=group)
        return group
    except Exception as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
    try:
        scheduler.create_schedule_group(Name=group)
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
