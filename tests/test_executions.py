"""AMC workflow executions through the workflow manager: requests in the AWS Solution's shape, the executions state
machine, the concurrency gate, faults, schedules and backfills, against the sandbox's AMC."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from amci.inbox import Inbox
from local.cloud import LocalCloud
from shared import aws
from tests.support import (
    amc_calls,
    amc_creates,
    amc_tenant,
    amc_timings,
    ask,
    execution_outcome,
    execution_request,
    execution_runs,
    outage_until,
    queue_idle,
    queued_at_amc,
    send,
    wait_until,
)


def _record(cloud: LocalCloud, customer: str, request_id: str) -> dict[str, Any]:
    return aws.table(cloud.outputs["WorkflowRecordsTable"]).get_item(
        Key={"customerId": customer, "recordId": f"execution#{request_id}"}).get("Item", {})


def test_an_execution_runs_delivers_its_csv_and_is_notified_once(cloud: LocalCloud, inbox: Inbox,
                                                                 fast_amc: None) -> None:
    customer, instance = amc_tenant(cloud, inbox)

    request_id = send(cloud, "workflow", execution_request(customer))
    note = execution_outcome(inbox, request_id)

    details = note.body["details"]
    assert note.attributes["status"] == "SUCCEEDED", note.body["summary"]
    assert note.attributes == {"tenantId": customer, "service": "workflow", "requestType": "createExecution",
                               "status": "SUCCEEDED"}
    assert details["workflowId"] == "top" and details["amcStatus"] == "SUCCEEDED"
    assert details["workflowExecutionId"] in note.body["summary"] and f"({customer}): top " in note.subject
    bucket, key = details["outputS3URI"].removeprefix("s3://").split("/", 1)
    assert bucket == f"amc-{customer}-results"
    csv = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert csv.splitlines()[0].startswith("campaign") and len(csv.splitlines()) > 1
    sent = json.loads(json.dumps(amc_creates(cloud, instance)[0].body))
    assert sent["timeWindowStart"].endswith("T00:00:00") and sent["timeWindowTimeZone"] == "America/New_York"
    assert sent["ignoreDataGaps"] is True and sent["parameterValues"]["report_date"][:2] == "20"
    record = _record(cloud, customer, request_id)
    assert record["executionStatus"] == "SUCCEEDED" and record["expiresAt"] > 0
    assert len([n for n in inbox.drain() if n.body.get("request_id") == request_id]) == 1

    status = ask(cloud, inbox, "workflow", {"customerId": customer, "requestType": "getExecutionStatus",
                                            "workflowExecutionId": details["workflowExecutionId"]})
    listed = ask(cloud, inbox, "workflow", {"customerId": customer, "requestType": "listExecutions",
                                            "status": "SUCCEEDED"})
    assert status.attributes["status"] == "SUCCEEDED" and status.body["details"]["amcStatus"] == "SUCCEEDED"
    assert [e["requestId"] for e in listed.body["details"]["executions"]] == [request_id]


def test_a_duplicated_request_creates_one_amc_execution(cloud: LocalCloud, inbox: Inbox, fast_amc: None) -> None:
    customer, instance = amc_tenant(cloud, inbox)
    request = {**execution_request(customer), "requestId": f"dup-{uuid.uuid4().hex[:8]}"}

    for _ in range(3):
        send(cloud, "workflow", dict(request))
    note = execution_outcome(inbox, request["requestId"])

    assert note.attributes["status"] == "SUCCEEDED", note.body["summary"]
    assert len(amc_creates(cloud, instance)) == 1
    wait_until(lambda: queue_idle(cloud.request_queue_url("workflow")), 30)  # every copy handled
    assert len(execution_runs(cloud, customer)) == 1  # so no second execution can still come
    assert len([n for n in inbox.drain() if n.body.get("request_id") == request["requestId"]]) == 1


def test_fifty_requests_with_a_limit_of_ten_never_run_more_than_ten(cloud: LocalCloud, inbox: Inbox,
                                                                   fast_amc: None) -> None:
    customer, instance = amc_tenant(cloud, inbox)
    with queued_at_amc(cloud.sandbox, instance):  # so that the first ten are live at once
        ids = [send(cloud, "workflow", execution_request(customer)) for _ in range(50)]
        wait_until(lambda: len(amc_creates(cloud, instance)) >= 10, 120)
    notes = [execution_outcome(inbox, request_id, timeout_s=300) for request_id in ids]

    assert [n.attributes["status"] for n in notes] == ["SUCCEEDED"] * 50
    assert cloud.sandbox.amc.state.instances[instance].peak_active == 10  # the sandbox saw at most ten at once
    assert len(amc_creates(cloud, instance)) == 50
    received = [n.body["request_id"] for n in inbox.drain() if n.body.get("request_id") in set(ids)]
    assert sorted(received) == sorted(ids)  # each notified once


def test_a_tenants_own_limit_is_kept(cloud: LocalCloud, inbox: Inbox, fast_amc: None) -> None:
    customer, instance = amc_tenant(cloud, inbox, max_concurrent_executions=3)
    with queued_at_amc(cloud.sandbox, instance):  # so that the first three are live at once
        ids = [send(cloud, "workflow", execution_request(customer)) for _ in range(8)]
        wait_until(lambda: len(amc_creates(cloud, instance)) >= 3, 60)

    assert all(execution_outcome(inbox, r, 120).attributes["status"] == "SUCCEEDED" for r in ids)
    assert cloud.sandbox.amc.state.instances[instance].peak_active == 3


@pytest.mark.parametrize(("fault", "status", "creates"), [
    ({"status": 429, "retry_after": 1, "times": 3}, "SUCCEEDED", 1),
    ({"status": 503, "times": 3}, "SUCCEEDED", 1),
    ({"outcome": "REJECTED", "times": 1}, "REJECTED", 1),
    ({"outcome": "FAILED", "times": 1}, "FAILED", 1),
    ({"status": 400, "message": "Unknown parameter report_day", "times": 1}, "REJECTED", 0),
])
def test_amc_faults_end_in_the_right_outcome(cloud: LocalCloud, inbox: Inbox, fast_amc: None, faults: Any,
                                             fault: dict[str, Any], status: str, creates: int) -> None:
    customer, instance = amc_tenant(cloud, inbox)
    faults.add("amc", "createWorkflowExecution", **fault)

    note = execution_outcome(inbox, send(cloud, "workflow", execution_request(customer)))

    assert note.attributes["status"] == status, note.body["summary"]
    assert len(amc_creates(cloud, instance)) == creates
    if status != "SUCCEEDED":
        assert note.body["details"]["amcMessage"] and note.body["details"]["amcMessage"] in note.body["summary"]


def test_expired_tokens_and_an_outage_while_running_are_ridden_out(cloud: LocalCloud, inbox: Inbox,
                                                                   fast_amc: None, faults: Any) -> None:
    customer, instance = amc_tenant(cloud, inbox)
    with amc_timings(cloud.sandbox, running_s=600):  # running until the outage has been met
        request_id = send(cloud, "workflow", execution_request(customer))
        wait_until(lambda: len(amc_creates(cloud, instance)) == 1, 60)
    cloud.sandbox.lwa.expire_all()
    try:
        outage_until(faults, "amc", lambda: amc_calls(cloud, instance, "getWorkflowExecution", 503), 60)
    finally:
        ended = cloud.sandbox.amc.state.end_running(instance)

    note = execution_outcome(inbox, request_id)

    assert ended == 1  # it was still running when the outage was met
    assert note.attributes["status"] == "SUCCEEDED", note.body["summary"]
    assert amc_calls(cloud, instance, "getWorkflowExecution", 503)


def test_an_execution_cancelled_mid_run_is_notified_as_cancelled(cloud: LocalCloud, inbox: Inbox,
                                                                  fast_amc: None) -> None:
    customer, _ = amc_tenant(cloud, inbox)
    with amc_timings(cloud.sandbox, running_s=600):  # running until it is cancelled
        request_id = send(cloud, "workflow", execution_request(customer))
        execution_id = wait_until(lambda: _record(cloud, customer, request_id).get("workflowExecutionId"), 60)

    cancelled = ask(cloud, inbox, "workflow", {"customerId": customer, "requestType": "cancelExecution",
                                               "workflowExecutionId": execution_id})
    note = execution_outcome(inbox, request_id)

    assert cancelled.attributes["status"] == "SUCCEEDED", cancelled.body["summary"]
    assert note.attributes["status"] == "CANCELLED" and note.body["details"]["workflowExecutionId"] == execution_id


def test_an_internal_error_is_notified_and_frees_the_slot(cloud: LocalCloud, inbox: Inbox, fast_amc: None) -> None:
    customer, _ = amc_tenant(cloud, inbox, max_concurrent_executions=1)
    # The tenant's credentials are replaced by ones Amazon refuses (as when a user revokes the app's consent).
    secrets, auth_id = aws.client("secretsmanager"), f"revoked-{customer}"
    secrets.create_secret(Name=f"amci/local/auth/{auth_id}", SecretString=json.dumps({
        **json.loads(secrets.get_secret_value(SecretId="amci/local/auth/default")["SecretString"]),
        "refresh_token": "Atzr|revoked", "access_token": ""}))
    aws.table(cloud.outputs["WorkflowTenantsTable"]).update_item(
        Key={"customerId": customer}, UpdateExpression="SET authId = :a", ExpressionAttributeValues={":a": auth_id})

    first = execution_outcome(inbox, send(cloud, "workflow", execution_request(customer)))
    second = execution_outcome(inbox, send(cloud, "workflow", execution_request(customer)))

    assert [first.attributes["status"], second.attributes["status"]] == ["ERROR", "ERROR"]
    assert "AuthorizationFailed" in first.body["summary"]


def test_an_ad_hoc_execution_runs_its_own_sql(cloud: LocalCloud, inbox: Inbox, fast_amc: None) -> None:
    customer, instance = amc_tenant(cloud, inbox)
    request = execution_request(customer)
    del request["createExecutionRequest"]["workflowId"]
    request["createExecutionRequest"]["workflow"] = {"workflowId": "adhoc-1", "sqlQuery": "SELECT 1 AS one"}

    note = execution_outcome(inbox, send(cloud, "workflow", request))

    assert note.attributes["status"] == "SUCCEEDED", note.body["summary"]
    assert note.body["details"]["workflowId"] == "adhoc-1"
    assert amc_creates(cloud, instance)[0].body["workflow"]["sqlQuery"] == "SELECT 1 AS one"
