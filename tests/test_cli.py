"""``amci local up`` as a user runs it: in the foreground, endpoints written for other processes, clean Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import boto3

from local.cloud import ENDPOINTS_FILE
from tests.support import wait_until


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_local_up_serves_other_processes_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    amci = Path(sys.executable).with_name("amci")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = subprocess.Popen([str(amci), "local", "up", "--port", str(port)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env)
    try:
        endpoints = wait_until(lambda: _endpoints_for(port), timeout_s=60)
        client = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                       region_name=endpoints["region"])
        sqs = client.client("sqs", endpoint_url=endpoints["aws_endpoint_url"])
        sns = client.client("sns", endpoint_url=endpoints["aws_endpoint_url"])
        inbox = sqs.create_queue(QueueName=f"cli-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=endpoints["status_topic_arn"], Protocol="sqs", Endpoint=inbox_arn)
        sqs.send_message(QueueUrl=endpoints["request_queues"]["ads_reporting"],
                         MessageBody=json.dumps({"requestType": "diagnose", "requestId": "from-cli-test"}))

        notes = wait_until(lambda: sqs.receive_message(QueueUrl=inbox, WaitTimeSeconds=1).get("Messages"),
                           timeout_s=60)
        status = json.loads(json.loads(notes[0]["Body"])["Message"])
        assert (status["service"], status["status"], status["request_id"]) == ("ads_reporting", "SUCCEEDED",
                                                                               "from-cli-test")
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)

    assert process.returncode == 0, output
    assert "Local cloud stopped." in output
    assert f"AWS_ENDPOINT_URL=http://127.0.0.1:{port}" in output
    assert "diagnose" not in output  # quiet by default: no per-request lines
    assert not ENDPOINTS_FILE.exists()


def _endpoints_for(port: int) -> dict | None:
    if not ENDPOINTS_FILE.exists():
        return None
    endpoints = json.loads(ENDPOINTS_FILE.read_text())
    return endpoints if endpoints["aws_endpoint_url"].endswith(f":{port}") else None


def test_stage_record_outputs_fills_each_apps_stage_from_the_stack(tmp_path: Path) -> None:
    from amci.stages import SERVICES_DIR, record_outputs, stack_outputs

    services = tmp_path / "services"
    for config in SERVICES_DIR.glob("*/.chalice/config.json"):
        target = services / config.relative_to(SERVICES_DIR)
        target.parent.mkdir(parents=True)
        target.write_text(config.read_text())
    described = {"Stacks": [{"Outputs": [
        {"OutputKey": "StatusTopicArn", "OutputValue": "arn:aws:sns:eu-west-1:111122223333:amci-prod-status"},
        {"OutputKey": "TenantRequestQueue", "OutputValue": "amci-prod-tenant-requests"},
        {"OutputKey": "RawBucket", "OutputValue": "amci-prod-raw-111122223333-eu-west-1"}]}]}

    changed = record_outputs("tenant", "prod", stack_outputs(described), services)
    unchanged = record_outputs("tenant", "prod", stack_outputs(described), services)

    assert changed == {"STATUS_TOPIC_ARN": "arn:aws:sns:eu-west-1:111122223333:amci-prod-status",
                       "TENANT_REQUEST_QUEUE": "amci-prod-tenant-requests"}  # RAW_BUCKET: not a tenant variable
    assert unchanged == {}
    prod = json.loads((services / "tenant/.chalice/config.json").read_text())["stages"]["prod"]
    assert prod["environment_variables"]["TENANT_REQUEST_QUEUE"] == "amci-prod-tenant-requests"
