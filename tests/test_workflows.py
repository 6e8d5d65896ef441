"""Workflow requests on the workflow manager's queue, in the AWS Solution's shape, against the sandbox's AMC."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from amci.inbox import Inbox, Notification
from local.cloud import LocalCloud
from tests.support import ask, onboard


@pytest.fixture(scope="module")
def tenant(cloud: LocalCloud, inbox: Inbox) -> str:
    return onboard(cloud, inbox, "wf")


def _workflow(cloud: LocalCloud, inbox: Inbox, tenant: str, request: dict[str, Any]) -> Notification:
    return ask(cloud, inbox, "workflow", {"customerId": tenant, "workflowRequest": {"customerId": tenant, **request}})


def _definition(workflow_id: str, sql: str = "SELECT campaign, SUM(impressions) AS impressions FROM t") -> dict:
    return {"workflowId": workflow_id, "sqlQuery": sql, "filteredMetricsDiscriminatorColumn": "filtered",
            "inputParameters": [{"name": "report_date", "columnType": "DIMENSION", "dataType": "STRING",
                                 "defaultValue": "None", "description": "kept as AMC returns it"}]}


def test_create_then_create_again_updates_get_list_and_delete(cloud: LocalCloud, inbox: Inbox, tenant: str) -> None:
    workflow_id = f"top-campaigns-{uuid.uuid4().hex[:6]}"

    created = _workflow(cloud, inbox, tenant, {"requestType": "createWorkflow",
                                               "workflowDefinition": _definition(workflow_id)})
    again = _workflow(cloud, inbox, tenant, {"requestType": "createWorkflow",
                                             "workflowDefinition": _definition(workflow_id, "SELECT 2 AS two")})
    got = _workflow(cloud, inbox, tenant, {"requestType": "getWorkflow", "workflowId": workflow_id})
    listed = ask(cloud, inbox, "workflow", {"requestType": "listWorkflows", "customerId": tenant})
    deleted = _workflow(cloud, inbox, tenant, {"requestType": "deleteWorkflow", "workflowId": workflow_id})
    gone = _workflow(cloud, inbox, tenant, {"requestType": "getWorkflow", "workflowId": workflow_id})

    assert created.attributes == {"tenantId": tenant, "service": "workflow", "requestType": "createWorkflow",
                                  "status": "SUCCEEDED"}
    assert (created.body["details"]["written"], again.body["details"]["written"]) == ("CREATED", "UPDATED")
    assert got.body["details"]["workflowDefinition"]["sqlQuery"] == "SELECT 2 AS two"
    assert workflow_id in listed.body["details"]["workflows"]
    assert deleted.attributes["status"] == "SUCCEEDED"
    assert gone.attributes["status"] == "FAILED" and "refused by AMC" in gone.body["summary"]
    assert gone.body["details"]["amcStatus"] == 404


def test_amc_refusing_is_a_failure_with_amcs_message(cloud: LocalCloud, inbox: Inbox, tenant: str,
                                                     faults: Any) -> None:
    faults.add("amc", "createWorkflow", status=400, message="sqlQuery: syntax error near FROM", times=1)

    note = _workflow(cloud, inbox, tenant, {"requestType": "createWorkflow",
                                            "workflowDefinition": _definition(f"bad-{uuid.uuid4().hex[:6]}")})

    assert note.attributes["status"] == "FAILED"
    assert "syntax error near FROM" in note.body["summary"]


def test_transient_amc_errors_are_retried(cloud: LocalCloud, inbox: Inbox, tenant: str, faults: Any) -> None:
    workflow_id = f"retried-{uuid.uuid4().hex[:6]}"
    faults.add("amc", "createWorkflow", status=503, times=2)

    note = _workflow(cloud, inbox, tenant, {"requestType": "createWorkflow",
                                            "workflowDefinition": _definition(workflow_id)})

    assert note.attributes["status"] == "SUCCEEDED", note.body["summary"]


@pytest.mark.parametrize(("request_body", "expected"), [
    ({"requestType": "createWorkflow"}, "workflowDefinition: createWorkflow needs the workflow's definition"),
    ({"requestType": "getWorkflow"}, "workflowId: getWorkflow needs the id of the workflow"),
    ({"requestType": "runWorkflow", "workflowId": "x"}, "workflowRequest.requestType: expected"),
    ({"requestType": "createWorkflow", "workflowDefinition": {"workflowId": "has space", "sqlQuery": "SELECT 1"}},
     "workflowRequest.workflowDefinition.workflowId: expected string should match"),
])
def test_malformed_workflow_requests_are_rejected(cloud: LocalCloud, inbox: Inbox, tenant: str,
                                                  request_body: dict[str, Any], expected: str) -> None:
    note = _workflow(cloud, inbox, tenant, request_body)

    assert note.attributes["status"] == "REJECTED"
    assert expected in note.body["summary"], note.body["summary"]


def test_an_unknown_tenant_is_rejected(cloud: LocalCloud, inbox: Inbox) -> None:
    note = _workflow(cloud, inbox, "nobody-here", {"requestType": "getWorkflow", "workflowId": "x"})

    assert note.attributes["status"] == "REJECTED"
    assert "customerId: expected an onboarded tenant" in note.body["summary"]
