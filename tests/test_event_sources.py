"""Event sources wired as Lambda wires them: SQS partial batches, S3 -> EventBridge -> SQS, schedules, and the
Lambda Invoke endpoint Step Functions uses."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, timedelta

import pytest
from botocore.exceptions import ClientError

from amci.stages import stage_variables
from local.cloud import LocalCloud
from shared import aws
from shared.config import resource_variables
from tests.support import queue_idle, wait_until


def _object_event(bucket: str, key: str, etag: str) -> str:
    return json.dumps({"version": "0", "id": str(uuid.uuid4()), "detail-type": "Object Created", "source": "aws.s3",
                       "time": "2026-11-27T00:00:00Z", "detail": {"bucket": {"name": bucket},
                       "object": {"key": key, "size": 3, "etag": etag}}})


def _ledger_items(cloud: LocalCloud, key_part: str) -> list[dict]:
    items = aws.table(cloud.outputs["DatalakeObjectsTable"]).scan()["Items"]
    return [item for item in items if key_part in item["key"]]


def _queue_url(name: str) -> str:
    return aws.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]


def test_a_partial_batch_failure_redelivers_only_the_failed_message_until_its_dlq(cloud: LocalCloud) -> None:
    run = uuid.uuid4().hex[:10]
    bucket = cloud.outputs["RawBucket"]
    aws.client("sqs").send_message_batch(QueueUrl=_queue_url(cloud.outputs["DatalakeEventsQueue"]), Entries=[
        {"Id": "a", "MessageBody": _object_event(bucket, f"batch-{run}/a.csv", "e1")},
        {"Id": "poison", "MessageBody": f"not an event {run}"},
        {"Id": "b", "MessageBody": _object_event(bucket, f"batch-{run}/b.csv", "e2")},
    ])

    dlq = _queue_url("amci-local-datalake-object-events-dlq")

    def dead_lettered() -> list[dict]:
        messages = aws.client("sqs").receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                                     AttributeNames=["All"]).get("Messages", [])
        return [m for m in messages if run in m["Body"]]

    dead = wait_until(dead_lettered, timeout_s=30)
    wait_until(lambda: queue_idle(_queue_url(cloud.outputs["DatalakeEventsQueue"])), timeout_s=20)

    assert [m["Body"] for m in dead] == [f"not an event {run}"]  # only the failed one was redelivered and kept
    assert sorted(item["key"] for item in _ledger_items(cloud, f"batch-{run}/")) == [f"batch-{run}/a.csv",
                                                                                      f"batch-{run}/b.csv"]


def test_an_object_put_into_an_intake_bucket_reaches_the_data_lake(cloud: LocalCloud) -> None:
    key = f"adtech/demo/{uuid.uuid4().hex[:10]}/clicks.csv"
    aws.client("s3").put_object(Bucket=cloud.outputs["ReportsBucket"], Key=key, Body=b"day,clicks\n")

    items = wait_until(lambda: [i for i in _ledger_items(cloud, key) if i["status"] != "RECEIVED"])

    assert items[0]["bucket"] == cloud.outputs["ReportsBucket"]
    # Recorded, then routed: adtech/demo is no dataset of the lake, so it goes no further (and is no error).
    assert (items[0]["action"], items[0]["status"], int(items[0]["size"])) == ("CREATED", "UNROUTED", 11)


def test_a_multipart_upload_emits_two_events_and_is_recorded_once(cloud: LocalCloud) -> None:
    key = f"adtech/demo/{uuid.uuid4().hex[:10]}/big.csv"
    bucket = cloud.outputs["RawBucket"]
    witness = Witness(bucket)
    s3 = aws.client("s3")
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)
    part = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 1024)
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})

    created = wait_until(lambda: len(events := witness.created(key)) >= 2 and events)
    wait_until(lambda: _ledger_items(cloud, key))
    wait_until(lambda: queue_idle(_queue_url(cloud.outputs["DatalakeEventsQueue"])), timeout_s=20)

    assert len(created) == 2 and len({e["detail"]["object"]["version-id"] for e in created}) == 1
    assert len(_ledger_items(cloud, key)) == 1


def test_folder_markers_and_other_events_are_skipped_without_errors(cloud: LocalCloud) -> None:
    errors_before = cloud.lambdas.errors["amci-datalake-local-on_object_event"]  # the chaos test crashes it
    marker = f"adtech/folder-{uuid.uuid4().hex[:8]}/"
    aws.client("s3").put_object(Bucket=cloud.outputs["RawBucket"], Key=marker, Body=b"")
    aws.client("sqs").send_message(QueueUrl=_queue_url(cloud.outputs["DatalakeEventsQueue"]),
                                   MessageBody=json.dumps({"Event": "s3:TestEvent", "Bucket": marker}))

    wait_until(lambda: queue_idle(_queue_url(cloud.outputs["DatalakeEventsQueue"])), timeout_s=20)

    assert _ledger_items(cloud, marker) == []
    assert cloud.lambdas.errors["amci-datalake-local-on_object_event"] == errors_before


def test_an_app_schedule_fires_on_its_rate(cloud: LocalCloud) -> None:
    # The test cloud's clock runs 60x: rate(1 minute) fires about once a second, each a minute after the last.
    # A fire missed while the scheduler was held up (a busy machine) is not made up for, as on AWS: the next one
    # is still on the rate's grid, whole minutes later.
    fired = cloud.apps["clock"].app.handler_map["every_minute"].func.__globals__["FIRED"]
    start = len(fired)

    def gaps() -> list[float]:
        return [(b - a).total_seconds() for a, b in itertools.pairwise(fired[start:])]

    seen = wait_until(lambda: len(found := gaps()) >= 2 and 60.0 in found and found, timeout_s=10)
    assert all(gap > 0 and gap % 60 == 0 for gap in seen), seen


def test_a_scheduler_schedule_delivers_its_input_to_its_queue(cloud: LocalCloud) -> None:
    sqs, scheduler = aws.client("sqs"), aws.client("scheduler")
    name = f"sched-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    payload = json.dumps({"requestType": "diagnose", "requestId": name})
    scheduler.create_schedule(Name=name, GroupName=cloud.outputs["PlatformScheduleGroup"],
                              ScheduleExpression="rate(1 minute)", FlexibleTimeWindow={"Mode": "OFF"},
                              Target={"Arn": arn, "RoleArn": cloud.outputs["SchedulerRoleArn"], "Input": payload})
    try:
        bodies = wait_until(lambda: [m["Body"] for m in sqs.receive_message(QueueUrl=url).get("Messages", [])],
                            timeout_s=15)
    finally:  # not left firing every second for the rest of the session, read by the scheduler at every refresh
        scheduler.delete_schedule(Name=name, GroupName=cloud.outputs["PlatformScheduleGroup"])

    assert bodies == [payload]


def test_a_one_time_schedule_fires_once_and_deletes_itself(cloud: LocalCloud) -> None:
    sqs, scheduler = aws.client("sqs"), aws.client("scheduler")
    name = f"once-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # Five minutes ahead (5 s): the scheduler, which reads schedules every second, sees it long before it is due
    # (one it first sees more than a minute past its time never fires), however busy the machine.
    at = (cloud.clock.now() + timedelta(minutes=5)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    scheduler.create_schedule(Name=name, ScheduleExpression=f"at({at})", FlexibleTimeWindow={"Mode": "OFF"},
                              ActionAfterCompletion="DELETE",
                              Target={"Arn": arn, "RoleArn": cloud.outputs["SchedulerRoleArn"], "Input": "{}"})

    wait_until(lambda: sqs.receive_message(QueueUrl=url).get("Messages"), timeout_s=15)
    with pytest.raises(ClientError, match="ResourceNotFound"):
        wait_until(lambda: not scheduler.get_schedule(Name=name), timeout_s=5)


def test_the_invoke_endpoint_answers_as_lambda_does(cloud: LocalCloud) -> None:
    lambda_client = aws.client("lambda")

    unknown = pytest.raises(ClientError, match="ResourceNotFoundException")
    with unknown:
        lambda_client.invoke(FunctionName="amci-nothing-local-here", Payload=b"{}")
    failed = lambda_client.invoke(FunctionName="amci-tenant-local-notify", Payload=json.dumps({"request": {}}))
    ok = lambda_client.invoke(FunctionName="amci-tenant-local-diagnostics_probe",
                              Payload=json.dumps({"remaining": 1, "service": "tenant"}))

    assert failed["FunctionError"] == "Unhandled"
    assert json.loads(failed["Payload"].read())["errorType"] == "KeyError"
    declared = resource_variables(stage_variables("tenant", "local"))
    assert json.loads(ok["Payload"].read())["checked"] == len(declared)  # only what the tenant app declares


class Witness:
    """A queue that receives the raw EventBridge events of a bucket, to see what S3 emitted."""

    def __init__(self, bucket: str) -> None:
        name = f"witness-{uuid.uuid4().hex[:8]}"
        sqs, events = aws.client("sqs"), aws.client("events")
        self.url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        pattern = {"source": ["aws.s3"], "detail": {"bucket": {"name": [bucket]}}}
        events.put_rule(Name=name, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=name, Targets=[{"Id": "witness", "Arn": arn}])
        self.seen: list[dict] = []

    def created(self, key: str) -> list[dict]:
        """"Object Created" events of ``key`` seen so far."""
        sqs = aws.client("sqs")
        for message in sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []):
            self.seen.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return [e for e in self.seen if e["detail"]["object"]["key"] == key and e["detail-type"] == "Object Created"]
