"""Reaching a tenant's AMC instance: its identifiers and limits from the tenant service's record, its credentials
from the ``authId`` secret."""

from __future__ import annotations

import os
from typing import Any

from shared import aws
from shared.amazon import accounts
from shared.amazon.amc import AmcClient
from shared.amazon.lwa import BearerAuth
from shared.amazon.regions import Endpoints, marketplace_region
from shared.contracts import ContractError, FieldError

DEFAULT_CONCURRENCY = 10  # AMC runs at most 10 executions of an instance at once


class UnknownTenant(ContractError):
    def __init__(self, customer_id: str) -> None:
        super().__init__("tenant", [FieldError("customerId", "an onboarded tenant (see amci tenant list)",
                                               customer_id)])


def tenant_config(customer_id: str) -> dict[str, Any]:
    """The tenant's record: ``amcInstanceId``, advertiser and marketplace, ``authId``, ``scheduleGroup``,
    ``concurrencyLimit``."""
    table = aws.table(os.environ["WORKFLOW_TENANTS_TABLE"])
    item = table.get_item(Key={"customerId": customer_id}, ConsistentRead=True).get("Item")
    if item is None:
        raise UnknownTenant(customer_id)
    return item


def concurrency_limit(config: dict[str, Any]) -> int:
    return int(config.get("concurrencyLimit") or DEFAULT_CONCURRENCY)


def client_for(config: dict[str, Any]) -> AmcClient:
    """An AMC client for the tenant's instance, with its ``authId``'s tokens (kept for the container)."""
    return AmcClient(accounts.http("amc"), Endpoints.from_env(), BearerAuth(accounts.tokens(config.get("authId"))),
                     config["amcInstanceId"], config["amcAmazonAdsAdvertiserId"],
                     config["amcAmazonAdsMarketplaceId"], marketplace_region(config["amcAmazonAdsMarketplaceId"]))
