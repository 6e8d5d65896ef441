"""Requests on the five request queues, through the real path: SQS -> handler -> Step Functions -> task
functions -> status topic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from amci.inbox import Inbox
from local.cloud import LocalCloud
from shared import aws
from shared.config import SERVICES
from tests.support import answer, ask, queue_idle, wait_until


def _for_request(request_id: str):
    return lambda n: n.body.get("request_id") == request_id


def _finished_execution(cloud: LocalCloud, service: str, request_id: str) -> dict:
    """The diagnostics execution named after the request, once it has finished (the status is sent just before)."""
    sfn = aws.client("stepfunctions")
    arn = cloud.outputs[f"{''.join(p.title() for p in service.split('_'))}DiagnosticsStateMachineArn"]
    execution_arn = arn.replace(":stateMachine:", ":execution:") + f":{service}-diagnose-{request_id}"
    return wait_until(lambda: (e := sfn.describe_execution(executionArn=execution_arn))["status"] != "RUNNING" and e)


def _history_types(execution_arn: str) -> list[str]:
    events = aws.client("stepfunctions").get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return [e["type"] for e in events]


def test_a_request_sent_by_another_process_runs_its_state_machine_to_success(cloud: LocalCloud, inbox: Inbox) -> None:
    request_id = f"proc-{uuid.uuid4().hex[:12]}"
    sender = (
        "import boto3, json, sys\n"
        "sqs = boto3.client('sqs')\n"
        "sqs.send_message(QueueUrl=sys.argv[1], MessageBody=json.dumps("
        "{'requestType': 'diagnose', 'requestId': sys.argv[2], 'repeat': 2, 'intervalSeconds': 1}))\n"
    )
    env = {**os.environ, "AWS_ENDPOINT_URL": cloud.aws_endpoint_url, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    subprocess.run([sys.executable, "-c", sender, cloud.request_queue_url("tenant"), request_id], env=env, check=True,
                   timeout=60)

    note = answer(inbox, request_id, 60)

    assert note.attributes == {"tenantId": "platform", "service": "tenant", "requestType": "diagnose",
                               "status": "SUCCEEDED"}
    execution = _finished_execution(cloud, "tenant", request_id)
    assert execution["status"] == "SUCCEEDED"
    history = _history_types(execution["executionArn"])
    assert history.count("LambdaFunctionSucceeded") == 3  # probe, probe again after the Wait, notify
    assert "ChoiceStateEntered" in history and "WaitStateEntered" in history


@pytest.fixture
def missing_dlq() -> Iterator[str]:
    """The Selling Partner service's DLQ, deleted for the test and restored with its attributes afterwards."""
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName="amci-local-sp-reporting-requests-dlq")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    sqs.delete_queue(QueueUrl=url)
    yield "amci-local-sp-reporting-requests-dlq"
    keep = ("VisibilityTimeout", "MessageRetentionPeriod", "KmsMasterKeyId", "DelaySeconds", "MaximumMessageSize",
            "ReceiveMessageWaitTimeSeconds")
    sqs.create_queue(QueueName="amci-local-sp-reporting-requests-dlq",
                     Attributes={k: v for k, v in attributes.items() if k in keep})


def test_a_failing_task_is_retried_then_caught_and_the_failure_published(
        cloud: LocalCloud, inbox: Inbox, missing_dlq: str) -> None:
    request_id = f"fail-{uuid.uuid4().hex[:12]}"
    note = ask(cloud, inbox, "sp_reporting", {"requestType": "diagnose", "requestId": request_id})

    assert note.attributes["status"] == "FAILED"
    assert "DependencyUnavailable" in note.body["summary"] and missing_dlq in note.body["summary"]
    execution = _finished_execution(cloud, "sp_reporting", request_id)
    assert execution["status"] == "FAILED"
    history = _history_types(execution["executionArn"])
    assert history.count("LambdaFunctionFailed") == 3  # the first attempt and two retries, then Catch
    assert history.count("LambdaFunctionSucceeded") == 1  # the failure notification


@pytest.mark.parametrize("service", SERVICES)
def test_a_malformed_request_is_answered_with_what_is_wrong_and_kept(
        cloud: LocalCloud, inbox: Inbox, service: str) -> None:
    bad_field = f"colour_{uuid.uuid4().hex[:8]}"
    aws.client("sqs").send_message(QueueUrl=cloud.request_queue_url(service), MessageBody=json.dumps(
        {"requestType": "diagnose", "repeat": 99, bad_field: "red"}))

    note = inbox.wait_for(lambda n: bad_field in n.body.get("summary", ""), timeout_s=30)

    assert note.attributes["status"] == "REJECTED" and note.attributes["service"] == service
    assert "repeat: expected less than or equal to 5 (got 99)" in note.body["summary"]
    assert f"{bad_field}: expected no such field (allowed: requestId, requestType, repeat, intervalSeconds)" in \
        note.body["summary"]
    kept = _dlq_message_containing(note.body["details"]["quarantine"], bad_field)
    assert "repeat" in kept["MessageAttributes"]["amciRejectReason"]["StringValue"]


@pytest.mark.parametrize(("body", "expected"), [
    ("this is not JSON", "(message): expected a JSON object"),
    (json.dumps(["diagnose"]), "(message): expected a JSON object"),
    (json.dumps({"requestType": "launchRocket"}),
     'requestType: expected one of diagnose, listDatasets, redrive, registerDataset (got "launchRocket")'),
    (json.dumps({"repeat": 1}), "requestType: expected one of diagnose"),
])
def test_requests_that_are_not_requests_are_answered_too(cloud: LocalCloud, inbox: Inbox, body: str,
                                                         expected: str) -> None:
    message_id = aws.client("sqs").send_message(QueueUrl=cloud.request_queue_url("datalake"),
                                                MessageBody=body)["MessageId"]

    note = answer(inbox, message_id, 30)

    assert note.attributes["status"] == "REJECTED"
    assert expected in note.body["summary"]


def test_a_redelivered_request_starts_one_execution_and_sends_one_notification(
        cloud: LocalCloud, inbox: Inbox) -> None:
    request_id = f"dup-{uuid.uuid4().hex[:12]}"
    body = json.dumps({"requestType": "diagnose", "requestId": request_id})
    sqs = aws.client("sqs")
    for _ in range(3):
        sqs.send_message(QueueUrl=cloud.request_queue_url("datalake"), MessageBody=body)

    answer(inbox, request_id, 60)
    wait_until(lambda: queue_idle(cloud.request_queue_url("datalake")), timeout_s=20)
    inbox.drain(wait_s=2)

    executions = aws.client("stepfunctions").list_executions(
        stateMachineArn=cloud.outputs["DatalakeDiagnosticsStateMachineArn"])["executions"]
    assert sum(e["executionArn"].endswith(f":datalake-diagnose-{request_id}") for e in executions) == 1
    assert sum(1 for n in inbox.received if n.body.get("request_id") == request_id) == 1


def test_a_request_id_reused_for_a_different_request_is_rejected(cloud: LocalCloud, inbox: Inbox) -> None:
    request_id = f"reuse-{uuid.uuid4().hex[:12]}"
    sqs = aws.client("sqs")
    sqs.send_message(QueueUrl=cloud.request_queue_url("tenant"), MessageBody=json.dumps(
        {"requestType": "diagnose", "requestId": request_id}))
    inbox.wait_for(lambda n: _for_request(request_id)(n) and n.attributes["status"] == "SUCCEEDED", timeout_s=60)

    sqs.send_message(QueueUrl=cloud.request_queue_url("tenant"), MessageBody=json.dumps(
        {"requestType": "diagnose", "requestId": request_id, "repeat": 2}))

    note = inbox.wait_for(lambda n: _for_request(request_id)(n) and n.attributes["status"] == "REJECTED")
    assert "requestId: expected an id not used before for a different request" in note.body["summary"]


@pytest.fixture
def missing_state_machine(cloud: LocalCloud) -> Iterator[str]:
    """The workflow manager's diagnostics state machine, deleted for the test and restored afterwards."""
    sfn = aws.client("stepfunctions")
    arn = cloud.outputs["WorkflowDiagnosticsStateMachineArn"]
    described = sfn.describe_state_machine(stateMachineArn=arn)
    sfn.delete_state_machine(stateMachineArn=arn)
    yield arn
    sfn.create_state_machine(name=described["name"], definition=described["definition"],
                             roleArn=described["roleArn"], tracingConfiguration={"enabled": True})


def test_an_internal_error_is_retried_then_notified_and_dead_lettered(
        cloud: LocalCloud, inbox: Inbox, missing_state_machine: str) -> None:
    request_id = f"err-{uuid.uuid4().hex[:12]}"
    note = ask(cloud, inbox, "workflow", {"requestType": "diagnose", "requestId": request_id})

    assert note.attributes["status"] == "ERROR"
    assert note.body["details"]["error"] == "StateMachineDoesNotExist"
    assert "after 2 attempts" in note.body["summary"]
    assert _dlq_message_containing("amci-local-workflow-requests-dlq", request_id)



def _dlq_message_containing(queue_name: str, text: str) -> dict:
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]

    def find() -> dict | None:
        # The DLQ is shared by other tests: look through all of it, hiding what was seen for a few seconds.
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=5,
                                              MessageAttributeNames=["All"]).get("Messages", []):
            found = next((m for m in messages if text in m["Body"]), None)
            if found:
                return found
        return None

    return wait_until(find, timeout_s=30)
