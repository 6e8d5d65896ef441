"""Schedules, backfills and sync in the workflow manager: EventBridge Scheduler schedules that fire by themselves
(the test cloud's clock runs 60x), windows metered by the concurrency gate, and executions started outside."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from amci.inbox import Inbox
from local.cloud import LocalCloud
from shared import aws
from shared.amazon.amc import AmcClient
from shared.amazon.http import AmazonHttp
from shared.amazon.lwa import BearerAuth, CredentialStore, TokenProvider
from shared.amazon.regions import Endpoints, marketplace_region
from tests.support import (
    amc_creates,
    amc_tenant,
    ask,
    execution_outcome,
    execution_request,
    execution_runs,
    queue_idle,
    queued_at_amc,
    send,
    wait_until,
)


def _schedule(customer: str, name: str, expression: str, **fields: Any) -> dict[str, Any]:
    return {"requestType": "createSchedule", "customerId": customer, "scheduleName": name,
            "scheduleExpression": expression, "executionRequest": execution_request(customer), **fields}


def _scheduled_runs(inbox: Inbox, customer: str, name: str) -> list[Any]:
    return [n for n in inbox.drain() if n.attributes["tenantId"] == customer
            and n.attributes["requestType"] == "createExecution" and n.body["details"].get("scheduleName") == name]


def test_a_schedule_fires_by_itself_and_is_managed(cloud: LocalCloud, inbox: Inbox, fast_amc: None) -> None:
    customer, _ = amc_tenant(cloud, inbox)

    created = ask(cloud, inbox, "workflow", _schedule(customer, "every-5", "rate(5 minutes)",
                                                      timezone="Europe/Berlin"))
    run = wait_until(lambda: _scheduled_runs(inbox, customer, "every-5"), 120)[0]
    disabled = ask(cloud, inbox, "workflow", {"requestType": "disableSchedule", "customerId": customer,
                                              "scheduleName": "every-5"})
    listed = ask(cloud, inbox, "workflow", {"requestType": "listSchedules", "customerId": customer})
    group = aws.client("scheduler").get_schedule(Name="every-5", GroupName=f"amci-local-{customer}")
    tags = aws.client("scheduler").list_tags_for_resource(
        ResourceArn=aws.client("scheduler").get_schedule_group(Name=f"amci-local-{customer}")["Arn"])["Tags"]
    deleted = ask(cloud, inbox, "workflow", {"requestType": "deleteSchedule", "customerId": customer,
                                             "scheduleName": "every-5"})

    assert created.attributes["status"] == "SUCCEEDED", created.body["summary"]
    assert run.attributes["status"] == "SUCCEEDED", run.body["summary"]
    assert disabled.attributes["status"] == "SUCCEEDED" and group["State"] == "DISABLED"
    assert sorted((t["Key"], t["Value"]) for t in tags) == [  # cost allocation, as the stacks' resources
        ("amci:component", "workflow"), ("amci:stage", "local"), ("amci:tenant", customer)]
    assert group["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert json.loads(group["Target"]["Input"])["scheduledTime"] == "<aws.scheduler.scheduled-time>"
    assert listed.body["details"]["schedules"] == [{
        "scheduleName": "every-5", "workflowId": "top", "scheduleExpression": "rate(5 minutes)",
        "timezone": "Europe/Berlin", "enabled": False, "nextRun": "never (disabled)"}]
    assert deleted.attributes["status"] == "SUCCEEDED"
    assert aws.client("scheduler").list_schedules(GroupName=f"amci-local-{customer}")["Schedules"] == []


def test_a_fire_delivered_twice_runs_once(cloud: LocalCloud, inbox: Inbox, fast_amc: None) -> None:
    customer, instance = amc_tenant(cloud, inbox)
    fired = {**execution_request(customer), "scheduleName": "nightly", "scheduledTime": "2026-11-27T06:00:00Z"}

    for _ in range(2):  # as Scheduler sends it: no requestId
        aws.client("sqs").send_message(QueueUrl=cloud.request_queue_url("workflow"), MessageBody=json.dumps(fired))
    note = execution_outcome(inbox, "nightly-20261127T060000Z")

    wait_until(lambda: queue_idle(cloud.request_queue_url("workflow")), 30)  # both copies handled

    sent = [r.body for r in amc_creates(cloud, instance)]
    assert note.attributes["status"] == "SUCCEEDED" and len(sent) == 1
    assert len(execution_runs(cloud, customer)) == 1  # so no second execution can still come
    assert sent[0]["timeWindowStart"] == "2026-11-25T00:00:00"  # TODAY(-2) at the fire time in New York


def test_the_aws_solutions_schedule_payloads_and_custom_expressions(cloud: LocalCloud, inbox: Inbox) -> None:
    customer, _ = amc_tenant(cloud, inbox)
    name = f"legacy-{uuid.uuid4().hex[:6]}"

    created = ask(cloud, inbox, "workflow", {"execution_request": execution_request(customer),
                                             "schedule_expression": "custom(W 0 9)", "rule_name": name,
                                             "rule_description": "Mondays at 09:00 UTC"})
    stored = aws.client("scheduler").get_schedule(Name=name, GroupName=f"amci-local-{customer}")
    refused = ask(cloud, inbox, "workflow", {"customerId": customer, "workflowRequest": {
        "requestType": "deleteWorkflow", "workflowId": "top"}})
    deleted = ask(cloud, inbox, "workflow", {"rule_name": name})

    assert created.attributes["status"] == "SUCCEEDED", created.body["summary"]
    assert stored["ScheduleExpression"] == "cron(0 9 ? * 2 *)" and stored["Description"] == "Mondays at 09:00 UTC"
    assert refused.attributes["status"] == "FAILED" and name in refused.body["summary"]
    assert deleted.attributes["status"] == "SUCCEEDED" and deleted.attributes["tenantId"] == customer


@pytest.mark.parametrize(("expression", "expected"), [
    ("cron(0 9 * * *)", "scheduleExpression: cron(0 9 * * *): cron takes 6 fields"),
    ("every day", "scheduleExpression: 'every day': expected rate(...), cron(...) or at(...)"),
    ("custom(W 7 9)", "expected a weekday 0-6 (0 = Monday)"),
])
def test_invalid_schedule_expressions_are_rejected(cloud: LocalCloud, inbox: Inbox, expression: str,
                                                   expected: str) -> None:
    note = ask(cloud, inbox, "workflow", _schedule("someone", "bad", expression))

    assert note.attributes["status"] == "REJECTED"
    assert expected in note.body["summary"], note.body["summary"]


def test_a_backfill_of_30_days_runs_within_the_gate_and_failed_windows_are_resubmitted(
        cloud: LocalCloud, inbox: Inbox, fast_amc: None) -> None:
    customer, instance = amc_tenant(cloud, inbox, max_concurrent_executions=5)
    cloud.sandbox.faults.add("amc", "createWorkflowExecution", outcome="FAILED", times=3)
    request = {"requestType": "backfillExecutions", "customerId": customer, "startDate": "2026-09-01",
               "endDate": "2026-09-30", "windowDays": 1, "createExecutionRequest": {"workflowId": "top"}}
    try:
        with queued_at_amc(cloud.sandbox, instance):  # so that the first five are live at once
            started = ask(cloud, inbox, "workflow", request)
            backfill_id = started.body["details"]["backfillId"]
            wait_until(lambda: len(amc_creates(cloud, instance)) >= 5, 120)
        first = [execution_outcome(inbox, f"{backfill_id}-w{i:03d}", 240) for i in range(30)]
    finally:
        cloud.sandbox.faults.clear()
    resubmitted = ask(cloud, inbox, "workflow", {"requestType": "resubmitBackfill", "customerId": customer,
                                                 "backfillId": backfill_id})
    failed = [i for i, n in enumerate(first) if n.attributes["status"] != "SUCCEEDED"]
    again = [execution_outcome(inbox, f"{backfill_id}-w{i:03d}-r1", 120) for i in failed]

    assert started.attributes["status"] == "SUCCEEDED" and started.body["details"]["windows"] == 30
    assert len(failed) == 3 and [n.attributes["status"] for n in again] == ["SUCCEEDED"] * 3
    assert resubmitted.body["details"]["resubmitted"] == [f"2026-09-{i + 1:02d}" for i in failed]
    assert cloud.sandbox.amc.state.instances[instance].peak_active == 5
    windows = sorted((r.body["timeWindowStart"], r.body["timeWindowEnd"]) for r in amc_creates(cloud, instance))
    assert windows[0] == ("2026-09-01T00:00:00", "2026-09-02T00:00:00") and len(set(windows)) == 30


def test_sync_records_executions_started_outside_the_platform(cloud: LocalCloud, inbox: Inbox,
                                                              fast_amc: None) -> None:
    customer, instance = amc_tenant(cloud, inbox)
    ours = execution_outcome(inbox, send(cloud, "workflow", execution_request(customer)))
    elsewhere = _amc(cloud, instance).create_execution({"workflowId": "top", "timeWindowType": "MOST_RECENT_DAY"})

    synced = ask(cloud, inbox, "workflow", {"requestType": "syncExecutions", "customerId": customer})
    listed = ask(cloud, inbox, "workflow", {"requestType": "listExecutions", "customerId": customer})

    assert ours.attributes["status"] == "SUCCEEDED"
    assert synced.body["details"] == {"seen": 2, "updated": 0, "added": 1}
    outside = [e for e in listed.body["details"]["executions"] if e.get("origin") == "amc"]
    assert [e["workflowExecutionId"] for e in outside] == [elsewhere.execution_id]


def _amc(cloud: LocalCloud, instance: str) -> AmcClient:
    """A client of the tenant's instance, as another tool (AMC's console, a script) would use it."""
    demo, endpoints = cloud.sandbox.credentials, Endpoints.from_env()
    tokens = TokenProvider(CredentialStore(aws.client("secretsmanager"), "amci/local/auth/default"),
                           AmazonHttp("lwa"), endpoints)
    return AmcClient(AmazonHttp("amc"), endpoints, BearerAuth(tokens), instance, demo["advertiser_id"],
                     demo["marketplace_id"], marketplace_region(demo["marketplace_id"]))
