"""The infrastructure templates: valid CloudFormation, provisioned locally exactly as declared (no drift), and
recorded into the apps' stage configuration."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from moto.s3.models import s3_backends

from amci.stages import output_variable, stage_variables
from local import cfn
from local.cloud import ACCOUNT_ID, LocalCloud
from local.provision import INFRA, local_bucket_policy, render_definition
from shared import aws
from shared.config import SERVICES
from tests.conftest import TEST_PARAMETERS

TEMPLATES = sorted(INFRA.glob("*.yaml"))


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_cfn_lint_finds_no_errors(template: Path) -> None:
    result = subprocess.run([str(Path(sys.executable).with_name("cfn-lint")), "--format", "parseable", str(template)],
                            capture_output=True, text=True, check=False)
    errors = [line for line in result.stdout.splitlines() if ":E" in line]
    assert errors == [], "\n".join(errors)
    assert result.returncode in (0, 4, 8), result.stdout + result.stderr  # 4 and 8: warnings and notes only


def _resources(cloud: LocalCloud) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    stack = cloud.stack
    assert stack is not None
    found = []
    for logical_id, spec in stack.template["Resources"].items():
        if "Condition" in spec and not stack.context.conditions[spec["Condition"]]:
            continue
        found.append((logical_id, spec["Type"], cfn.resolve(spec.get("Properties", {}), stack.context),
                      stack.resources[logical_id]))
    return found


def test_every_declared_resource_exists_locally_as_declared(cloud: LocalCloud) -> None:
    checked = []
    for logical_id, kind, properties, created in _resources(cloud):
        assert kind in _CHECKS, f"{logical_id}: no drift check for {kind}; add one"
        _CHECKS[kind](properties, created)
        checked.append(kind)
    assert len(checked) == len(cloud.stack.template["Resources"]) - 1  # all but the email subscription (no email)


def test_the_apps_local_stage_is_the_stack_outputs_recorded(cloud: LocalCloud) -> None:
    outputs = dict(cloud.outputs)
    for name in TEST_PARAMETERS.keys() & outputs.keys():  # the tests override these; config.json has the defaults
        assert outputs[name] == str(TEST_PARAMETERS[name])
        outputs[name] = str(cloud.stack.template["Parameters"][name]["Default"])
    recorded = {output_variable(name): value for name, value in outputs.items()}
    for service in SERVICES:
        declared = stage_variables(service, "local")
        assert {k: v for k, v in declared.items() if k in recorded} == {k: recorded[k] for k in declared
                                                                        if k in recorded}
        assert set(declared) - set(recorded) == {"LOG_LEVEL"}, service  # STAGE is an output too
        assert set(stage_variables(service, "prod")) == set(declared), f"{service}: prod declares other variables"


def _check_kms_key(p: dict, created: dict) -> None:
    kms = aws.client("kms")
    assert kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"]["Enabled"]
    assert kms.get_key_rotation_status(KeyId=created["KeyId"])["KeyRotationEnabled"] == p["EnableKeyRotation"]
    assert json.loads(kms.get_key_policy(KeyId=created["KeyId"], PolicyName="default")["Policy"]) == p["KeyPolicy"]


def _check_kms_alias(p: dict, created: dict) -> None:
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in aws.client("kms").list_aliases()["Aliases"]}
    assert aliases[p["AliasName"]] == p["TargetKeyId"]


def _check_topic(p: dict, created: dict) -> None:
    attributes = aws.client("sns").get_topic_attributes(TopicArn=created["Ref"])["Attributes"]
    assert attributes["KmsMasterKeyId"] == p["KmsMasterKeyId"]
    assert created["TopicName"] == p["TopicName"]


def _check_queue(p: dict, created: dict) -> None:
    attributes = aws.client("sqs").get_queue_attributes(QueueUrl=created["QueueUrl"], AttributeNames=["All"])[
        "Attributes"]
    assert created["QueueName"] == p["QueueName"]
    for key in ("VisibilityTimeout", "MessageRetentionPeriod", "KmsMasterKeyId"):
        if key in p:
            assert attributes[key] == str(p[key]), key
    if "RedrivePolicy" in p:
        redrive = json.loads(attributes["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"] == p["RedrivePolicy"]["deadLetterTargetArn"]
        assert int(redrive["maxReceiveCount"]) == int(p["RedrivePolicy"]["maxReceiveCount"])


def _check_queue_policy(p: dict, created: dict) -> None:
    for url in p["Queues"]:
        attributes = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]
        assert json.loads(attributes["Policy"]) == p["PolicyDocument"]


def _check_bucket(p: dict, created: dict) -> None:
    s3, bucket = aws.client("s3"), p["BucketName"]
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    declared = p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == declared["ServerSideEncryptionByDefault"]
    assert rule["BucketKeyEnabled"] == declared["BucketKeyEnabled"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == p["VersioningConfiguration"]["Status"]
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == \
        p["PublicAccessBlockConfiguration"]
    assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"] == p["OwnershipControls"]
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert [(r["ID"], r["Status"], r["AbortIncompleteMultipartUpload"]) for r in rules] == [
        (r["Id"], r["Status"], r["AbortIncompleteMultipartUpload"]) for r in p["LifecycleConfiguration"]["Rules"]]
    # moto's GetBucketNotificationConfiguration omits EventBridgeConfiguration, so ask its backend; that events
    # really flow is shown in test_event_sources.py.
    configuration = s3_backends[ACCOUNT_ID]["aws"].get_bucket(bucket).notification_configuration
    assert (configuration is not None and configuration.event_bridge is not None) == \
        p["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"]


def _check_bucket_policy(p: dict, created: dict) -> None:
    expected = local_bucket_policy(p["PolicyDocument"])
    s3 = aws.client("s3")
    if expected["Statement"]:
        assert json.loads(s3.get_bucket_policy(Bucket=p["Bucket"])["Policy"]) == expected
    else:  # every statement is conditional, which moto cannot evaluate: enforced on AWS only
        with pytest.raises(s3.exceptions.ClientError, match="NoSuchBucketPolicy"):
            s3.get_bucket_policy(Bucket=p["Bucket"])


def _check_rule(p: dict, created: dict) -> None:
    events = aws.client("events")
    rule = events.describe_rule(Name=p["Name"])
    assert json.loads(rule["EventPattern"]) == p["EventPattern"]
    assert events.list_targets_by_rule(Rule=p["Name"])["Targets"] == p["Targets"]


def _check_table(p: dict, created: dict) -> None:
    ddb = aws.client("dynamodb")
    table = ddb.describe_table(TableName=p["TableName"])["Table"]
    assert table["KeySchema"] == p["KeySchema"]
    assert table["BillingModeSummary"]["BillingMode"] == p["BillingMode"]
    assert table["SSEDescription"]["Status"] == "ENABLED"
    assert table["SSEDescription"]["KMSMasterKeyArn"].endswith(p["SSESpecification"]["KMSMasterKeyId"])
    ttl = ddb.describe_time_to_live(TableName=p["TableName"])["TimeToLiveDescription"]
    if "TimeToLiveSpecification" in p:
        assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED",
                                                                   p["TimeToLiveSpecification"]["AttributeName"])
    else:
        assert ttl["TimeToLiveStatus"] == "DISABLED"
    backups = ddb.describe_continuous_backups(TableName=p["TableName"])["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def _check_secret(p: dict, created: dict) -> None:
    secrets = aws.client("secretsmanager")
    assert secrets.describe_secret(SecretId=p["Name"])["KmsKeyId"] == p["KmsKeyId"]
    value = secrets.get_secret_value(SecretId=p["Name"], VersionStage="AWSCURRENT")["SecretString"]
    # The local cloud fills in the demo credentials, and token refreshes add the cached access token.
    assert json.loads(p["SecretString"]).keys() <= json.loads(value).keys()


def _check_glue_job(p: dict, created: dict) -> None:
    job = aws.client("glue").get_job(JobName=p["Name"])["Job"]
    assert job["Role"] == p["Role"] and job["Command"] == p["Command"] and job["GlueVersion"] == p["GlueVersion"]
    assert job["DefaultArguments"] == p["DefaultArguments"]


def _check_lake_location(p: dict, created: dict) -> None:
    found = aws.client("lakeformation").describe_resource(ResourceArn=p["ResourceArn"])["ResourceInfo"]
    assert found["ResourceArn"] == p["ResourceArn"]


def _check_lake_permissions(p: dict, created: dict) -> None:
    held = aws.client("lakeformation").list_permissions(Principal=p["Principal"], Resource=p["Resource"])
    assert [sorted(g["Permissions"]) for g in held["PrincipalResourcePermissions"]] == [sorted(p["Permissions"])]


def _check_glue_database(p: dict, created: dict) -> None:
    database = aws.client("glue").get_database(Name=p["DatabaseInput"]["Name"])["Database"]
    assert database["Description"] == p["DatabaseInput"]["Description"]


def _check_schedule_group(p: dict, created: dict) -> None:
    assert aws.client("scheduler").get_schedule_group(Name=p["Name"])["State"] == "ACTIVE"


def _check_role(p: dict, created: dict) -> None:
    iam = aws.client("iam")
    role = iam.get_role(RoleName=created["Ref"])["Role"]
    assert role["AssumeRolePolicyDocument"] == p["AssumeRolePolicyDocument"]
    for policy in p.get("Policies", []):
        stored = iam.get_role_policy(RoleName=created["Ref"], PolicyName=policy["PolicyName"])["PolicyDocument"]
        assert stored == policy["PolicyDocument"]


def _check_state_machine(p: dict, created: dict) -> None:
    described = aws.client("stepfunctions").describe_state_machine(stateMachineArn=created["Arn"])
    assert json.loads(described["definition"]) == json.loads(render_definition(p))
    assert "${" not in described["definition"]
    assert described["roleArn"] == p["RoleArn"]
    assert described["tracingConfiguration"]["enabled"] == p["TracingConfiguration"]["Enabled"]


_CHECKS: dict[str, Callable[[dict, dict], None]] = {
    "AWS::KMS::Key": _check_kms_key,
    "AWS::KMS::Alias": _check_kms_alias,
    "AWS::SNS::Topic": _check_topic,
    "AWS::SQS::Queue": _check_queue,
    "AWS::SQS::QueuePolicy": _check_queue_policy,
    "AWS::S3::Bucket": _check_bucket,
    "AWS::S3::BucketPolicy": _check_bucket_policy,
    "AWS::Events::Rule": _check_rule,
    "AWS::DynamoDB::Table": _check_table,
    "AWS::SecretsManager::Secret": _check_secret,
    "AWS::Glue::Database": _check_glue_database,
    "AWS::Glue::Job": _check_glue_job,
    "AWS::LakeFormation::Resource": _check_lake_location,
    "AWS::LakeFormation::PrincipalPermissions": _check_lake_permissions,
    "AWS::Scheduler::ScheduleGroup": _check_schedule_group,
    "AWS::IAM::Role": _check_role,
    "AWS::StepFunctions::StateMachine": _check_state_machine,
}
