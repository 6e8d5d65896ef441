"""The shared EventBridge Scheduler operations against moto's Scheduler, in-process (no local cloud needed).

The tests use their own region and groups: when the local cloud runs in the same process, moto's account is
shared, and its scheduler only fires schedules of its own region with SQS targets.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from shared import scheduler
from shared.aws import error_code

REGION = "eu-west-2"  # not the local cloud's
TAGS = {"amci:stage": "test"}
TARGET = f"arn:aws:lambda:{REGION}:123456789012:function:target"  # not SQS: the local cloud never fires it
ROLE = "arn:aws:iam::123456789012:role/scheduler"
KEY = f"arn:aws:kms:{REGION}:123456789012:alias/platform"


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("scheduler", region_name=REGION)


@pytest.fixture
def group(client: Any) -> str:
    return scheduler.ensure_group(client, f"test-{uuid.uuid4().hex[:8]}", TAGS)


def _put(client: Any, group: str, name: str = "nightly", **changes: Any) -> str:
    fields: dict[str, Any] = {"expression": "cron(0 6 * * ? *)", "timezone": "Europe/Berlin",
                              "description": "every morning", "enabled": True,
                              "payload": {"workflowId": "top", "scheduledTime": scheduler.FIRE_TIME}}
    return scheduler.put_schedule(client, group=group, name=name, target_arn=TARGET, role_arn=ROLE, kms_key_arn=KEY,
                                  **{**fields, **changes})


def test_a_put_creates_and_a_second_put_of_the_name_updates(client: Any, group: str) -> None:
    first = _put(client, group)
    second = _put(client, group, expression="rate(2 hours)", timezone="UTC", payload={"workflowId": "other"})

    stored = client.get_schedule(Name="nightly", GroupName=group)
    assert (first, second) == ("created", "updated")
    assert stored["ScheduleExpression"] == "rate(2 hours)" and stored["ScheduleExpressionTimezone"] == "UTC"
    assert stored["FlexibleTimeWindow"] == {"Mode": "OFF"} and stored["State"] == "ENABLED"
    assert stored["KmsKeyArn"] == KEY and stored["Description"] == "every morning"
    assert stored["Target"]["Arn"] == TARGET and stored["Target"]["RoleArn"] == ROLE
    assert json.loads(stored["Target"]["Input"]) == {"workflowId": "other"}
    assert [s["Name"] for s in client.list_schedules(GroupName=group)["Schedules"]] == ["nightly"]


def test_the_fire_time_placeholder_is_stored_for_scheduler_to_fill_in(client: Any, group: str) -> None:
    _put(client, group, enabled=False)

    stored = client.get_schedule(Name="nightly", GroupName=group)
    assert json.loads(stored["Target"]["Input"])["scheduledTime"] == "<aws.scheduler.scheduled-time>"
    assert stored["State"] == "DISABLED"


def test_a_custom_expression_is_stored_as_cron(client: Any, group: str) -> None:
    _put(client, group, expression="custom(W 0 9)")  # Mondays at 09:00 UTC

    assert client.get_schedule(Name="nightly", GroupName=group)["ScheduleExpression"] == "cron(0 9 ? * 2 *)"


def test_a_delete_repeated_is_done(client: Any, group: str) -> None:
    _put(client, group)

    scheduler.delete_schedule(client, group, "nightly")
    scheduler.delete_schedule(client, group, "nightly")

    with pytest.raises(ClientError) as gone:
        client.get_schedule(Name="nightly", GroupName=group)
    assert error_code(gone.value) == "ResourceNotFoundException"


def test_set_state_flips_the_state_and_keeps_the_rest(client: Any, group: str) -> None:
    _put(client, group, expression="custom(D 30 6)", payload={"workflowId": "top", "n": 1})
    before = client.get_schedule(Name="nightly", GroupName=group)

    scheduler.set_state(client, group, "nightly", False)
    disabled = client.get_schedule(Name="nightly", GroupName=group)
    scheduler.set_state(client, group, "nightly", True)
    enabled = client.get_schedule(Name="nightly", GroupName=group)

    assert (before["State"], disabled["State"], enabled["State"]) == ("ENABLED", "DISABLED", "ENABLED")
    kept = ("ScheduleExpression", "ScheduleExpressionTimezone", "Description", "FlexibleTimeWindow", "Target",
            "KmsKeyArn")
    assert {k: disabled[k] for k in kept} == {k: before[k] for k in kept} == {k: enabled[k] for k in kept}
    assert json.loads(disabled["Target"]["Input"]) == {"workflowId": "top", "n": 1}
    assert disabled["ScheduleExpression"] == "cron(0 6 * * ? *)"


def test_find_group_finds_the_groups_under_the_prefix_that_hold_the_name(client: Any) -> None:
    prefix = f"amci-test-{uuid.uuid4().hex[:6]}-"
    for group, name in [("b", "nightly"), ("a", "nightly"), ("c", "nightly-2"), ("d", "weekly")]:
        _put(client, scheduler.ensure_group(client, prefix + group, TAGS), name=name)
    _put(client, scheduler.ensure_group(client, f"elsewhere-{uuid.uuid4().hex[:6]}", TAGS), name="weekly")

    assert scheduler.find_group(client, "nightly", prefix) == [prefix + "a", prefix + "b"]
    assert scheduler.find_group(client, "weekly", prefix) == [prefix + "d"]
    assert scheduler.find_group(client, "monthly", prefix) == []


def test_ensure_group_twice_returns_the_group_each_time_made_with_its_tags(client: Any) -> None:
    name = f"test-{uuid.uuid4().hex[:8]}"

    assert scheduler.ensure_group(client, name, TAGS) == scheduler.ensure_group(client, name, TAGS) == name
    made = client.get_schedule_group(Name=name)
    assert made["Name"] == name
    assert client.list_tags_for_resource(ResourceArn=made["Arn"])["Tags"] == [{"Key": "amci:stage", "Value": "test"}]


def test_ensuring_an_existing_group_keeps_its_schedules(client: Any, group: str) -> None:
    _put(client, group)

    assert scheduler.ensure_group(client, group, TAGS) == group  # moto would replace the group if it were created again
    assert [s["Name"] for s in client.list_schedules(GroupName=group)["Schedules"]] == ["nightly"]


def test_next_run_says_when_or_why_never() -> None:
    assert scheduler.next_run("rate(5 minutes)", "UTC", False) == "never (disabled)"
    assert scheduler.next_run("at(2020-01-01T00:00:00)", "UTC", True) == "never"
    assert scheduler.next_run("at(2099-01-01T09:30:00)", "Europe/Paris", True) == "2099-01-01T08:30+00:00"
