"""CloudFormation stacks created through the API, completed so that they behave as on AWS.

moto's CloudFormation (research/platform.md §6, checked against moto 5.2.5) creates an AWS::S3::Bucket with its
encryption (minus ``BucketKeyEnabled``) and tags only; skips AWS::S3::BucketPolicy, AWS::SQS::QueuePolicy and
AWS::Events::EventBusPolicy with a warning; stores an AWS::KMS::Key's policy as a dict, after which every KMS call on
the key fails; never deletes KMS keys; and deletes what an update removes even with ``DeletionPolicy: Retain``.

After moto creates or updates a stack, this patch applies the rest with the local provisioner's appliers
(``local/provision.py``). A resource type or property it does not know fails the stack (``CREATE_FAILED``,
``UPDATE_FAILED``, ``DELETE_FAILED``, the reason in ``StackStatusReason`` and in the stack's events) instead of
being dropped. Only the types a tenant stack uses are known; add others here once their behaviour is checked.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from moto.cloudformation import models as cfn_models
from moto.cloudformation.parsing import clean_json

from local import provision
from shared.aws import error_code

log = logging.getLogger(__name__)
Clients = Callable[[str], Any]
Handler = Callable[["_Resource"], "_Applied | None"]
_GONE = {"NoSuchBucket", "AWS.SimpleQueueService.NonExistentQueue", "ResourceNotFoundException"}
_KEY_PROPERTIES = {"KeyPolicy", "Description", "EnableKeyRotation", "Enabled", "PendingWindowInDays", "Tags"}
_RULE_PROPERTIES = {"Name", "Description", "EventPattern", "ScheduleExpression", "State", "RoleArn", "EventBusName",
                    "Targets", "Tags"}


class StackError(RuntimeError):
    """A resource the local cloud cannot create as CloudFormation would."""


@dataclass
class _Resource:
    stack: Any  # moto's Stack
    logical_id: str
    properties: dict[str, Any]
    clients: Clients

    @property
    def moto_model(self) -> Any:
        return self.stack.resource_map._parsed_resources.get(self.logical_id)


@dataclass
class _Applied:
    """A resource moto skipped and this patch applied. It sits in moto's resource map, so the stack lists it, a
    ``Ref`` resolves to it, and moto's delete (which honours ``DeletionPolicy``) undoes it."""

    logical_resource_id: str
    cf_resource_type: str
    physical_resource_id: str
    undo: Callable[[], None]

    def delete(self, account_id: str, region_name: str) -> None:
        self.undo()

    def is_created(self) -> bool:
        return True


class CloudFormationPatch:
    """Patches moto's stack create, update and delete; :meth:`uninstall` restores them."""

    def __init__(self) -> None:
        self._originals = (cfn_models.Stack.create_resources, cfn_models.Stack.update,
                           cfn_models.CloudFormationBackend.delete_stack)

    def install(self) -> None:
        create_resources, update, delete_stack = self._originals
        # moto warns that it skips these types; this patch applies them, so the warning would only mislead.
        skipped = r"Tried to parse AWS::(S3::BucketPolicy|SQS::QueuePolicy|Events::EventBusPolicy)"
        warnings.filterwarnings("ignore", category=UserWarning, message=skipped)

        def patched_create(stack: Any) -> None:
            create_resources(stack)
            _complete(stack, "CREATE")

        def patched_update(stack: Any, template: str, role_arn: str | None = None,
                           parameters: dict[str, Any] | None = None, tags: dict[str, str] | None = None) -> None:
            _update(stack, lambda: update(stack, template, role_arn, parameters, tags), template)

        def patched_delete(backend: Any, name_or_stack_id: str) -> None:
            _delete(backend, name_or_stack_id, lambda: delete_stack(backend, name_or_stack_id))

        cfn_models.Stack.create_resources = patched_create
        cfn_models.Stack.update = patched_update
        cfn_models.CloudFormationBackend.delete_stack = patched_delete

    def uninstall(self) -> None:
        (cfn_models.Stack.create_resources, cfn_models.Stack.update,
         cfn_models.CloudFormationBackend.delete_stack) = self._originals
        _client.cache_clear()


# -- create and update -------------------------------------------------------------------------------------------


def _complete(stack: Any, action: str) -> None:
    """Apply what moto skipped to every resource of the stack's current template; the first failure fails it."""
    clients = _clients(stack.account_id, stack.region_name)
    for logical_id, spec in stack.template_dict["Resources"].items():
        condition = spec.get("Condition")
        if condition and not stack.resource_map.lazy_condition_map[condition]:
            continue
        try:
            _apply(stack, logical_id, spec, clients)
        except Exception as exc:  # whatever the cause, the stack must fail visibly, as on AWS
            _fail(stack, action, logical_id, spec["Type"], f"{type(exc).__name__}: {exc}")
            return


def _apply(stack: Any, logical_id: str, spec: Mapping[str, Any], clients: Clients) -> None:
    handler = _HANDLERS.get(spec["Type"])
    if handler is None:
        raise StackError(f"resource type {spec['Type']} is not supported by the local cloud's CloudFormation "
                         "(local/cloudformation.py)")
    properties = clean_json(spec.get("Properties", {}), stack.resource_map)
    applied = handler(_Resource(stack, logical_id, properties, clients))
    if applied is not None:
        stack.resource_map._parsed_resources[logical_id] = applied


def _update(stack: Any, moto_update: Callable[[], None], template: str) -> None:
    old = copy.deepcopy(stack.template_dict["Resources"])  # moto's update replaces the template
    new = stack.parse_template(template)["Resources"]
    parsed = stack.resource_map._parsed_resources
    applied = {lid: r for lid, r in parsed.items() if isinstance(r, _Applied)}
    removed = [lid for lid in old if lid not in new]
    for lid in removed:  # moto would delete them regardless of their DeletionPolicy
        if old[lid].get("DeletionPolicy") == "Retain":
            parsed.pop(lid, None)
    _schedule_key_deletions(stack, {lid: old[lid] for lid in removed})
    moto_update()
    clients = _clients(stack.account_id, stack.region_name)
    try:
        for lid, resource in applied.items():  # moto forgets skipped resources it "updates": undo the old version
            if lid in new and new[lid] != old[lid]:
                resource.undo()
        _reset_removed_bucket_settings(stack, old, new, clients)
    except Exception as exc:  # as in _complete: fail visibly
        _fail(stack, "UPDATE", stack.name, "AWS::CloudFormation::Stack", f"{type(exc).__name__}: {exc}")
        return
    _complete(stack, "UPDATE")


# Removing a bucket property from the template removes the setting on AWS.
_BUCKET_RESETS: dict[str, Callable[[Any, str], Any]] = {
    "BucketEncryption": lambda s3, bucket: s3.delete_bucket_encryption(Bucket=bucket),
    "PublicAccessBlockConfiguration": lambda s3, bucket: s3.delete_public_access_block(Bucket=bucket),
    "OwnershipControls": lambda s3, bucket: s3.delete_bucket_ownership_controls(Bucket=bucket),
    "LifecycleConfiguration": lambda s3, bucket: s3.delete_bucket_lifecycle(Bucket=bucket),
    "LoggingConfiguration": lambda s3, bucket: s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={}),
    "NotificationConfiguration": lambda s3, bucket: s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={}),
}


def _reset_removed_bucket_settings(stack: Any, old: Mapping[str, Any], new: Mapping[str, Any],
                                   clients: Clients) -> None:
    for lid, spec in new.items():
        if spec["Type"] != "AWS::S3::Bucket" or old.get(lid, {}).get("Type") != "AWS::S3::Bucket":
            continue
        bucket = stack.resource_map._parsed_resources[lid].physical_resource_id
        for name in set(old[lid].get("Properties", {})) - set(spec.get("Properties", {})) - {"BucketName", "Tags"}:
            if name not in _BUCKET_RESETS:
                raise StackError(f"{lid}: removing {name} is not supported locally (versioning can only be "
                                 "suspended: set its Status to Suspended)")
            _BUCKET_RESETS[name](clients("s3"), bucket)


# -- delete ------------------------------------------------------------------------------------------------------


def _delete(backend: Any, name_or_stack_id: str, moto_delete: Callable[[], None]) -> None:
    stack = next((s for s in backend.stacks.values() if name_or_stack_id in (s.name, s.stack_id)), None)
    if stack is None:  # as on AWS, deleting a stack that does not exist succeeds
        moto_delete()
        return
    doomed_buckets = _doomed_buckets(stack)
    try:
        _schedule_key_deletions(stack, stack.template_dict["Resources"])
        moto_delete()
        _require_deleted(stack, doomed_buckets)
    except Exception as exc:  # e.g. a bucket that is not empty: the stack stays, DELETE_FAILED, as on AWS
        backend.deleted_stacks.pop(stack.stack_id, None)
        backend.stacks[stack.stack_id] = stack
        _fail(stack, "DELETE", stack.name, "AWS::CloudFormation::Stack", f"{type(exc).__name__}: {exc}")


def _doomed_buckets(stack: Any) -> dict[str, Any]:
    parsed = stack.resource_map._parsed_resources
    return {lid: parsed[lid] for lid, spec in stack.template_dict["Resources"].items()
            if spec["Type"] == "AWS::S3::Bucket" and spec.get("DeletionPolicy") != "Retain" and parsed.get(lid)}


def _require_deleted(stack: Any, buckets: Mapping[str, Any]) -> None:
    """moto reports a stack deleted even when a bucket of it is not empty and stays; CloudFormation fails, and
    deletes the bucket when the stack is deleted again."""
    s3 = _clients(stack.account_id, stack.region_name)("s3")
    existing = {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}
    left = {lid: model for lid, model in buckets.items() if model.physical_resource_id in existing}
    if left:
        stack.resource_map._parsed_resources.update(left)
        raise StackError(f"not empty, so not deleted: {', '.join(m.physical_resource_id for m in left.values())}")


def _schedule_key_deletions(stack: Any, specs: Mapping[str, Any]) -> None:
    """Schedule the deletion of the KMS keys among ``specs`` that CloudFormation deletes, as it does, and take them
    from moto, which would delete them at once (a key pending deletion can still be described and cancelled)."""
    parsed, kms = stack.resource_map._parsed_resources, _clients(stack.account_id, stack.region_name)("kms")
    for lid, spec in specs.items():
        if spec["Type"] == "AWS::KMS::Key" and spec.get("DeletionPolicy") != "Retain" and parsed.get(lid):
            days = int(spec.get("Properties", {}).get("PendingWindowInDays", 30))
            kms.schedule_key_deletion(KeyId=parsed.pop(lid).id, PendingWindowInDays=days)


# -- failure -----------------------------------------------------------------------------------------------------


def _fail(stack: Any, action: str, logical_id: str, resource_type: str, reason: str) -> None:
    """Mark the stack failed as CloudFormation would (without a rollback: what moto created stays, for a look)."""
    log.error("stack failed", extra={"stack": stack.name, "resource": logical_id, "reason": reason})
    status = f"{action}_FAILED"
    model = stack.resource_map._parsed_resources.get(logical_id)
    stack.events.append(cfn_models.Event(stack.stack_id, stack.name, logical_id,
                                         getattr(model, "physical_resource_id", ""), resource_type, status, reason,
                                         None))
    stack._add_stack_event(status, resource_status_reason=f"{logical_id}: {reason}")
    stack.status = status
    stack.stack_status_reason = f"{logical_id}: {reason}"


# -- resource types ----------------------------------------------------------------------------------------------


def _only(properties: Mapping[str, Any], known: set[str]) -> None:
    unknown = set(properties) - known
    if unknown:
        raise StackError(f"properties not supported locally: {', '.join(sorted(unknown))}")


def _bucket(r: _Resource) -> None:
    provision.apply_bucket_settings(r.moto_model.physical_resource_id, r.properties, r.clients("s3"))


def _bucket_policy(r: _Resource) -> _Applied:
    provision.put_bucket_policy(r.logical_id, r.properties, r.clients)
    bucket = r.properties["Bucket"]
    return _Applied(r.logical_id, "AWS::S3::BucketPolicy", bucket,
                    lambda: _unless_gone(lambda: r.clients("s3").delete_bucket_policy(Bucket=bucket)))


def _queue_policy(r: _Resource) -> _Applied:
    provision.put_queue_policy(r.logical_id, r.properties, r.clients)
    queues = list(r.properties["Queues"])

    def undo() -> None:
        for url in queues:
            _unless_gone(lambda url=url: r.clients("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""}))

    return _Applied(r.logical_id, "AWS::SQS::QueuePolicy", f"{r.stack.name}-{r.logical_id}", undo)


def _event_bus_policy(r: _Resource) -> _Applied:
    _only(r.properties, {"StatementId", "EventBusName", "Statement"})
    sid, bus = r.properties["StatementId"], r.properties.get("EventBusName", "default")
    policy = {"Version": "2012-10-17", "Statement": [{**r.properties["Statement"], "Sid": sid}]}
    r.clients("events").put_permission(EventBusName=bus, Policy=json.dumps(policy))
    return _Applied(r.logical_id, "AWS::Events::EventBusPolicy", sid, lambda: _unless_gone(
        lambda: r.clients("events").remove_permission(EventBusName=bus, StatementId=sid)))


def _kms_key(r: _Resource) -> None:
    _only(r.properties, _KEY_PROPERTIES)
    key = r.moto_model
    if key is None:  # moto's update of a changed key drops it from the stack
        raise StackError("changing an AWS::KMS::Key is not supported locally")
    if isinstance(key.policy, dict):  # moto's KMS parses the stored policy as JSON text on every call
        key.policy = json.dumps(key.policy)


def _checked(known: set[str]) -> Handler:
    """A type moto creates completely with these properties: only check for others."""
    return lambda r: _only(r.properties, known)


def _unless_gone(call: Callable[[], Any]) -> None:
    """Undo a setting, unless its resource was deleted first (deletion order is moto's)."""
    try:
        call()
    except Exception as exc:
        if error_code(exc) not in _GONE:
            raise


def _clients(account_id: str, region: str) -> Clients:
    """boto3 clients for the stack's account and region, reaching moto in-process."""
    return functools.partial(_client, account_id, region)


@functools.cache  # built once per account, region and service: a client costs ~100 ms to make
def _client(account_id: str, region: str, service: str) -> Any:
    made = boto3.session.Session().client(service, region_name=region)
    made.meta.events.register("before-sign", lambda request, **_: request.headers.__setitem__(
        "x-moto-account-id", account_id))
    return made


_HANDLERS: dict[str, Handler] = {
    "AWS::S3::Bucket": _bucket,
    "AWS::S3::BucketPolicy": _bucket_policy,
    "AWS::SQS::QueuePolicy": _queue_policy,
    "AWS::Events::EventBusPolicy": _event_bus_policy,
    "AWS::Events::Rule": _checked(_RULE_PROPERTIES),
    "AWS::KMS::Key": _kms_key,
    "AWS::KMS::Alias": _checked({"AliasName", "TargetKeyId"}),
    "AWS::IAM::Role": _checked({"RoleName", "AssumeRolePolicyDocument", "Policies", "Path", "Description",
                                "ManagedPolicyArns", "Tags"}),  # moto applies a role and its inline policies
}
