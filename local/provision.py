"""Provisioning a CloudFormation template into the emulated account with boto3 calls.

moto's own CloudFormation skips Glue, Secrets Manager, Scheduler, SNS subscriptions and queue policies, and ignores
bucket notifications, versioning, TTL and state machine substitutions (research/platform.md §6). So we apply each
resource ourselves, property by property; a property we do not know how to apply raises instead of being dropped.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local import cfn

log = logging.getLogger(__name__)
INFRA = Path(__file__).resolve().parent.parent / "infra"

# Properties that only describe a resource, or that the emulator has no notion of; everything else is applied.
_DESCRIPTIVE = {"Description", "DisplayName", "Tags"}


@dataclass
class Stack:
    """A provisioned template: its resolved outputs and each resource's attributes (``Ref``, ``Arn``, ...)."""

    name: str
    template: dict[str, Any]
    context: cfn.Context
    outputs: dict[str, str]

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.context.attributes


class ProvisionError(RuntimeError):
    """A resource type or property the local cloud cannot provision."""


Creator = Callable[[str, dict[str, Any], "Clients"], dict[str, Any]]
Clients = Callable[[str], Any]


def provision(template_path: Path, stack_name: str, parameters: Mapping[str, Any], clients: Clients,
              region: str, account_id: str) -> Stack:
    """Create every resource of the template, in dependency order, and resolve its outputs."""
    template = cfn.load(template_path)
    stack_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{account_id}/{region}/{stack_name}")  # the same for the same stack
    ctx = cfn.Context(cfn.parameter_values(template, parameters), {
        "AWS::AccountId": account_id, "AWS::Region": region, "AWS::Partition": "aws",
        "AWS::StackName": stack_name, "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackId": f"arn:aws:cloudformation:{region}:{account_id}:stack/{stack_name}/{stack_id}"})
    cfn.evaluate_conditions(template, ctx)
    resources = template["Resources"]
    for logical_id in cfn.creation_order(resources):
        spec = resources[logical_id]
        if "Condition" in spec and not ctx.conditions[spec["Condition"]]:
            continue
        creator = _CREATORS.get(spec["Type"])
        if creator is None:
            raise ProvisionError(f"{logical_id}: resource type {spec['Type']} is not supported by the local cloud")
        properties = cfn.resolve(spec.get("Properties", {}), ctx)
        physical_name = f"{stack_name}-{logical_id}"[:64]
        try:
            ctx.attributes[logical_id] = creator(physical_name, properties, clients)
        except ProvisionError as exc:
            raise ProvisionError(f"{logical_id} ({spec['Type']}): {exc}") from None
        log.debug("provisioned", extra={"resource": logical_id, "type": spec["Type"]})
    outputs = {name: str(cfn.resolve(out["Value"], ctx)) for name, out in template.get("Outputs", {}).items()
               if "Condition" not in out or ctx.conditions[out["Condition"]]}
    return Stack(stack_name, template, ctx, outputs)


def _take(properties: dict[str, Any], known: set[str]) -> dict[str, Any]:
    """The properties minus descriptive ones; raise on any the creator does not apply."""
    unknown = set(properties) - known - _DESCRIPTIVE
    if unknown:
        raise ProvisionError(f"properties not supported locally: {', '.join(sorted(unknown))}")
    return properties


def _kms_key(name: str, p: dict[str, Any], c: Clients) -> dict[str, Any]:
    p = _take(p, {"KeyPolicy", "EnableKeyRotation"})
    key = c("kms").create_key(Description=p.get("Description", name), Policy=json.dumps(p["KeyPolicy"]))["KeyMetadata"]
    if p.get("EnableKeyRotation"):
        c("kms").enable_key_rotation(KeyId=key["KeyId"])
    return {"Ref": key["KeyId"], "KeyId": key["KeyId"], "Arn": key["Arn"]}


def _kms_alias(name: str, p: dict[str, Any], c: Clients) -> dict[str, Any]:
    p = _take(p, {"AliasName", "TargetKeyId"})
    c("kms").create_alias(AliasName=p["AliasName"], TargetKeyId=p["TargetKeyId"])
    return {"Ref": p["AliasName"]}


def _sns_topic(name: str, p: dict[str, Any], c: Clients) -> dict[str, Any]:
    p = _take(p, {"TopicName", "KmsMasterKeyId"})
    attributes = {"KmsMasterKeyId": p["KmsMasterKeyId"]} if "KmsMasterKeyId" in p else {}
    if "DisplayName" in p:
        attributes["DisplayName"] = p["DisplayName"]
    arn = c("sns").create_topic(Name=p.get("TopicName", name), Attributes=attributes)["TopicArn"]
    return {"Ref": arn, "TopicArn": arn, "TopicName": arn.rsplit(":", 1)[1]}


def _sns_subscription(name: str, p: dict[str, Any], c: Clients) -> dict[str, Any]:
    p = _take(p, {"TopicArn", "Protocol", "Endpoint", "RawMessageDelivery", "FilterPolicy"})
    attributes = {k: (json.dumps(v) if isinstance(v, dict) else str(v).lower())
                  for k, v in p.items() if k in ("RawMessageDelivery", "FilterPolicy")}
    arn = c("sns").subscribe(TopicArn=p["TopicArn"], Protocol=p["Protocol"], Endpoint=p["Endpoint"],
                             Attributes=attributes, ReturnSubscriptionArn=True)["SubscriptionArn"]
    return {"Ref": arn}


_QUEUE_ATTRIBUTES = {"VisibilityTimeout", "MessageRetentionPeriod", "KmsMasterKeyId", "DelaySeconds",
                     "ReceiveMessageWaitTimeSeconds", "MaximumMessageSize", "FifoQueue", "ContentBasedDeduplication"}


def _sqs_queue(name: str, p: dict[str, Any], c: Clients) -> dict[str, Any]:
    p = _take(p, _QUEUE_ATTRIBUTES | {"QueueName", "RedrivePolicy"})
    attributes = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in p.items() if k in _QUEUE_ATTRIBUTES}
    if "RedrivePolicy" in p:
        attributes["RedrivePolicy"] = json.dumps(p["RedrivePolicy"])
    url = c("sqs").create_queue(QueueName=p.get("QueueName", name), Attributes=attributes)["QueueUrl"]
    arn = c("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"Ref": url, "QueueUrl": url, "Arn": arn, "QueueName": arn.rsplit(":", 1)[1]}


def put_queue_policy(name: str, p: dict[str, Any], c: Clients) -> dict[str, Any]:
    """Apply an AWS::SQS::QueuePolicy to its existing queues."""
    p = _take(p, {"Queues", "PolicyDocument"})
    for url in p["Queues"]:
        c("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(p["PolicyDocument"])})
    return {"Ref": name}


BUCKET_SETTINGS = {"BucketEncryption", "VersioningConfiguration", "PublicAccessBlockConfiguration", "OwnershipControls",
                   "NotificationConfiguration", "LifecycleConfiguration", "LoggingConfiguration"}


def _s3_bucket(name: str, p: dict[str, Any], c: Clients) -> dict[str, Any]:
    s3, bucket = c("s3"), p.get("BucketName", name.lower())
    region = s3.meta.region_name
    s3.create_bucket(Bucket=bucket, **({} if region == "us-east-1" else {
        "CreateBucketConfiguration": {"LocationConstraint": region}}))
    apply_bucket_settings(bucket, p, s3)
    return {"Ref": bucket, "Arn": f"arn:aws:s3:::{bucket}", "DomainName": f"{bucket}.s3.amazonaws.com"}


def apply_bucket_settings(bucket: str, p: Mapping[str, Any], s3: Any) -> None:
    """Apply an AWS::S3::Bucket's properties to an existing bucket (also for stacks moto's CloudFormation creates,
    which applies only the encryption); raise on a property not applied here."""
    _take(dict(p), BUCKET_SETTINGS | {"BucketName"})
    if "BucketEncryption" in p:
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
            "Rules": [_encryption_rule(rule) for rule in p["BucketEncryption"]["ServerSideEncryptionConfiguration"]]})
    if "VersioningConfiguration" in p:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=p["VersioningConfiguration"])
    if "PublicAccessBlockConfiguration" in p:
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=p["PublicAccessBlockConfiguration"])
    if "OwnershipControls" in p:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=p["OwnershipControls"])
    if "LifecycleConfiguration" in p:
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={
            "Rules": [_lifecycle_rule(rule) for rule in p["LifecycleConfiguration"]["Rules"]]})
    if "LoggingConfiguration" in p:
        s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={
            "LoggingEnabled": _logging(p["LoggingConfiguration"])})
    if "NotificationConfiguration" in p:
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=_notifications(
            p["NotificationConfiguration"]))


def _logging(config: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(config) - {"DestinationBucketName", "LogFilePrefix"}
    if unknown:
        raise ProvisionError(f"logging fields not supported locally: {', '.join(sorted(unknown))}")
    return {"TargetBucket": config["DestinationBucketName"], "TargetPrefix": config.get("LogFilePrefix", "")}


def _encryption_rule(rule: dict[str, Any]) -> dict[str, Any]:
    default = rule["ServerSideEncryptionByDefault"]
    api_default = {"SSEAlgorithm": default["SSEAlgorithm"]}
    if "KMSMasterKeyID" in default:
        api_default["KMSMasterKeyID"] = default["KMSMasterKeyID"]
    return {"ApplyServerSideEncryptionByDefault": api_default, "BucketKeyEnabled": rule.get("BucketKeyEnabled", False)}


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's lifecycle rule in the API's words (``Id`` -> ``ID``, and an explicit whole-bucket filter)."""
    known = {"Id", "Status", "AbortIncompleteMultipartUpload", "Prefix"}
    if set(rule) - known:
        raise ProvisionError(f"lifecycle rule fields not supported locally: {', '.join(sorted(set(rule) - known))}")
    api = {"ID": rule["Id"], "Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "AbortIncompleteMultipartUpload" in rule:
        api["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    return api


def _notifications(config: dict[str, Any]) -> dict[str, Any]:
    if set(config) != {"EventBridgeConfiguration"}:
        raise ProvisionError("only EventBridgeConfiguration notifications are supported (S3 events go via EventBridge)")
    return {"EventBridgeConfiguration": {}} if config["EventBridgeConfiguration"].get("EventBridgeEnabled") else {}


def put_bucket_policy(name: str, p: dict[str, Any], c: Clients) -> dict[str, Any]:
    """Apply an AWS::S3::BucketPolicy to its existing bucket, minus what moto cannot enforce."""
    p = _take(p, {"Bucket", "PolicyDocument"})
    document = local_bucket_policy(p["PolicyDocument"])
    if document["Statement"]:
        c("s3").put_bucket_policy(Bucket=p["Bucket"], Policy=json.dumps(document))
    return {"Ref": name}


def local_bucket_policy(document: dict[str, Any]) -> dict[str, Any]:
    """The statements moto can enforce: it evaluates bucket policies but ignores their Conditions, so a
    conditional Deny (e.g. of non-TLS requests) would deny everything; those stay AWS-only. A conditional Allow,
    evaluated without its condition, only allows more, so it is kept (S3 logging needs one on its target)."""
    return {**document, "Statement": [s for s in document["Statement"]
                                      if not ("Condition" in s and s.get("Effect") == "Deny")]}


def _events_rule(name: str, p: dict[str, Any], c: Clients) -> dict[str, Any]:
    p = _take(p, {"Name", "EventPattern", "ScheduleExpression", "State", "Targets", "EventBusName"})
    rule_name = p.get("Name", name)
    args = {"Name": rule_name, "State": p.get("State", "ENABLED"), "Description": p.get("Description", "")}
    if "EventPattern" in p:
        args["EventPattern"] = json.dumps(p["EventPattern"])
    if "ScheduleExpression" in p:
        args["ScheduleExpression"] = p["ScheduleExpression"]
    if "EventBusName" in p:
        args["EventBusName"] = p["EventBusName"]
    arn = c("events").put_rule(**args)["RuleArn"]
    if p.get("Targets"):
        c("events").put_targets(Rule=rule_name, Targets=p["Targets"],
                                **({"EventBusName": p["EventBusName"]} if "EventBusName" in p else {}))
    return {"Ref": rule_name, "Arn": arn}


def _dynamodb_table(name: str, p: dict[str, Any], c: Clients) -> dict[str, Any]:
    p = _take(p, {"TableName", "BillingMode", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes",
                  "SSESpecification", "PointInTimeRecoverySpecification", "TimeToLiveSpecification"})
    ddb, table = c("dynamodb"), p.get("TableName", name)
    args = {k: p[k] for k in ("BillingMode", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes") if k in p}
    if "SSESpecification" in p:
        sse = p["SSESpecification"]
        args["SSESpecification"] = {"Enabled": sse["SSEEnabled"], **{k: sse[k] for k in ("SSEType",) if k in sse},
                                    **({"KMSMasterKeyId": sse["KMSMasterKeyId"]} if "KMSMasterKeyId" in sse else {})}
    description = ddb.create_table(TableName=table, **args)["TableDescription"]
    if "TimeToLiveSpecification" in p:
        ddb.update_time_to_live(TableName=table, TimeToLiveSpecification=p["TimeToLiveSpecification"])
    if "PointInTimeRecoverySpecification" in p:
        ddb.update_continuous_backups(TableName=table,
                                      PointInTimeRecoverySpecification=p["PointInTimeRecoverySpecification"])
    return {"Ref": table, "Arn": description["TableArn"], "StreamArn": description.get("LatestStreamArn", "")}


def _secret(name: str, p: dict[str, Any], c: Clients) -> dict[str, Any]:
    p = _take(p, {"Name", "KmsKeyId", "SecretString"})
    args = {"Name": p.get("Name", name), "SecretString": p.get("SecretString", "{}")}
    if "KmsKeyId" in p:
        args["KmsKeyId"] = p["KmsKeyId"]
    if "Description" in p:
        args["Description"] = p["Description"]
    arn = c("secretsmanager").create_secret(**args)["ARN"]
    return {"Ref": arn, "Id": arn}


def _glue_database(name: str, p: dict[str, Any], c: Clients) -> dict[str, Any]:
    p = _take(p, {"CatalogId", "DatabaseInput"})
    c("glue").create_database(CatalogId=p["CatalogId"], DatabaseInput=p["DatabaseInput"])
    return {"Ref": p["DatabaseInput"]["Name"]}


def _glue_job(name: str, p: dict[str, Any], c: Clients) -> dict[str, Any]:
    """A Glue job; its runs execute in-process (``local/glue.py``), so the sizing properties are recorded only."""
    p = _take(p, {"Name", "Role", "GlueVersion", "WorkerType", "NumberOfWorkers", "Timeout", "MaxRetries",
                  "ExecutionProperty", "Command", "DefaultArguments"})
    fields = {k: p[k] for k in ("Role", "GlueVersion", "WorkerType", "NumberOfWorkers", "Timeout", "MaxRetries",
                                "ExecutionProperty", "Command", "DefaultArguments") if k in p}
    job = c("glue").create_job(Name=p.get("Name", name), Description=p.get("Description", ""), **fields)
    return {"Ref": job["Name"]}


def _lake_location(name: str, p: dict[str, Any], c: Clients) -> dict[str, Any]:
    p = _take(p, {"ResourceArn", "UseServiceLinkedRole"})
    c("lakeformation").register_resource(ResourceArn=p["ResourceArn"], UseServiceLinkedRole=p["UseServiceLinkedRole"])
    return {"Ref": name}


def _lake_permissions(name: str, p: dict[str, Any], c: Clients) -> dict[str, Any]:
    p = _take(p, {"Catalog", "Principal", "Resource", "Permissions", "PermissionsWithGrantOption"})
    c("lakeformation").grant_permissions(Principal=p["Principal"], Resource=p["Resource"],
                                         Permissions=p["Permissions"],
                                         PermissionsWithGrantOption=p["PermissionsWithGrantOption"])
    return {"Ref": name, "PrincipalIdentifier": p["Principal"]["DataLakePrincipalIdentifier"]}


def _schedule_group(name: str, p: dict[str, Any], c: Clients) -> dict[str, Any]:
    p = _take(p, {"Name"})
    arn = c("scheduler").create_schedule_group(Name=p.get("Name", name))["ScheduleGroupArn"]
    return {"Ref": p.get("Name", name), "Arn": arn}


def _iam_role(name: str, p: dict[str, Any], c: Clients) -> dict[str, Any]:
    p = _take(p, {"RoleName", "AssumeRolePolicyDocument", "Policies", "Path"})
    role = c("iam").create_role(RoleName=p.get("RoleName", name), Path=p.get("Path", "/"),
                                AssumeRolePolicyDocument=json.dumps(p["AssumeRolePolicyDocument"]),
                                Description=p.get("Description", ""))["Role"]
    for policy in p.get("Policies", []):
        c("iam").put_role_policy(RoleName=role["RoleName"], PolicyName=policy["PolicyName"],
                                 PolicyDocument=json.dumps(policy["PolicyDocument"]))
    return {"Ref": role["RoleName"], "Arn": role["Arn"], "RoleId": role["RoleId"]}


def _state_machine(name: str, p: dict[str, Any], c: Clients) -> dict[str, Any]:
    p = _take(p, {"StateMachineName", "RoleArn", "DefinitionString", "DefinitionS3Location", "Definition",
                  "DefinitionSubstitutions", "TracingConfiguration"})
    sm_name = p.get("StateMachineName", name)
    args = {"name": sm_name, "roleArn": p["RoleArn"], "definition": render_definition(p)}
    if "TracingConfiguration" in p:
        args["tracingConfiguration"] = {"enabled": bool(p["TracingConfiguration"].get("Enabled"))}
    arn = c("stepfunctions").create_state_machine(**args)["stateMachineArn"]
    return {"Ref": arn, "Arn": arn, "Name": sm_name}


def render_definition(p: Mapping[str, Any]) -> str:
    """The state machine's ASL with ``DefinitionSubstitutions`` applied, as Step Functions would store it.

    ``DefinitionS3Location`` keys name files under ``infra/`` (the deploy uploads them there).
    """
    if "DefinitionS3Location" in p:
        text = (INFRA / p["DefinitionS3Location"]["Key"]).read_text()
    elif "Definition" in p:
        text = json.dumps(p["Definition"])
    else:
        text = p["DefinitionString"]
    for key, value in p.get("DefinitionSubstitutions", {}).items():
        text = text.replace("${" + key + "}", str(value))
    return text


def _application(name: str, p: dict[str, Any], c: Clients) -> dict[str, Any]:
    """An AppRegistry application, with its tags (moto keeps them, but has no call to read them back)."""
    p = _take(p, {"Name"})
    app = c("servicecatalog-appregistry").create_application(
        name=p["Name"], description=p.get("Description", ""), tags=p.get("Tags", {}))["application"]
    (tag_key, tag_value), = app["applicationTag"].items()
    return {"Ref": app["id"], "Id": app["id"], "Arn": app["arn"], "ApplicationName": app["name"],
            "ApplicationTagKey": tag_key, "ApplicationTagValue": tag_value}


def _resource_association(name: str, p: dict[str, Any], c: Clients) -> dict[str, Any]:
    """A stack associated with an application. As on AWS, the stack must exist as a CloudFormation stack; the local
    cloud's own stacks are provisioned here resource by resource, so none exists under their names unless made."""
    p = _take(p, {"Application", "ResourceType", "Resource"})
    appregistry = c("servicecatalog-appregistry")
    try:
        done = appregistry.associate_resource(application=p["Application"], resourceType=p["ResourceType"],
                                              resource=p["Resource"])
    except appregistry.exceptions.ResourceNotFoundException as exc:
        raise ProvisionError(exc.response["Error"]["Message"]) from None
    return {"Ref": f"{done['applicationArn']}|{done['resourceArn']}", "ApplicationArn": done["applicationArn"],
            "ResourceArn": done["resourceArn"]}


def _attribute_group(name: str, p: dict[str, Any], c: Clients) -> dict[str, Any]:
    """Not emulated: moto 5.2.5 has no AppRegistry attribute groups. The attributes are checked as AppRegistry
    would (a JSON object of at most 8,000 characters) and the group gets an id, but the emulated account keeps
    nothing; the stack's template and context still tell what it holds."""
    p = _take(p, {"Name", "Attributes"})
    if not isinstance(p["Attributes"], dict) or len(json.dumps(p["Attributes"])) > 8000:
        raise ProvisionError("Attributes must be a JSON object of at most 8000 characters")
    group_id = uuid.uuid5(uuid.NAMESPACE_URL, f"attribute-group/{p['Name']}").hex[:26]
    region = c("servicecatalog-appregistry").meta.region_name
    account = c("sts").get_caller_identity()["Account"]
    arn = f"arn:aws:servicecatalog:{region}:{account}:/attribute-groups/{group_id}"
    return {"Ref": group_id, "Id": group_id, "Arn": arn, "Name": p["Name"]}


def _attribute_group_association(name: str, p: dict[str, Any], c: Clients) -> dict[str, Any]:
    """Not emulated either (see :func:`_attribute_group`): the application must exist; the association is recorded
    in the stack's context only."""
    p = _take(p, {"Application", "AttributeGroup"})
    apps = c("servicecatalog-appregistry").list_applications()["applications"]
    app = next((a for a in apps if p["Application"] in (a["id"], a["name"], a["arn"])), None)
    if app is None:
        raise ProvisionError(f"no application {p['Application']}")
    return {"Ref": f"{app['arn']}|{p['AttributeGroup']}", "ApplicationArn": app["arn"],
            "AttributeGroupArn": p["AttributeGroup"]}


_ALARM_SETTINGS = {"AlarmName", "AlarmDescription", "ActionsEnabled", "AlarmActions", "OKActions",
                   "InsufficientDataActions", "Namespace", "MetricName", "Dimensions", "Statistic", "ExtendedStatistic",
                   "Period", "Unit", "Metrics", "EvaluationPeriods", "DatapointsToAlarm", "Threshold",
                   "ComparisonOperator", "ThresholdMetricId", "TreatMissingData", "EvaluateLowSampleCountPercentile"}


def _alarm(name: str, p: dict[str, Any], c: Clients) -> dict[str, Any]:
    """A CloudWatch alarm with its tags (the API's names are CloudFormation's). moto stores it as configured but
    never evaluates it, so it never changes state or notifies by itself."""
    p = _take(p, _ALARM_SETTINGS)
    args = {key: p[key] for key in _ALARM_SETTINGS | {"Tags"} if key in p}
    args.setdefault("AlarmName", name)
    cloudwatch = c("cloudwatch")
    cloudwatch.put_metric_alarm(**args)
    arn = cloudwatch.describe_alarms(AlarmNames=[args["AlarmName"]])["MetricAlarms"][0]["AlarmArn"]
    return {"Ref": args["AlarmName"], "Arn": arn}


def _dashboard(name: str, p: dict[str, Any], c: Clients) -> dict[str, Any]:
    """A CloudWatch dashboard (moto checks its body is JSON). moto tags alarms only: a dashboard's tags stay on AWS."""
    p = _take(p, {"DashboardName", "DashboardBody"})
    dashboard = p.get("DashboardName", name)
    c("cloudwatch").put_dashboard(DashboardName=dashboard, DashboardBody=p["DashboardBody"])
    return {"Ref": dashboard}


_CREATORS: dict[str, Creator] = {
    "AWS::KMS::Key": _kms_key,
    "AWS::KMS::Alias": _kms_alias,
    "AWS::SNS::Topic": _sns_topic,
    "AWS::SNS::Subscription": _sns_subscription,
    "AWS::SQS::Queue": _sqs_queue,
    "AWS::SQS::QueuePolicy": put_queue_policy,
    "AWS::S3::Bucket": _s3_bucket,
    "AWS::S3::BucketPolicy": put_bucket_policy,
    "AWS::Events::Rule": _events_rule,
    "AWS::DynamoDB::Table": _dynamodb_table,
    "AWS::SecretsManager::Secret": _secret,
    "AWS::Glue::Database": _glue_database,
    "AWS::Glue::Job": _glue_job,
    "AWS::LakeFormation::Resource": _lake_location,
    "AWS::LakeFormation::PrincipalPermissions": _lake_permissions,
    "AWS::Scheduler::ScheduleGroup": _schedule_group,
    "AWS::IAM::Role": _iam_role,
    "AWS::StepFunctions::StateMachine": _state_machine,
    "AWS::ServiceCatalogAppRegistry::Application": _application,
    "AWS::ServiceCatalogAppRegistry::ResourceAssociation": _resource_association,
    "AWS::ServiceCatalogAppRegistry::AttributeGroup": _attribute_group,
    "AWS::ServiceCatalogAppRegistry::AttributeGroupAssociation": _attribute_group_association,
    "AWS::CloudWatch::Alarm": _alarm,
    "AWS::CloudWatch::Dashboard": _dashboard,
}
