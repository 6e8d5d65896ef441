"""The tenant service's requests. ``addTenant`` accepts the AWS Solution's payload unchanged
(``{"customer_details": {...}}``, with ``bucket_exists`` as the string "true"/"false" as it sent it)."""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping
from typing import Any, Literal

import boto3
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.amazon.regions import MARKETPLACES
from shared.contracts import AUTH_ID_PATTERN, CUSTOMER_ID_PATTERN, Request
from shared.status import PLATFORM_TENANT

ACCOUNT_ID = r"^\d{12}$"
REGION = r"^[a-z]{2}(-gov)?-[a-z]+-\d$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AmcDetails(_Strict):
    aws_orange_account_id: str = Field(pattern=ACCOUNT_ID, description="The AMC account that delivers results")
    bucket_name: str = Field(min_length=3, max_length=63)
    instance_id: str = Field(pattern=r"^amc[a-z0-9]{4,29}$")
    amazon_ads_advertiser_id: str = Field(pattern=r"^[A-Za-z0-9]{1,64}$")
    amazon_ads_marketplace_id: str

    @field_validator("bucket_name")
    @classmethod
    def _bucket_name(cls, value: str) -> str:
        if not valid_bucket_name(value):
            raise ValueError("a valid S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens, starting "
                             "and ending with a letter or digit, not an IP address")
        return value

    @field_validator("amazon_ads_marketplace_id")
    @classmethod
    def _marketplace(cls, value: str) -> str:
        if value not in MARKETPLACES:
            raise ValueError(f"an Amazon marketplace id, e.g. ATVPDKIKX0DER (US); {value!r} is not one")
        return value


class CustomerDetails(_Strict):
    customer_id: str = Field(pattern=CUSTOMER_ID_PATTERN, description="Lowercase letters, digits, hyphens; 2-30")
    customer_name: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")
    auth_id: str | None = Field(None, pattern=AUTH_ID_PATTERN)
    bucket_exists: bool = True
    bucket_account: str | None = Field(None, pattern=ACCOUNT_ID)
    bucket_region: str | None = Field(None, pattern=REGION)
    notification_email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)
    max_concurrent_executions: int = Field(10, ge=1, le=10, description="AMC executions at once (AMC allows 10)")
    amc: AmcDetails

    @field_validator("customer_id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == PLATFORM_TENANT:  # the platform's own schedule group, and the tenantId of its notifications
            raise ValueError(f"a customer id other than {PLATFORM_TENANT!r}, which names the platform itself")
        return value

    @field_validator("bucket_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and value not in _regions():
            raise ValueError(f"an AWS region where CloudFormation runs, e.g. us-east-1; {value!r} is not one")
        return value

    @field_validator("bucket_exists", mode="before")
    @classmethod
    def _bucket_exists(cls, value: Any) -> Any:
        if isinstance(value, str) and value.lower() in ("true", "false"):  # the AWS Solution sends strings
            return value.lower() == "true"
        return value


class AddTenant(Request):
    """Onboard (or update in place) the AMC instance of one customer."""

    request_type = "addTenant"
    requestType: Literal["addTenant"] = "addTenant"
    customer_details: CustomerDetails


class UpdateTenant(AddTenant):
    """Like addTenant, for a tenant that must already exist."""

    request_type = "updateTenant"
    requestType: Literal["updateTenant"] = "updateTenant"  # type: ignore[assignment]


class GetTenant(Request):
    request_type = "getTenant"
    requestType: Literal["getTenant"]
    customer_id: str = Field(pattern=CUSTOMER_ID_PATTERN)


class ListTenants(Request):
    request_type = "listTenants"
    requestType: Literal["listTenants"]


class OffboardTenant(Request):
    """Remove a tenant's wiring, configuration and grants; its bucket and data stay."""

    request_type = "offboardTenant"
    requestType: Literal["offboardTenant"]
    customer_id: str = Field(pattern=CUSTOMER_ID_PATTERN)


@functools.cache
def _regions() -> frozenset[str]:
    return frozenset(boto3.session.Session().get_available_regions("cloudformation"))


def classify(raw: Mapping[str, Any]) -> str | None:
    """``requestType``, or ``addTenant`` for the AWS Solution's payload, which has none."""
    request_type = raw.get("requestType")
    if request_type is None and "customer_details" in raw:
        return AddTenant.request_type
    return request_type if isinstance(request_type, str) else None


def valid_bucket_name(name: str) -> bool:
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", name) or ".." in name:
        return False
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        return False
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return True
    return False
