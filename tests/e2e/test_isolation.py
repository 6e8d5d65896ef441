"""Tenant isolation, through the services as any sender would use them: a request naming tenant A never reads,
changes or writes tenant B's executions, schedules, bucket or tables, whatever of B's it names. (Each tenant's AMC
results have their own database; Ads and SP reports share their dataset's database, one tenant per table.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from amci.inbox import Inbox, Notification
from local.cloud import LocalCloud
from shared import aws
from tests.support import ads_creates, amc_tenant, ask, execution_request, sql, wait_until


@dataclass
class Tenants:
    a: str
    a_instance: str
    b: str
    b_instance: str
    b_execution: str
    b_schedule: str


@pytest.fixture(scope="module")
def tenants(cloud: LocalCloud, inbox: Inbox, fast_amc: None) -> Iterator[Tenants]:
    (a, a_instance), (b, b_instance) = amc_tenant(cloud, inbox), amc_tenant(cloud, inbox)
    executed = ask(cloud, inbox, "workflow", execution_request(b), timeout_s=90)
    schedule = f"nightly-{uuid.uuid4().hex[:6]}"
    scheduled = ask(cloud, inbox, "workflow", {
        "requestType": "createSchedule", "customerId": b, "scheduleName": schedule,
        "scheduleExpression": "rate(1 day)", "executionRequest": execution_request(b)})
    try:
        assert executed.attributes["status"] == scheduled.attributes["status"] == "SUCCEEDED"
        wait_until(lambda: _rows(cloud, f"amci_local_{b}"), 90)  # B's results in its tables
        yield Tenants(a, a_instance, b, b_instance, executed.body["details"]["workflowExecutionId"], schedule)
    finally:  # the scaled clock would fire it every 24 minutes, running B's execution amid later tests
        deleted = _workflow(cloud, inbox, {"requestType": "deleteSchedule", "customerId": b, "scheduleName": schedule})
        assert deleted.attributes["status"] == "SUCCEEDED", deleted.body


def _workflow(cloud: LocalCloud, inbox: Inbox, request: dict[str, Any]) -> Notification:
    return ask(cloud, inbox, "workflow", request, timeout_s=60)


def test_another_tenants_execution_can_be_neither_read_nor_cancelled(
        cloud: LocalCloud, inbox: Inbox, tenants: Tenants) -> None:
    named = {"customerId": tenants.a, "workflowExecutionId": tenants.b_execution}
    read = _workflow(cloud, inbox, {"requestType": "getExecutionStatus", **named})
    cancel = _workflow(cloud, inbox, {"requestType": "cancelExecution", **named})
    listed = _workflow(cloud, inbox, {"requestType": "listExecutions", "customerId": tenants.a})
    own = _workflow(cloud, inbox, {"requestType": "getExecutionStatus", "customerId": tenants.b,
                                   "workflowExecutionId": tenants.b_execution})

    for refused in (read, cancel):  # A's AMC instance does not know B's execution
        assert refused.attributes["status"] == "FAILED", refused.body
        assert "outputS3URI" not in refused.body["details"] and f"amc-{tenants.b}" not in str(refused.body)
    assert tenants.b_execution not in str(listed.body["details"])
    assert own.attributes["status"] == "SUCCEEDED" and own.body["details"]["amcStatus"] == "SUCCEEDED"
    assert not [r for r in cloud.sandbox.requests.where(api="amc", operation="cancelWorkflowExecution")
                if tenants.b_execution in r.path]  # B's left alone


def test_another_tenants_schedule_can_be_neither_changed_nor_listed(
        cloud: LocalCloud, inbox: Inbox, tenants: Tenants) -> None:
    named = {"customerId": tenants.a, "scheduleName": tenants.b_schedule}
    disabled = _workflow(cloud, inbox, {"requestType": "disableSchedule", **named})
    deleted = _workflow(cloud, inbox, {"requestType": "deleteSchedule", **named})
    listed = _workflow(cloud, inbox, {"requestType": "listSchedules", "customerId": tenants.a})
    b_schedules = _workflow(cloud, inbox, {"requestType": "listSchedules", "customerId": tenants.b})

    assert tenants.b_schedule not in str(listed.body["details"])
    assert disabled.attributes["status"] == "REJECTED"
    assert f"scheduleName: expected a schedule of tenant {tenants.a}" in disabled.body["summary"]
    assert deleted.attributes["status"] == "SUCCEEDED"  # nothing of that name in A's group: a delete is idempotent
    kept = [s for s in b_schedules.body["details"]["schedules"] if s["scheduleName"] == tenants.b_schedule]
    assert len(kept) == 1 and kept[0]["enabled"] is True, b_schedules.body  # B's schedule as B made it
    group = f"amci-local-{tenants.b}"
    schedule = aws.client("scheduler").get_schedule(GroupName=group, Name=tenants.b_schedule)
    assert schedule["State"] == "ENABLED"


def test_a_tenant_cannot_move_onto_another_tenants_bucket(cloud: LocalCloud, inbox: Inbox, tenants: Tenants) -> None:
    demo = cloud.sandbox.credentials
    details = {"customer_id": tenants.a, "customer_name": "A", "bucket_exists": "false", "amc": {
        "aws_orange_account_id": "111122223333", "bucket_name": f"amc-{tenants.b}-results",
        "instance_id": tenants.a_instance, "amazon_ads_advertiser_id": demo["advertiser_id"],
        "amazon_ads_marketplace_id": demo["marketplace_id"]}}

    moved = ask(cloud, inbox, "tenant", {"requestType": "updateTenant", "customer_details": details})

    assert moved.attributes["status"] == "REJECTED"
    assert f"bucket_name: expected a bucket no other tenant uses ({tenants.b} does)" in moved.body["summary"]


def test_an_execution_writes_only_into_its_own_tenants_bucket_and_tables(
        cloud: LocalCloud, inbox: Inbox, tenants: Tenants) -> None:
    s3 = aws.client("s3")
    b_objects = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=f"amc-{tenants.b}-results").get("Contents", []))
    b_rows = _rows(cloud, f"amci_local_{tenants.b}")

    ran = ask(cloud, inbox, "workflow", execution_request(tenants.a), timeout_s=90)
    wait_until(lambda: _rows(cloud, f"amci_local_{tenants.a}"), 90)  # A's results through the lake

    assert ran.attributes["status"] == "SUCCEEDED" and f"amc-{tenants.a}-results" in ran.body["details"]["outputS3URI"]
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=f"amc-{tenants.b}-results")["Contents"]) == b_objects
    assert _rows(cloud, f"amci_local_{tenants.b}") == b_rows


def _rows(cloud: LocalCloud, database: str) -> dict[str, int]:
    """Rows per table of a tenant's database."""
    glue, counted = aws.client("glue"), {}
    for table in glue.get_tables(DatabaseName=database)["TableList"]:
        counted[table["Name"]] = int(sql(cloud, f"SELECT COUNT(*) AS n FROM {table['Name']}", database)[0]["n"])
    return counted


def _ads_report(customer: str, profile: str, **fields: Any) -> dict[str, Any]:
    """An Ads report request of ``customer``'s, for the profile."""
    return {"customerId": customer, "profileId": profile, "region": "North America", **fields,
            "requestBody": {"startDate": "TODAY(-2)", "endDate": "TODAY(-1)", "configuration": {
                "adProduct": "SPONSORED_PRODUCTS", "groupBy": ["campaign"], "reportTypeId": "spCampaigns",
                "timeUnit": "DAILY", "columns": ["date", "campaignId", "impressions"]}}}


def test_a_report_table_holds_one_tenants_reports(
        cloud: LocalCloud, inbox: Inbox, tenants: Tenants, fast_ads: None) -> None:
    table, profile = f"iso_{uuid.uuid4().hex[:8]}", str(cloud.sandbox.ads.add_profile("na").profile_id)

    def report(customer: str) -> Notification:
        return ask(cloud, inbox, "ads_reporting", _ads_report(customer, profile, tableName=table), timeout_s=60)

    b_report, a_report = report(tenants.b), report(tenants.a)

    assert b_report.attributes["status"] == "SUCCEEDED", b_report.body
    assert a_report.attributes["status"] == "REJECTED"
    assert "tableName: expected a table no other tenant's reports go to" in a_report.body["summary"]
    assert tenants.b not in a_report.body["summary"]  # nothing told about who holds it
    assert len(ads_creates(cloud, profile)) == 1  # A's request never reached Amazon


def test_another_tenants_report_schedule_can_be_neither_changed_nor_listed(
        cloud: LocalCloud, inbox: Inbox, tenants: Tenants) -> None:
    profile, name = str(cloud.sandbox.ads.add_profile("na").profile_id), f"iso-{uuid.uuid4().hex[:6]}"

    def schedule(customer: str, request_type: str = "createSchedule", **fields: Any) -> Notification:
        return ask(cloud, inbox, "ads_reporting", {
            "requestType": request_type, "scheduleName": name, "scheduleExpression": "rate(1 day)", **fields,
            "reportRequest": _ads_report(customer, profile)})

    def named(request_type: str, customer: str | None = tenants.a) -> Notification:
        return ask(cloud, inbox, "ads_reporting", {"requestType": request_type, "scheduleName": name,
                                                   **({"customerId": customer} if customer else {})})

    assert schedule(tenants.b).attributes["status"] == "SUCCEEDED"
    try:
        taken = schedule(tenants.a, "updateSchedule", scheduleExpression="rate(1 minute)")
        disabled, deleted = named("disableSchedule"), named("deleteSchedule")
        a_listed = ask(cloud, inbox, "ads_reporting", {"requestType": "listSchedules", "customerId": tenants.a})
        b_listed = ask(cloud, inbox, "ads_reporting", {"requestType": "listSchedules", "customerId": tenants.b})

        assert taken.attributes["status"] == "REJECTED"
        assert "scheduleName: expected a schedule name no other tenant uses" in taken.body["summary"]
        for refused in (disabled, deleted):
            assert refused.attributes["status"] == "REJECTED", refused.body
            assert f"scheduleName: expected a schedule of tenant {tenants.a}" in refused.body["summary"]
        assert name not in str(a_listed.body["details"])
        assert [s["enabled"] for s in b_listed.body["details"]["schedules"] if s["scheduleName"] == name] == [True]
        group = cloud.outputs["PlatformScheduleGroup"]
        kept = aws.client("scheduler").get_schedule(GroupName=group, Name=f"ads-{name}")
        assert (kept["State"], kept["ScheduleExpression"]) == ("ENABLED", "rate(1 day)")  # as B made it
    finally:
        assert named("deleteSchedule", tenants.b).attributes["status"] == "SUCCEEDED"
