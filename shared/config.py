"""Configuration: resource names come from environment variables that each app's
``.chalice/config.json`` sets per stage (the deploy records them from the platform stack's outputs).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

SERVICES = ("tenant", "workflow", "ads_reporting", "sp_reporting", "datalake")

# Suffixes of the variables that name a resource a service depends on; the diagnostics probe checks them.
RESOURCE_SUFFIXES = ("_QUEUE", "_DLQ", "_TOPIC_ARN", "_BUCKET", "_TABLE", "_STATE_MACHINE_ARN")


class ConfigError(RuntimeError):
    """A required environment variable is missing or empty."""


def require(name: str, environ: Mapping[str, str] | None = None) -> str:
    """Return the value of environment variable ``name``; raise ConfigError naming it when unset."""
    value = (os.environ if environ is None else environ).get(name, "")
    if not value:
        raise ConfigError(f"environment variable {name} is not set: check the stage in .chalice/config.json")
    return value


def output_prefix(service: str) -> str:
    """``ads_reporting`` -> ``AdsReporting``: the prefix of the platform stack's outputs for a service's own
    resources (``AdsReportingRequestQueueUrl``, ``AdsReportingRequestDlq``)."""
    return "".join(word.title() for word in service.split("_"))


def env_prefix(service: str) -> str:
    """``ads_reporting`` -> ``ADS_REPORTING``: the prefix of a service's own variables."""
    if service not in SERVICES:
        raise ConfigError(f"unknown service {service!r}: expected one of {', '.join(SERVICES)}")
    return service.upper()


@dataclass(frozen=True)
class ServiceSettings:
    """What every service reads: who it is, where status goes, its request queue and dead-letter queue."""

    service: str
    stage: str
    status_topic_arn: str
    request_queue: str
    request_dlq: str
    max_receive_count: int

    @classmethod
    def from_env(cls, service: str, environ: Mapping[str, str] | None = None) -> ServiceSettings:
        prefix = env_prefix(service)
        return cls(
            service=service,
            stage=require("STAGE", environ),
            status_topic_arn=require("STATUS_TOPIC_ARN", environ),
            request_queue=require(f"{prefix}_REQUEST_QUEUE", environ),
            request_dlq=require(f"{prefix}_REQUEST_DLQ", environ),
            max_receive_count=int(require("REQUEST_MAX_RECEIVE_COUNT", environ)),
        )

    def state_machine_arn(self, name: str, environ: Mapping[str, str] | None = None) -> str:
        """ARN of state machine ``name`` of this service, from ``{SERVICE}_{NAME}_STATE_MACHINE_ARN``."""
        return require(f"{env_prefix(self.service)}_{name.upper()}_STATE_MACHINE_ARN", environ)


def resource_variables(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment variables that name resources (queues, topics, buckets, tables, state machines)."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in sorted(env.items()) if k.endswith(RESOURCE_SUFFIXES) and v}
