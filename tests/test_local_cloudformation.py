"""Stacks created through the CloudFormation API in the local cloud behave as on AWS for a tenant stack's resource
types (local/cloudformation.py): every bucket property applied, policies created and deleted, Retain honoured."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from moto.s3.models import s3_backends

from local.cloud import ACCOUNT_ID, REGION, LocalCloud
from local.cloudformation import CloudFormationPatch
from local.provision import local_bucket_policy
from shared import aws
from tests.support import wait_until

OTHER_ACCOUNT = "111122223333"


@pytest.fixture(scope="module", autouse=True)
def patched(cloud: LocalCloud) -> Iterator[None]:
    """The patch, unless the local cloud installs it already (installing twice would apply everything twice)."""
    if getattr(cloud, "cloudformation", None) is not None:
        yield
        return
    patch = CloudFormationPatch()
    patch.install()
    yield
    patch.uninstall()


@pytest.fixture()
def queue() -> dict[str, str]:
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=f"cfn-test-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"url": url, "arn": arn}


def _tenant_template(bucket: str, queue: dict[str, str], log_bucket: str, abort_days: int = 7) -> dict[str, Any]:
    """What a tenant stack declares: a KMS-encrypted, versioned lake bucket whose object events reach a queue."""
    bucket_arn = {"Fn::GetAtt": ["Bucket", "Arn"]}
    return {"Resources": {
        "Key": {"Type": "AWS::KMS::Key", "DeletionPolicy": "Retain", "Properties": {
            "EnableKeyRotation": True, "KeyPolicy": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}, "Action": "kms:*",
                 "Resource": "*"}]}}},
        "Alias": {"Type": "AWS::KMS::Alias", "Properties": {"AliasName": f"alias/{bucket}",
                                                            "TargetKeyId": {"Ref": "Key"}}},
        "Bucket": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "Properties": {
            "BucketName": bucket,
            "BucketEncryption": {"ServerSideEncryptionConfiguration": [{"BucketKeyEnabled": True,
                "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                                  "KMSMasterKeyID": {"Fn::GetAtt": ["Key", "Arn"]}}}]},
            "VersioningConfiguration": {"Status": "Enabled"},
            "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                               "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "LifecycleConfiguration": {"Rules": [{
                "Id": "abort-uploads", "Status": "Enabled",
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": abort_days}}]},
            "LoggingConfiguration": {"DestinationBucketName": log_bucket, "LogFilePrefix": f"{bucket}/"},
            "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}},
            "Tags": [{"Key": "tenant", "Value": bucket}]}},
        "BucketPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {
            "Bucket": {"Ref": "Bucket"}, "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Sid": "TenantWrites", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
                 "Action": "s3:PutObject", "Resource": {"Fn::Join": ["", [bucket_arn, "/*"]]}},
                {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                 "Resource": [bucket_arn, {"Fn::Join": ["", [bucket_arn, "/*"]]}],
                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}}},
        "Rule": {"Type": "AWS::Events::Rule", "Properties": {
            "EventPattern": {"source": ["aws.s3"], "detail-type": ["Object Created"],
                             "detail": {"bucket": {"name": [{"Ref": "Bucket"}]}}},
            "Targets": [{"Id": "lake-events", "Arn": queue["arn"]}]}},
        "QueuePolicy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {"Queues": [queue["url"]], "PolicyDocument": {
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                                                    "Action": "sqs:SendMessage", "Resource": queue["arn"]}]}}},
        "BusPolicy": {"Type": "AWS::Events::EventBusPolicy", "Properties": {"StatementId": f"{bucket}-partner",
            "Statement": {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
                          "Action": "events:PutEvents",
                          "Resource": f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/default"}}}},
        "Outputs": {"BucketName": {"Value": {"Ref": "Bucket"}}, "BucketArn": {"Value": bucket_arn},
                    "KeyArn": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}},
                    "RuleArn": {"Value": {"Fn::GetAtt": ["Rule", "Arn"]}}}}


def _names() -> tuple[str, str]:
    run = uuid.uuid4().hex[:8]
    log_bucket = f"cfn-test-{run}-access-logs"
    aws.client("s3").create_bucket(Bucket=log_bucket)
    aws.client("s3").put_bucket_policy(Bucket=log_bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{log_bucket}/*"}]}))  # S3 refuses to log into a bucket without it
    return f"cfn-test-{run}-lake", log_bucket


def _create(name: str, template: dict[str, Any]) -> dict[str, Any]:
    cloudformation = aws.client("cloudformation")
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
    return cloudformation.describe_stacks(StackName=name)["Stacks"][0]


def _outputs(stack: dict[str, Any]) -> dict[str, str]:
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def _lake_events(queue_url: str, key: str) -> list[dict[str, Any]]:
    messages = aws.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [body for body in (json.loads(m["Body"]) for m in messages) if body["detail"]["object"]["key"] == key]


def test_a_created_stack_has_every_bucket_property_and_policy_applied(queue: dict[str, str]) -> None:
    bucket, log_bucket = _names()
    template = _tenant_template(bucket, queue, log_bucket)
    stack = _create(bucket, template)
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    outputs = _outputs(stack)
    assert outputs["BucketName"] == bucket and outputs["BucketArn"] == f"arn:aws:s3:::{bucket}"
    assert outputs["RuleArn"].startswith(f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/")

    s3 = aws.client("s3")
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert encryption == [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                                                  "KMSMasterKeyID": outputs["KeyArn"]},
                           "BucketKeyEnabled": True}]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}]
    assert _abort_days(bucket) == 7
    assert s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"] == {"TargetBucket": log_bucket,
                                                                      "TargetPrefix": f"{bucket}/"}
    # moto's GetBucketNotificationConfiguration omits EventBridgeConfiguration, so ask its backend
    assert s3_backends[ACCOUNT_ID]["aws"].get_bucket(bucket).notification_configuration.event_bridge is not None
    assert aws.client("kms").get_key_rotation_status(KeyId=outputs["KeyArn"])["KeyRotationEnabled"]

    resolved = json.loads(json.dumps(template["Resources"]["BucketPolicy"]["Properties"]["PolicyDocument"]))
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["TenantWrites"] == [
        s["Sid"] for s in local_bucket_policy(resolved)["Statement"]]  # the conditional Deny stays AWS-only
    queue_policy = aws.client("sqs").get_queue_attributes(QueueUrl=queue["url"], AttributeNames=["Policy"])
    assert json.loads(queue_policy["Attributes"]["Policy"])["Statement"][0]["Action"] == "sqs:SendMessage"
    assert f"{bucket}-partner" in aws.client("events").describe_event_bus()["Policy"]
    listed = aws.client("cloudformation").describe_stack_resources(StackName=bucket)["StackResources"]
    assert sorted(r["LogicalResourceId"] for r in listed) == sorted(template["Resources"])


def test_an_object_put_into_the_stacks_bucket_reaches_the_rules_queue(queue: dict[str, str]) -> None:
    bucket, log_bucket = _names()
    _create(bucket, _tenant_template(bucket, queue, log_bucket))
    aws.client("s3").put_object(Bucket=bucket, Key="incoming/a b.csv", Body=b"a,b\n")
    events = wait_until(lambda: _lake_events(queue["url"], "incoming/a b.csv"), timeout_s=10)
    assert events[0]["detail-type"] == "Object Created" and events[0]["detail"]["bucket"]["name"] == bucket


def test_an_update_applies_changed_and_removed_properties_and_resources(queue: dict[str, str]) -> None:
    bucket, log_bucket = _names()
    _create(bucket, _tenant_template(bucket, queue, log_bucket))
    template = _tenant_template(bucket, queue, log_bucket, abort_days=3)
    del template["Resources"]["Bucket"]["Properties"]["LoggingConfiguration"]
    del template["Resources"]["BusPolicy"]
    cloudformation = aws.client("cloudformation")
    cloudformation.update_stack(StackName=bucket, TemplateBody=json.dumps(template))
    stack = cloudformation.describe_stacks(StackName=bucket)["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_COMPLETE", stack.get("StackStatusReason")
    assert _abort_days(bucket) == 3
    assert "LoggingEnabled" not in aws.client("s3").get_bucket_logging(Bucket=bucket)
    assert json.loads(aws.client("s3").get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    assert f"{bucket}-partner" not in (aws.client("events").describe_event_bus().get("Policy") or "")


def test_a_deleted_stack_keeps_its_retained_bucket_and_key_and_deletes_the_rest(queue: dict[str, str]) -> None:
    bucket, log_bucket = _names()
    template = _tenant_template(bucket, queue, log_bucket)
    outputs = _outputs(_create(bucket, template))
    aws.client("s3").put_object(Bucket=bucket, Key="kept.csv", Body=b"a\n")
    aws.client("cloudformation").delete_stack(StackName=bucket)

    s3 = aws.client("s3")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["kept.csv"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchBucketPolicy"):
        s3.get_bucket_policy(Bucket=bucket)
    assert not [r for r in aws.client("events").list_rules()["Rules"] if r["Arn"] == outputs["RuleArn"]]
    assert f"{bucket}-partner" not in (aws.client("events").describe_event_bus().get("Policy") or "")
    assert aws.client("kms").describe_key(KeyId=outputs["KeyArn"])["KeyMetadata"]["KeyState"] == "Enabled"
    assert "Policy" not in aws.client("sqs").get_queue_attributes(QueueUrl=queue["url"],
                                                                  AttributeNames=["Policy"]).get("Attributes", {})


def test_a_key_without_retain_is_scheduled_for_deletion_with_its_stack(queue: dict[str, str]) -> None:
    bucket, log_bucket = _names()
    template = _tenant_template(bucket, queue, log_bucket)
    del template["Resources"]["Key"]["DeletionPolicy"]
    template["Resources"]["Key"]["Properties"]["PendingWindowInDays"] = 7
    outputs = _outputs(_create(bucket, template))
    aws.client("cloudformation").delete_stack(StackName=bucket)
    key = aws.client("kms").describe_key(KeyId=outputs["KeyArn"])["KeyMetadata"]
    assert key["KeyState"] == "PendingDeletion"


def test_a_stack_whose_bucket_is_not_empty_fails_to_delete_until_it_is_emptied() -> None:
    bucket = f"cfn-test-{uuid.uuid4().hex[:8]}-scratch"
    cloudformation, s3 = aws.client("cloudformation"), aws.client("s3")
    _create(bucket, {"Resources": {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": bucket}}}})
    s3.put_object(Bucket=bucket, Key="x", Body=b"1")
    cloudformation.delete_stack(StackName=bucket)
    stack = cloudformation.describe_stacks(StackName=bucket)["Stacks"][0]
    assert stack["StackStatus"] == "DELETE_FAILED" and bucket in stack["StackStatusReason"]
    s3.delete_object(Bucket=bucket, Key="x")
    cloudformation.delete_stack(StackName=bucket)
    assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}


@pytest.mark.parametrize(("change", "reason"), [
    (lambda t: t["Resources"]["Bucket"]["Properties"].update(AccelerateConfiguration={"AccelerationStatus": "Enabled"}),
     "AccelerateConfiguration"),
    (lambda t: t["Resources"].update(Database={"Type": "AWS::Glue::Database", "Properties": {
        "CatalogId": ACCOUNT_ID, "DatabaseInput": {"Name": "tenant"}}}), "AWS::Glue::Database"),
], ids=["property", "type"])
def test_what_the_local_cloud_cannot_apply_fails_the_stack_loudly(queue: dict[str, str], change: Any,
                                                                  reason: str) -> None:
    bucket, log_bucket = _names()
    template = _tenant_template(bucket, queue, log_bucket)
    change(template)
    stack = _create(bucket, template)
    assert stack["StackStatus"] == "CREATE_FAILED"
    assert reason in stack["StackStatusReason"]
    events = aws.client("cloudformation").describe_stack_events(StackName=bucket)["StackEvents"]
    assert any(e["ResourceStatus"] == "CREATE_FAILED" and reason in e["ResourceStatusReason"] for e in events)


def _abort_days(bucket: str) -> int:
    rules = aws.client("s3").get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    return rules[0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
