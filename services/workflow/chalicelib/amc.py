"""Reaching a tenant's AMC instance: its identifiers and limits from the tenant service's record, its credentials
from the ``authId`` secret."""

from __future__ import annotations

import functools
import os
from typing import Any

from shared import aws
from shared.amazon.amc import AmcClient
from shared.amazon.http import AmazonHttp
from shared.amazon.lwa import BearerAuth, CredentialStore, TokenProvider
from shared.amazon.regions import Endpoints, marketplace_region
from shared.config import require
from shared.contracts import ContractError, FieldError

DEFAULT_CONCURRENCY = 10  # AMC runs at most 10 executions of an instance at once
_TOKENS: dict[str, TokenProvider] = {}  # per authId, for the life of the container: tokens are reused


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


def client_for(config: dict[str, Any], providers: dict[str, TokenProvider] = _TOKENS) -> AmcClient:
    """An AMC client for the tenant's instance; token providers are kept per ``authId`` so tokens are reused, and
    the HTTP sessions per container, so connections are."""
    auth_id = config.get("authId") or "default"
    if auth_id not in providers:
        secret = f"{require('AUTH_SECRET_PREFIX')}{auth_id}"
        providers[auth_id] = TokenProvider(CredentialStore(aws.client("secretsmanager"), secret), _http("lwa"),
                                           Endpoints.from_env())
    return AmcClient(_http("amc"), Endpoints.from_env(), BearerAuth(providers[auth_id]),
                     config["amcInstanceId"], config["amcAmazonAdsAdvertiserId"],
                     config["amcAmazonAdsMarketplaceId"], marketplace_region(config["amcAmazonAdsMarketplaceId"]))


@functools.cache
def _http(api: str) -> AmazonHttp:
    return AmazonHttp(api)  # thread-safe: one per API for the container
