"""The CloudFormation a tenant needs, built as data (never by pasting strings together).

In the platform's region, always: the rule that sends the AMC bucket's object events to the data lake's queue
(and, for a bucket of another account, the permission for that account to send events to our default bus).
Where the bucket is, when the platform creates it: its KMS key (AMC's account may encrypt with it through S3),
the bucket (versioned, public access blocked, EventBridge notifications on, access logs when in the platform's
region, retained when the stack goes) and AMC's delivery policy. A bucket in another region forwards its events
to the platform region's default bus. For a bucket of another account, :func:`bucket_owner_template` is what the
owner deploys.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.model import Pattern, Platform, Tenant

DELIVERY_SID = "AmciAmcDelivery"  # how the delivery statement is recognised in an existing bucket policy


def templates(tenant: Tenant, platform: Platform) -> dict[str, dict[str, Any]]:
    """The template of each region the tenant needs resources in (one when its bucket is in the platform's)."""
    regions: dict[str, dict[str, Any]] = {platform.region: _routing(tenant, platform)}
    bucket_side: dict[str, Any] = {}
    if tenant.pattern is Pattern.NEW_BUCKET:
        bucket_side.update(_new_bucket(tenant, platform))
    if tenant.pattern is not Pattern.CROSS_ACCOUNT and tenant.bucket_region != platform.region:
        bucket_side.update(_forwarding(tenant, platform, f"{tenant.resource_name(platform)}-fwd"))
    if bucket_side:
        regions.setdefault(tenant.bucket_region, {}).update(bucket_side)
    return {region: _template(tenant, resources) for region, resources in regions.items()}


def delivery_statement(tenant: Tenant) -> dict[str, Any]:
    """What AMC's account needs on the bucket to deliver results."""
    bucket_arn = f"arn:aws:s3:::{tenant.bucket_name}"
    return {"Sid": DELIVERY_SID, "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{tenant.amc_account_id}:root"},
            "Action": ["s3:PutObject", "s3:GetBucketLocation", "s3:ListBucket"],
            "Resource": [bucket_arn, f"{bucket_arn}/*"]}


def bucket_owner_template(tenant: Tenant, platform: Platform) -> dict[str, Any]:
    """For a bucket in another account: what its owner deploys there (forward the bucket's object events to the
    platform's bus) and which policy statement AMC's delivery needs."""
    resources = _forwarding(tenant, platform, f"amci-{platform.stage}-to-{platform.account_id}-{tenant.customer_id}")
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": (f"AMC Insights ({platform.stage}): send the object events of s3://{tenant.bucket_name} to "
                        f"account {platform.account_id}'s data lake. Also turn on EventBridge notifications on the "
                        "bucket, and add the two statements of the outputs to its bucket policy (and, for a KMS "
                        "key, let the same accounts use it)."),
        "Resources": resources,
        "Outputs": {"DeliveryPolicyStatement": {"Value": _json_text(delivery_statement(tenant))},
                    "DataLakeReadStatement": {"Value": _json_text(_lake_reads(tenant, platform))}},
    }


def _lake_reads(tenant: Tenant, platform: Platform) -> dict[str, Any]:
    """What the platform's account needs on a bucket of another account to read the results into the lake."""
    bucket_arn = f"arn:aws:s3:::{tenant.bucket_name}"
    return {"Sid": "AmciDataLakeReads", "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{platform.account_id}:root"},
            "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"],
            "Resource": [bucket_arn, f"{bucket_arn}/*"]}


def _template(tenant: Tenant, resources: dict[str, Any]) -> dict[str, Any]:
    return {"AWSTemplateFormatVersion": "2010-09-09",
            "Description": f"AMC Insights tenant {tenant.customer_id}",
            "Resources": resources}


def _routing(tenant: Tenant, platform: Platform) -> dict[str, Any]:
    resources: dict[str, Any] = {"IntakeRule": {"Type": "AWS::Events::Rule", "Properties": {
        "Name": tenant.resource_name(platform),
        "Description": f"Object events of s3://{tenant.bucket_name} to the data lake",
        "EventPattern": _bucket_events(tenant),
        "Targets": [{"Id": "datalake", "Arn": platform.events_queue_arn,
                     "DeadLetterConfig": {"Arn": platform.events_dlq_arn}}]}}}
    if tenant.pattern is Pattern.CROSS_ACCOUNT:
        resources["BucketAccountMaySendEvents"] = {"Type": "AWS::Events::EventBusPolicy", "Properties": {
            "StatementId": tenant.resource_name(platform), "EventBusName": "default",
            "Statement": {"Effect": "Allow", "Action": "events:PutEvents",
                          "Principal": {"AWS": f"arn:aws:iam::{tenant.bucket_account}:root"},
                          "Resource": f"arn:aws:events:{platform.region}:{platform.account_id}:event-bus/default",
                          "Condition": {"StringEquals": {"events:source": "aws.s3"}}}}}  # S3's events only
    return resources


def _new_bucket(tenant: Tenant, platform: Platform) -> dict[str, Any]:
    bucket: dict[str, Any] = {
        "BucketName": tenant.bucket_name,
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [{
            "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                              "KMSMasterKeyID": {"Fn::GetAtt": ["BucketKey", "Arn"]}},
            "BucketKeyEnabled": True}]},
        "VersioningConfiguration": {"Status": "Enabled"},
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                           "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
        "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}},
    }
    if tenant.bucket_region == platform.region:  # S3 writes access logs only to a bucket in the same region
        bucket["LoggingConfiguration"] = {"DestinationBucketName": platform.access_logs_bucket,
                                          "LogFilePrefix": f"{tenant.bucket_name}/"}
    retained = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}  # offboarding keeps the data
    return {
        "BucketKey": {"Type": "AWS::KMS::Key", **retained, "Properties": {
            "Description": f"AMC Insights tenant {tenant.customer_id}: results bucket",
            "EnableKeyRotation": True, "KeyPolicy": _key_policy(tenant, platform)}},
        "Bucket": {"Type": "AWS::S3::Bucket", **retained, **_unlogged(bucket), "Properties": bucket},
        "BucketPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {
            "Bucket": {"Ref": "Bucket"}, "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                delivery_statement(tenant),
                {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                 "Resource": [f"arn:aws:s3:::{tenant.bucket_name}", f"arn:aws:s3:::{tenant.bucket_name}/*"],
                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}}},
    }


def _unlogged(bucket: dict[str, Any]) -> dict[str, Any]:
    """For a bucket without access logs, why: the checkov check that would flag it is skipped with the reason."""
    if "LoggingConfiguration" in bucket:
        return {}
    return {"Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_18", "comment": (
        "S3 delivers access logs only to a bucket in the same region, and the platform's access-log bucket is in "
        "the platform's region: this bucket is in another.")}]}}}


def _key_policy(tenant: Tenant, platform: Platform) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "AccountAdministers", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{platform.account_id}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "AmcEncryptsThroughS3", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{tenant.amc_account_id}:root"},
         "Action": ["kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt"], "Resource": "*",  # Decrypt: multipart
         "Condition": {"StringEquals": {"kms:ViaService": f"s3.{tenant.bucket_region}.amazonaws.com"}}}]}


def _forwarding(tenant: Tenant, platform: Platform, name: str) -> dict[str, Any]:
    """A rule in the bucket's region (or account) that sends its object events to the platform's default bus."""
    bus = f"arn:aws:events:{platform.region}:{platform.account_id}:event-bus/default"
    return {
        "ForwardRole": {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
            "Policies": [{"PolicyName": "put-events-on-the-platform-bus", "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": bus}]}}]}},
        "ForwardRule": {"Type": "AWS::Events::Rule", "Properties": {
            "Name": name, "EventPattern": _bucket_events(tenant),
            "Targets": [{"Id": "platform-bus", "Arn": bus, "RoleArn": {"Fn::GetAtt": ["ForwardRole", "Arn"]}}]}},
    }


def _bucket_events(tenant: Tenant) -> dict[str, Any]:
    return {"source": ["aws.s3"], "detail-type": ["Object Created", "Object Deleted"],
            "detail": {"bucket": {"name": [tenant.bucket_name]}}}


def _json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
