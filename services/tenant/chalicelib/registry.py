"""Where a tenant is registered: its own record, the workflow manager's view of it, the data lake's view of its
bucket (documented records other services read), its notification address, and its Lake Formation grants."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from chalicelib.model import Platform, Tenant

ACTIVE, ONBOARDING, FAILED, OFFBOARDED = "ACTIVE", "ONBOARDING", "FAILED", "OFFBOARDED"
TENANT_DATABASE_PERMISSIONS = ["DESCRIBE"]
TENANT_TABLE_PERMISSIONS = ["SELECT", "DESCRIBE"]
STAGE_B_DATABASE_PERMISSIONS = ["CREATE_TABLE", "ALTER", "DESCRIBE"]  # it creates the tenant's tables, then owns them


class Registry:
    """The three tables a tenant is written to, by the tenant service only."""

    def __init__(self, tenants: Any, workflow_tenants: Any, datalake_tenants: Any) -> None:
        self.tenants, self.workflow_tenants, self.datalake_tenants = tenants, workflow_tenants, datalake_tenants

    def get(self, customer_id: str) -> dict[str, Any] | None:
        return self.tenants.get_item(Key={"customerId": customer_id}, ConsistentRead=True).get("Item")

    def all(self) -> list[dict[str, Any]]:
        items, kwargs = [], {}
        while True:
            page = self.tenants.scan(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return sorted(items, key=lambda item: item["customerId"])
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def bucket_owner(self, bucket: str) -> str | None:
        """The tenant whose AMC bucket ``bucket`` is, if any."""
        item = self.datalake_tenants.get_item(Key={"bucket": bucket}, ConsistentRead=True).get("Item")
        return item["customerId"] if item else None

    def mark(self, tenant: Tenant, status: str, request_id: str, **extra: Any) -> None:
        """Record the tenant as requested, with ``status``. ``extra`` attributes set to None are removed; the
        attributes not named (e.g. the configuration last applied) are kept."""
        values = {**_record(tenant), "status": status, "requestId": request_id, "updatedAt": int(time.time()),
                  **{k: v for k, v in extra.items() if v is not None}}
        removed = [k for k, v in extra.items() if v is None]
        names = {f"#{i}": name for i, name in enumerate([*values, *removed])}
        expression = "SET " + ", ".join(f"#{i} = :{i}" for i in range(len(values)))
        if removed:
            expression += " REMOVE " + ", ".join(f"#{i}" for i in range(len(values), len(names)))
        self.tenants.update_item(Key={"customerId": tenant.customer_id}, UpdateExpression=expression,
                                 ExpressionAttributeNames=names,
                                 ExpressionAttributeValues={f":{i}": v for i, v in enumerate(values.values())})

    def claim_bucket(self, tenant: Tenant) -> bool:
        """Reserve the tenant's bucket for it, atomically: False when another tenant holds it."""
        try:
            self.datalake_tenants.put_item(
                Item={"bucket": tenant.bucket_name, "customerId": tenant.customer_id},
                ConditionExpression="attribute_not_exists(#bucket) OR customerId = :me",
                ExpressionAttributeNames={"#bucket": "bucket"}, ExpressionAttributeValues={":me": tenant.customer_id})
        except self.datalake_tenants.meta.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def register(self, tenant: Tenant, platform: Platform) -> None:
        """The workflow manager's and the data lake's records of the tenant."""
        self.workflow_tenants.put_item(Item={
            "customerId": tenant.customer_id, "amcInstanceId": tenant.instance_id,
            "amcAmazonAdsAdvertiserId": tenant.advertiser_id, "amcAmazonAdsMarketplaceId": tenant.marketplace_id,
            "authId": tenant.auth_id or "default", "scheduleGroup": tenant.schedule_group(platform),
            "concurrencyLimit": tenant.max_concurrent_executions})
        self.datalake_tenants.put_item(Item={
            "bucket": tenant.bucket_name, "customerId": tenant.customer_id, "dataset": "amc", "team": "adtech",
            "prefix": tenant.customer_id, "database": tenant.database_name(platform)})

    def unregister(self, customer_id: str, bucket: str) -> None:
        self.workflow_tenants.delete_item(Key={"customerId": customer_id})
        self.release_bucket(customer_id, bucket)

    def release_bucket(self, customer_id: str, bucket: str) -> None:
        """Forget that ``bucket`` is the tenant's (only if it still is)."""
        with contextlib.suppress(self.datalake_tenants.meta.client.exceptions.ConditionalCheckFailedException):
            self.datalake_tenants.delete_item(Key={"bucket": bucket}, ConditionExpression="customerId = :me",
                                              ExpressionAttributeValues={":me": customer_id})


def subscribe_email(sns: Any, topic_arn: str, tenant: Tenant) -> str:
    """The tenant's own address receives the status notifications about it only (a filter on ``tenantId``)."""
    return str(sns.subscribe(TopicArn=topic_arn, Protocol="email", Endpoint=tenant.notification_email,
                             ReturnSubscriptionArn=True,
                             Attributes={"FilterPolicy": json.dumps({"tenantId": [tenant.customer_id]})}
                             )["SubscriptionArn"])


def grant_lake_access(glue: Any, lakeformation: Any, tenant: Tenant, platform: Platform) -> str:
    """The tenant's Glue database, readable by the analyst role and written by stage B through Lake Formation
    (this function creates the database, and a database's creator may grant on it); returns its name."""
    database = tenant.database_name(platform)
    with contextlib.suppress(glue.exceptions.AlreadyExistsException):  # kept from an earlier onboarding
        glue.create_database(DatabaseInput={"Name": database,
                                            "Description": f"AMC results of tenant {tenant.customer_id}"})
    for principal, resource, permissions in _lake_grants(database, platform):
        lakeformation.grant_permissions(Principal=principal, Resource=resource, Permissions=permissions)
    return database


def revoke_lake_access(lakeformation: Any, database: str, platform: Platform) -> None:
    gone = (lakeformation.exceptions.InvalidInputException, lakeformation.exceptions.EntityNotFoundException)
    for principal, resource, permissions in _lake_grants(database, platform):
        with contextlib.suppress(*gone):  # already revoked: offboarding is idempotent
            lakeformation.revoke_permissions(Principal=principal, Resource=resource, Permissions=permissions)


def _lake_grants(database: str, platform: Platform) -> list[tuple[dict[str, str], dict[str, Any], list[str]]]:
    analyst = {"DataLakePrincipalIdentifier": platform.analyst_role_arn}
    return [(analyst, {"Database": {"Name": database}}, TENANT_DATABASE_PERMISSIONS),
            (analyst, {"Table": {"DatabaseName": database, "TableWildcard": {}}}, TENANT_TABLE_PERMISSIONS),
            ({"DataLakePrincipalIdentifier": platform.stage_b_role_arn}, {"Database": {"Name": database}},
             STAGE_B_DATABASE_PERMISSIONS)]


def _record(tenant: Tenant) -> dict[str, Any]:
    return {"customerName": tenant.customer_name, "authId": tenant.auth_id or "default",
            "bucketName": tenant.bucket_name, "bucketExists": tenant.bucket_exists,
            "bucketAccount": tenant.bucket_account, "bucketRegion": tenant.bucket_region,
            "amcOrangeAwsAccount": tenant.amc_account_id, "amcInstanceId": tenant.instance_id,
            "amcAmazonAdsAdvertiserId": tenant.advertiser_id, "amcAmazonAdsMarketplaceId": tenant.marketplace_id,
            "pattern": str(tenant.pattern), "tenant": tenant.to_json(),
            **({"notificationEmail": tenant.notification_email} if tenant.notification_email else {})}
