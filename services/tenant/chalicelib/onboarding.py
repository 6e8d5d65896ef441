"""The onboarding state machine's tasks: deploy the tenant's stacks, check them, wire and register the tenant.

Each task takes the execution's state (``tenant``, ``stacks``...) and returns it updated. Stack operations are
idempotent: an unchanged template is not sent again, so a redelivered request makes no second stack operation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from chalicelib import stacks
from chalicelib.model import Pattern, Platform, Tenant
from chalicelib.registry import ACTIVE, FAILED, ONBOARDING, Registry, grant_lake_access, subscribe_email
from shared.aws import error_code

log = logging.getLogger(__name__)
ClientFor = Callable[..., Any]  # aws.client(service, region)
_DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
_BUSY_SUFFIX = "_IN_PROGRESS"


class StackBusy(Exception):
    """A stack operation is under way; Step Functions retries the task later."""


class StackFailed(Exception):
    """A tenant stack could not be created or updated."""


def deploy(state: dict[str, Any], platform: Platform, registry: Registry, client_for: ClientFor) -> dict[str, Any]:
    """Create or update each of the tenant's stacks (skipping unchanged ones)."""
    tenant = Tenant.from_json(state["tenant"])
    registry.mark(tenant, ONBOARDING, state["requestId"])  # here, not on receipt: a late redelivery starts nothing
    deployed = []
    for region, template in stacks.templates(tenant, platform).items():
        name = tenant.stack_name(platform, region)
        operation = _create_or_update(client_for("cloudformation", region), name, template,
                                      stack_tags(tenant, platform), platform.stacks_role_arn)
        deployed.append({"region": region, "name": name, "operation": operation})
        log.info("tenant stack", extra={"stack": name, "operation": operation})
    return {**state, "stacks": deployed, "checks": 0, "stacksStatus": "IN_PROGRESS"}


def check(state: dict[str, Any], client_for: ClientFor) -> dict[str, Any]:
    """Whether every stack is done; raise StackFailed with CloudFormation's reason when one failed. An unchanged
    stack is done whatever its last operation left (e.g. an earlier update rolled back to it)."""
    statuses = [_status(client_for("cloudformation", s["region"]), s["name"]) for s in state["stacks"]
                if s["operation"] != "UNCHANGED"]
    done = all(status in _DONE for status in statuses)
    return {**state, "checks": int(state.get("checks", 0)) + 1, "stacksStatus": "COMPLETE" if done else "IN_PROGRESS"}


def register(state: dict[str, Any], platform: Platform, registry: Registry, client_for: ClientFor,
             status_topic_arn: str) -> dict[str, Any]:
    """Wire an existing bucket, register the tenant for every service, grant its lake access; the summary."""
    tenant = Tenant.from_json(state["tenant"])
    if tenant.pattern is Pattern.EXISTING_BUCKET:
        wire_existing_bucket(client_for("s3", tenant.bucket_region), tenant)
    owner_template = None
    if tenant.pattern is Pattern.CROSS_ACCOUNT:
        owner_template = _publish_owner_template(client_for("s3", None), tenant, platform)
    previous = registry.get(tenant.customer_id) or {}
    applied = previous.get("applied")
    if applied and applied["bucket_name"] != tenant.bucket_name:  # the tenant moved to another bucket
        registry.release_bucket(tenant.customer_id, applied["bucket_name"])
    registry.register(tenant, platform)
    database = grant_lake_access(client_for("glue", None), client_for("lakeformation", None), tenant, platform)
    email = _email_subscription(client_for("sns", None), status_topic_arn, tenant, previous)
    registry.mark(tenant, ACTIVE, state["requestId"], database=database, ownerTemplate=owner_template,
                  applied=tenant.to_json(), appliedStacks=[{"region": s["region"], "name": s["name"]}
                                                           for s in state["stacks"]], lastError=None, **email)
    summary = f"tenant {tenant.customer_id} onboarded: s3://{tenant.bucket_name} ({tenant.pattern}) feeds the lake"
    details: dict[str, Any] = {"database": database}
    if owner_template:
        summary += f"; the bucket owner must deploy the template in the details (also at {owner_template})"
        details["bucketOwnerTemplate"] = owner_template
        details["bucketOwnerTemplateBody"] = stacks.bucket_owner_template(tenant, platform)
    return {**state, "summary": summary, **details}


def mark_failed(state: dict[str, Any], registry: Registry) -> dict[str, Any]:
    """FAILED for a tenant never onboarded; a tenant whose update failed stays ACTIVE as it was, with the error."""
    reason = state.get("error", {})
    error = f"{reason.get('Error')}: {reason.get('Cause')}"[:1000]
    applied = (registry.get(state["tenantId"]) or {}).get("applied")
    if applied:
        registry.mark(Tenant.from_json(applied), ACTIVE, state["requestId"], lastError=error)
    else:
        registry.mark(Tenant.from_json(state["tenant"]), FAILED, state["requestId"], lastError=error)
    return state


def _email_subscription(sns: Any, topic_arn: str, tenant: Tenant, previous: dict[str, Any]) -> dict[str, Any]:
    """Subscribe the tenant's address (replacing an earlier one); the record's attributes for it."""
    if previous.get("emailSubscribedTo") == tenant.notification_email:
        return {}
    if previous.get("emailSubscriptionArn", "").startswith("arn:"):
        sns.unsubscribe(SubscriptionArn=previous["emailSubscriptionArn"])
    if not tenant.notification_email:
        return {"emailSubscriptionArn": None, "emailSubscribedTo": None}
    return {"emailSubscriptionArn": subscribe_email(sns, topic_arn, tenant),
            "emailSubscribedTo": tenant.notification_email}


def wire_existing_bucket(s3: Any, tenant: Tenant) -> None:
    """What the data lake needs from a bucket the platform did not create: EventBridge notifications on (the
    AWS Solution's issue #10: results in an existing bucket were never processed) and AMC's delivery statement.
    Other notification targets and policy statements are kept."""
    configuration = s3.get_bucket_notification_configuration(Bucket=tenant.bucket_name)
    configuration.pop("ResponseMetadata", None)
    configuration["EventBridgeConfiguration"] = {}
    s3.put_bucket_notification_configuration(Bucket=tenant.bucket_name, NotificationConfiguration=configuration)
    try:
        policy = json.loads(s3.get_bucket_policy(Bucket=tenant.bucket_name)["Policy"])
    except s3.exceptions.ClientError as exc:
        if error_code(exc) != "NoSuchBucketPolicy":
            raise
        policy = {"Version": "2012-10-17", "Statement": []}
    statements = [s for s in policy["Statement"] if s.get("Sid") != stacks.DELIVERY_SID]
    policy["Statement"] = [*statements, stacks.delivery_statement(tenant)]
    s3.put_bucket_policy(Bucket=tenant.bucket_name, Policy=json.dumps(policy))


def stack_tags(tenant: Tenant, platform: Platform) -> dict[str, str]:
    """A tenant stack's tags, which CloudFormation gives each of its resources that takes tags: the cost allocation
    tags of every stack of the stage (``amci:stage``, ``amci:component``, as the deploy tags its own), and the
    tenant's."""
    return {"amci:stage": platform.stage, "amci:component": "tenant-stack", "amci:tenant": tenant.customer_id,
            "amci:service": "tenant"}


def _create_or_update(cloudformation: Any, name: str, template: dict[str, Any], tags: dict[str, str],
                      role_arn: str) -> str:
    body = json.dumps(template, sort_keys=True)
    operation = {"StackName": name, "TemplateBody": body, "Capabilities": ["CAPABILITY_IAM"], "RoleARN": role_arn,
                 "Tags": [{"Key": key, "Value": value} for key, value in tags.items()]}
    try:
        current = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    except cloudformation.exceptions.ClientError as exc:
        if error_code(exc) != "ValidationError":  # CloudFormation's answer for a stack that does not exist
            raise
        return _create(cloudformation, operation)
    status = current["StackStatus"]
    if status.endswith(_BUSY_SUFFIX):
        raise StackBusy(f"stack {name} is {status}")
    if status == "ROLLBACK_COMPLETE":  # a failed creation leaves a stack that can only be deleted
        cloudformation.delete_stack(StackName=name, RoleARN=role_arn)
        raise StackBusy(f"stack {name} failed to create before; deleting it to create it again")
    if status.endswith("_FAILED"):
        raise StackFailed(f"stack {name} is {status} and needs a person: {current.get('StackStatusReason', '')}")
    current_tags = {t["Key"]: t["Value"] for t in current.get("Tags", [])}
    if _as_data(cloudformation.get_template(StackName=name)["TemplateBody"]) == template and \
            tags.items() <= current_tags.items():  # a stack tagged before a tag was added gets it
        return "UNCHANGED"
    cloudformation.update_stack(**operation)
    return "UPDATE"


def _create(cloudformation: Any, operation: dict[str, Any]) -> str:
    try:
        cloudformation.create_stack(**operation)
    except cloudformation.exceptions.AlreadyExistsException:  # a concurrent onboarding of the same tenant
        raise StackBusy(f"stack {operation['StackName']} is being created by another request") from None
    return "CREATE"


def _as_data(body: Any) -> Any:
    """A stored template: boto3 hands back a JSON template already parsed (a dict), YAML as text."""
    return json.loads(body) if isinstance(body, str) else json.loads(json.dumps(body))


def _status(cloudformation: Any, name: str) -> str:
    stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    status = stack["StackStatus"]
    if status in _DONE or status.endswith(_BUSY_SUFFIX):
        return status
    raise StackFailed(f"stack {name} is {status}: {stack.get('StackStatusReason', 'see its events')}")


def _publish_owner_template(s3: Any, tenant: Tenant, platform: Platform) -> str:
    key = f"tenants/{tenant.customer_id}/bucket-owner-template.json"
    s3.put_object(Bucket=platform.artifact_bucket, Key=key, ContentType="application/json",
                  Body=json.dumps(stacks.bucket_owner_template(tenant, platform), indent=2).encode())
    return f"s3://{platform.artifact_bucket}/{key}"
