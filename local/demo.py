"""The smoke scenario behind ``make demo`` until the full demo exists: the local cloud starts, every service runs
its diagnostics state machine, a malformed request is answered, files dropped into the raw bucket reach the
data lake's intake ledger once each, and a demo tenant is onboarded. Everything goes through the real path:
request queues, Step Functions, task functions, the status topic, S3 -> EventBridge -> SQS."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from local.cloud import LocalCloud
from local.inbox import Inbox
from shared import aws, logs
from shared.config import SERVICES

console = Console()


def run(port: int) -> int:
    """Run the scenario; returns the process exit code (0 when every step did what it should)."""
    logs.configure(level="ERROR", stream=sys.stderr)  # quiet: the tables tell the story; errors still show
    with console.status("Starting the local cloud (emulated AWS account, five services)..."):
        cloud = LocalCloud(port=port).start()
    try:
        console.print(f"[green]Local cloud up[/] in {cloud.timings['ready']:.1f}s at {cloud.aws_endpoint_url}")
        inbox = Inbox(aws.client("sqs"), aws.client("sns"), cloud.outputs["StatusTopicArn"])
        ok = _diagnostics(cloud, inbox) & _rejection(cloud, inbox) & _intake(cloud) & _tenant(cloud, inbox)
    finally:
        cloud.stop()
    console.print("[bold green]Smoke scenario passed.[/]" if ok else "[bold red]Smoke scenario failed.[/]")
    return 0 if ok else 1


def _diagnostics(cloud: LocalCloud, inbox: Inbox) -> bool:
    sqs, started = aws.client("sqs"), time.monotonic()
    for service in SERVICES:
        request = {"requestType": "diagnose", "requestId": f"demo-{service}"}
        sqs.send_message(QueueUrl=cloud.request_queue_url(service), MessageBody=json.dumps(request))
    table = Table(title="Diagnostics: request queue -> state machine -> task functions -> status topic")
    for column in ("service", "status", "resources checked", "seconds"):
        table.add_column(column)
    ok = True
    with console.status("Each service is running its diagnostics state machine..."):
        for service in SERVICES:
            note = inbox.wait_for(lambda n, s=service: n.attributes.get("service") == s, timeout_s=60)
            ok &= note.attributes["status"] == "SUCCEEDED"
            table.add_row(service, _colour(note.attributes["status"]), str(note.body["details"].get("checked", "-")),
                          f"{time.monotonic() - started:.1f}")
    console.print(table)
    return ok


def _rejection(cloud: LocalCloud, inbox: Inbox) -> bool:
    aws.client("sqs").send_message(QueueUrl=cloud.request_queue_url("tenant"),
                                   MessageBody=json.dumps({"requestType": "diagnose", "repeat": "often"}))
    note = inbox.wait_for(lambda n: n.attributes.get("status") == "REJECTED", timeout_s=30)
    console.print(f"Malformed request answered: [yellow]{note.body['summary']}[/] "
                  f"(kept in {note.body['details']['quarantine']})")
    return "repeat" in note.body["summary"]


def _intake(cloud: LocalCloud) -> bool:
    s3, bucket = aws.client("s3"), cloud.outputs["RawBucket"]
    s3.put_object(Bucket=bucket, Key="adtech/demo/small.csv", Body=b"day,clicks\n2026-11-26,42\n")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="adtech/demo/large.csv")
    part = s3.upload_part(Bucket=bucket, Key="adtech/demo/large.csv", UploadId=upload["UploadId"], PartNumber=1,
                          Body=b"day,clicks\n" + b"2026-11-26,1\n" * 500_000)
    s3.complete_multipart_upload(Bucket=bucket, Key="adtech/demo/large.csv", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})
    items = _ledger(cloud, expected=2)
    table = Table(title="Data lake intake ledger: S3 -> EventBridge -> SQS -> datalake (each object once)")
    for column in ("object", "bytes", "status"):
        table.add_column(column)
    for item in sorted(items, key=lambda i: i["key"]):
        table.add_row(f"s3://{item['bucket']}/{item['key']}", f"{int(item['size']):,}", item["status"])
    console.print(table)
    return len(items) == 2


def _tenant(cloud: LocalCloud, inbox: Inbox) -> bool:
    demo = cloud.sandbox.credentials
    request = {"requestId": "demo-onboarding", "customer_details": {
        "customer_id": "democustomer", "customer_name": "Demo Customer", "bucket_exists": "false",
        "amc": {"aws_orange_account_id": "111122223333", "bucket_name": "amc-democustomer-results",
                "instance_id": demo["amc_instance_id"], "amazon_ads_advertiser_id": demo["advertiser_id"],
                "amazon_ads_marketplace_id": demo["marketplace_id"]}}}
    aws.client("sqs").send_message(QueueUrl=cloud.request_queue_url("tenant"), MessageBody=json.dumps(request))
    with console.status("Onboarding a demo tenant (its CloudFormation stack, bucket, rule, registrations)..."):
        note = inbox.wait_for(lambda n: n.body.get("request_id") == "demo-onboarding", timeout_s=120)
    console.print(f"Tenant: [{'green' if note.attributes['status'] == 'SUCCEEDED' else 'red'}]"
                  f"{note.attributes['status']}[/] {note.body['summary']}")
    return note.attributes["status"] == "SUCCEEDED"


def _ledger(cloud: LocalCloud, expected: int, timeout_s: float = 30) -> list[dict[str, Any]]:
    table = aws.table(cloud.outputs["DatalakeObjectsTable"])
    deadline = time.monotonic() + timeout_s
    with console.status("Waiting for the data lake to record the uploads..."):
        while True:
            items = table.scan()["Items"]
            if len(items) >= expected or time.monotonic() > deadline:
                time.sleep(1.5)  # a duplicate event, had it been recorded twice, would show up by now
                return table.scan()["Items"]
            time.sleep(0.2)


def _colour(status: str) -> str:
    return f"[green]{status}[/]" if status == "SUCCEEDED" else f"[red]{status}[/]"
