"""The tenant service's dependencies, built lazily once per container (tables per thread: boto3 resources are
not thread-safe)."""

from __future__ import annotations

import os
from functools import cached_property

from chalicelib.model import Platform
from chalicelib.registry import Registry
from shared import aws
from shared.service import Service


class TenantService(Service):
    @cached_property
    def platform(self) -> Platform:
        return Platform.from_env()

    @property
    def registry(self) -> Registry:
        return Registry(aws.table(os.environ["TENANTS_TABLE"]), aws.table(os.environ["WORKFLOW_TENANTS_TABLE"]),
                        aws.table(os.environ["DATALAKE_TENANTS_TABLE"]))
