"""A tenant as the platform sees it: the customer's request, the platform it joins, and the bucket pattern that
decides what onboarding builds (the AWS Solution's three: a new bucket, an existing bucket of this account in
this or another region, a bucket of another account)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from chalicelib.contracts import CustomerDetails
from shared.config import require


class Pattern(StrEnum):
    NEW_BUCKET = "NEW_BUCKET"
    EXISTING_BUCKET = "EXISTING_BUCKET"
    CROSS_ACCOUNT = "CROSS_ACCOUNT"


@dataclass(frozen=True)
class Platform:
    """Where the platform runs and what a tenant's wiring points at; read from the function's environment."""

    stage: str
    account_id: str
    region: str
    events_queue_arn: str
    events_dlq_arn: str
    access_logs_bucket: str
    artifact_bucket: str
    analyst_role_arn: str
    stage_b_role_arn: str  # writes the tenant's tables into its database
    stacks_role_arn: str  # what CloudFormation acts as for tenant stacks

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Platform:
        queue_arn = require("DATALAKE_EVENTS_QUEUE_ARN", environ)
        _, _, _, region, account_id, _ = queue_arn.split(":")
        return cls(stage=require("STAGE", environ), account_id=account_id, region=region,
                   events_queue_arn=queue_arn, events_dlq_arn=require("DATALAKE_EVENTS_DLQ_ARN", environ),
                   access_logs_bucket=require("ACCESS_LOGS_BUCKET", environ),
                   artifact_bucket=require("ARTIFACT_BUCKET", environ),
                   analyst_role_arn=require("ANALYST_ROLE_ARN", environ),
                   stage_b_role_arn=require("STAGE_B_JOB_ROLE_ARN", environ),
                   stacks_role_arn=require("TENANT_STACKS_ROLE_ARN", environ))


@dataclass(frozen=True)
class Tenant:
    """One AMC instance of one customer, with its defaults filled in; travels through the state machine as JSON."""

    customer_id: str
    customer_name: str
    auth_id: str | None
    bucket_name: str
    bucket_exists: bool
    bucket_account: str
    bucket_region: str
    amc_account_id: str
    instance_id: str
    advertiser_id: str
    marketplace_id: str
    notification_email: str | None
    pattern: Pattern
    max_concurrent_executions: int = 10

    @classmethod
    def from_request(cls, details: CustomerDetails, platform: Platform) -> Tenant:
        account = details.bucket_account or platform.account_id
        pattern = (Pattern.CROSS_ACCOUNT if account != platform.account_id
                   else Pattern.EXISTING_BUCKET if details.bucket_exists else Pattern.NEW_BUCKET)
        return cls(customer_id=details.customer_id, customer_name=details.customer_name, auth_id=details.auth_id,
                   bucket_name=details.amc.bucket_name, bucket_exists=details.bucket_exists, bucket_account=account,
                   bucket_region=details.bucket_region or platform.region,
                   amc_account_id=details.amc.aws_orange_account_id, instance_id=details.amc.instance_id,
                   advertiser_id=details.amc.amazon_ads_advertiser_id,
                   marketplace_id=details.amc.amazon_ads_marketplace_id,
                   notification_email=details.notification_email, pattern=pattern,
                   max_concurrent_executions=details.max_concurrent_executions)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Tenant:
        return cls(**{**data, "pattern": Pattern(data["pattern"])})

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "pattern": str(self.pattern)}

    def resource_name(self, platform: Platform) -> str:
        """The base of the names of the tenant's stacks, rules and statements (the platform's IAM and queue
        policies match on it)."""
        return f"amci-{platform.stage}-tenant-{self.customer_id}"

    def stack_name(self, platform: Platform, region: str) -> str:
        """One stack per region the tenant needs resources in (the bucket's, and the platform's for routing)."""
        base = self.resource_name(platform)
        return base if region == platform.region else f"{base}-{region}"

    def database_name(self, platform: Platform) -> str:
        """The tenant's Glue database: Glue names take lowercase letters, digits and underscores."""
        return re.sub(r"[^a-z0-9_]", "_", f"amci_{platform.stage}_{self.customer_id}")

    def schedule_group(self, platform: Platform) -> str:
        return f"amci-{platform.stage}-{self.customer_id}"


