"""The tenant service's dependencies, built lazily once per container (tables per thread: boto3 resources are
not thread-safe)."""

from __future__ import annotations

from functools import cached_property

from chalicelib.model import Platform
from chalicelib.registry import Registry
from shared import aws
from shared.config import require
from shared.service import Service


class TenantService(Service):
    @cached_property
    def platform(self) -> Platform:
        return Platform.from_env()

    @property
    def registry(self) -> Registry:
        return Registry(aws.table(require("TENANTS_TABLE")), aws.table(require("WORKFLOW_TENANTS_TABLE")),
                        aws.table(require("DATALAKE_TENANTS_TABLE")))
