"""The tenant service's requests: what each one checks, starts or answers.

Checks that need the platform (is the bucket there, is it someone else's) happen here, before anything is
created, so a rejected request leaves nothing half-made.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from chalicelib.contracts import AddTenant, GetTenant, ListTenants, OffboardTenant, UpdateTenant
from chalicelib.deps import TenantService
from chalicelib.model import Pattern, Platform, Tenant
from chalicelib.registry import OFFBOARDED, ONBOARDING, Registry, revoke_lake_access
from shared.aws import error_code
from shared.contracts import ContractError, FieldError
from shared.orchestration import execution_name, start_execution
from shared.requests import RequestContext
from shared.status import PLATFORM_TENANT, Status

log = logging.getLogger(__name__)
LISTED_AT_MOST = 200
CHECKS_ALLOWED = 120  # checks of the stacks, waitSeconds apart, before onboarding gives up
WAIT_SECONDS = 5


def add(request: AddTenant, ctx: RequestContext, deps: TenantService) -> None:
    """Start onboarding (or updating in place) the tenant; its bucket is claimed for it first."""
    platform, registry = deps.platform, deps.registry
    tenant = Tenant.from_request(request.customer_details, platform)
    _check(tenant, request, platform, registry, deps.client("s3"))
    if not registry.claim_bucket(tenant):
        raise _bucket_taken(request, registry.bucket_owner(tenant.bucket_name), tenant.bucket_name)
    state = {"service": ctx.service, "requestType": ctx.request_type, "requestId": ctx.request_id,
             "tenantId": tenant.customer_id, "tenant": tenant.to_json(), "waitSeconds": WAIT_SECONDS,
             "maxChecks": CHECKS_ALLOWED}
    arn, started = start_execution(deps.client("stepfunctions"), deps.settings.state_machine_arn("onboarding"),
                                   execution_name(ctx.request_type, tenant.customer_id, ctx.request_id), state)
    log.info("onboarding started" if started else "onboarding already running", extra={"execution": arn})


def get(request: GetTenant, ctx: RequestContext, deps: TenantService) -> None:
    record = _existing(deps.registry, request.customer_id)
    deps.answer(ctx, request.customer_id, Status.SUCCEEDED, f"tenant {request.customer_id} is {record['status']}",
                {"tenant": _public(record)})


def list_all(request: ListTenants, ctx: RequestContext, deps: TenantService) -> None:
    """The tenants, in one notification: the first LISTED_AT_MOST of them (SNS messages are at most 256 KB)."""
    records = deps.registry.all()
    deps.answer(ctx, PLATFORM_TENANT, Status.SUCCEEDED, f"{len(records)} tenants",
                {"tenants": [_public(r) for r in records[:LISTED_AT_MOST]], "truncated": len(records) > LISTED_AT_MOST})


def offboard(request: OffboardTenant, ctx: RequestContext, deps: TenantService) -> None:
    """Remove the tenant's schedules, configuration, grants, notification address and stacks; keep its bucket and
    data (the bucket and its key are retained by the stack). Offboarding an offboarded tenant changes nothing."""
    registry = deps.registry
    record = _existing(registry, request.customer_id)
    if record["status"] == ONBOARDING:
        raise ContractError(request.request_type, [FieldError(
            "customer_id", "a tenant not being onboarded right now: retry when it has finished", record["status"])])
    platform, tenant = deps.platform, Tenant.from_json(record.get("applied") or record["tenant"])
    if record["status"] != OFFBOARDED:
        _delete_schedule_group(deps.client("scheduler"), tenant.schedule_group(platform))
        registry.unregister(tenant.customer_id, tenant.bucket_name)
        if record.get("database"):
            revoke_lake_access(deps.client("lakeformation"), record["database"], platform)
        if record.get("emailSubscriptionArn", "").startswith("arn:"):
            deps.client("sns").unsubscribe(SubscriptionArn=record["emailSubscriptionArn"])
        for stack in record.get("appliedStacks", []):
            deps.client("cloudformation", stack["region"]).delete_stack(StackName=stack["name"],
                                                                         RoleARN=platform.stacks_role_arn)
        registry.mark(tenant, OFFBOARDED, ctx.request_id, emailSubscriptionArn=None, emailSubscribedTo=None)
    deps.answer(ctx, tenant.customer_id, Status.SUCCEEDED,
                f"tenant {tenant.customer_id} offboarded; s3://{tenant.bucket_name} and its data are kept")


def _check(tenant: Tenant, request: AddTenant, platform: Platform, registry: Registry, s3: Any) -> None:
    errors = []
    owner = registry.bucket_owner(tenant.bucket_name)
    if owner not in (None, tenant.customer_id):  # nothing else about someone else's bucket matters
        raise _bucket_taken(request, owner, tenant.bucket_name)
    if isinstance(request, UpdateTenant) and registry.get(tenant.customer_id) is None:
        errors.append(FieldError("customer_details.customer_id", "an onboarded tenant (use addTenant to add one)",
                                 tenant.customer_id))
    if not tenant.bucket_exists and tenant.pattern is Pattern.CROSS_ACCOUNT:
        errors.append(FieldError("customer_details.bucket_exists", "true for a bucket of another account: the "
                                 "platform creates buckets only in its own account", False))
    if tenant.bucket_name.startswith("amci-"):  # any stage's: the tenant policy denies wiring them
        errors.append(FieldError("customer_details.amc.bucket_name", "an AMC bucket, not one of the platform's own",
                                 tenant.bucket_name))
    elif tenant.pattern is Pattern.EXISTING_BUCKET and not _bucket_exists(s3, tenant.bucket_name):
        errors.append(FieldError("customer_details.amc.bucket_name", "an existing bucket of this account "
                                 "(bucket_exists is true); set bucket_exists to false to have it created",
                                 tenant.bucket_name))
    elif tenant.pattern is Pattern.NEW_BUCKET and owner is None and _bucket_exists(s3, tenant.bucket_name):
        errors.append(FieldError("customer_details.bucket_exists", "true: the bucket exists already (kept from an "
                                 "earlier onboarding, or created outside the platform)", False))
    if errors:
        raise ContractError(request.request_type, errors)


def _bucket_taken(request: AddTenant, owner: str | None, bucket: str) -> ContractError:
    return ContractError(request.request_type, [FieldError(
        "customer_details.amc.bucket_name", f"a bucket no other tenant uses ({owner} does)", bucket)])


def _bucket_exists(s3: Any, bucket: str) -> bool:
    try:
        s3.head_bucket(Bucket=bucket)
        return True
    except s3.exceptions.ClientError as exc:
        if error_code(exc) in ("404", "NoSuchBucket", "403"):
            return False
        raise


def _existing(registry: Registry, customer_id: str) -> dict[str, Any]:
    record = registry.get(customer_id)
    if record is None:
        raise ContractError("tenant", [FieldError("customer_id", "an onboarded tenant", customer_id)])
    return record


def _delete_schedule_group(scheduler: Any, group: str) -> None:
    with contextlib.suppress(scheduler.exceptions.ResourceNotFoundException):  # none yet, or already gone
        scheduler.get_schedule_group(Name=group)  # asked first: moto fails on deleting a missing group
        scheduler.delete_schedule_group(Name=group)  # deletes the group's schedules with it


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("tenant", "applied", "emailSubscriptionArn")}
