"""Diagnostics: ``{"requestType": "diagnose"}`` on any request queue runs the service's diagnostics state
machine, which checks that every resource the service is configured to use answers, ``repeat`` times, and
reports the outcome on the status topic. It is the platform's canary: it exercises the request queue, the
state machine, the task functions and the status topic of a service end to end."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from shared.config import resource_variables
from shared.contracts import Request
from shared.orchestration import execution_name, start_execution
from shared.requests import RequestContext

if TYPE_CHECKING:
    from shared.service import Service

log = logging.getLogger(__name__)
ClientFor = Callable[[str], Any]


class DiagnoseRequest(Request):
    """Check a service's dependencies ``repeat`` times, ``intervalSeconds`` apart."""

    request_type = "diagnose"
    requestType: Literal["diagnose"]
    repeat: int = Field(1, ge=1, le=5)
    intervalSeconds: int = Field(1, ge=0, le=60)


class DependencyUnavailable(Exception):
    """A resource the service is configured to use does not answer."""


def start(request: DiagnoseRequest, ctx: RequestContext, service: Service) -> None:
    """Start the diagnostics execution for this request (a redelivery finds the same execution)."""
    payload = {"service": ctx.service, "requestType": ctx.request_type, "requestId": ctx.request_id,
               "remaining": request.repeat, "intervalSeconds": request.intervalSeconds}
    arn, started = start_execution(service.client("stepfunctions"), service.settings.state_machine_arn("diagnostics"),
                                   execution_name(ctx.service, "diagnose", ctx.request_id), payload)
    log.info("diagnostics started" if started else "diagnostics already running", extra={"execution": arn})


def probe(event: Mapping[str, Any], environ: Mapping[str, str], client_for: ClientFor) -> dict[str, Any]:
    """Check every configured resource once; raise DependencyUnavailable naming those that fail."""
    checks = [_check(variable, value, client_for) for variable, value in resource_variables(environ).items()]
    failed = [c for c in checks if not c["ok"]]
    if failed:
        raise DependencyUnavailable("; ".join(f"{c['variable']}={c['resource']}: {c['detail']}" for c in failed))
    return {**event, "remaining": int(event["remaining"]) - 1, "checked": len(checks)}


def _check(variable: str, resource: str, client_for: ClientFor) -> dict[str, Any]:
    try:
        _PROBES[_kind(variable)](client_for, resource)
        return {"variable": variable, "resource": resource, "ok": True, "detail": "ok"}
    except Exception as exc:
        return {"variable": variable, "resource": resource, "ok": False, "detail": f"{type(exc).__name__}: {exc}"}


def _kind(variable: str) -> str:
    return next(suffix for suffix in _PROBES if variable.endswith(suffix))


_PROBES: dict[str, Callable[[ClientFor, str], Any]] = {
    "_QUEUE": lambda c, name: c("sqs").get_queue_url(QueueName=name),
    "_DLQ": lambda c, name: c("sqs").get_queue_url(QueueName=name),
    "_TOPIC_ARN": lambda c, arn: c("sns").get_topic_attributes(TopicArn=arn),
    "_BUCKET": lambda c, name: c("s3").head_bucket(Bucket=name),
    "_TABLE": lambda c, name: c("dynamodb").describe_table(TableName=name),
    "_STATE_MACHINE_ARN": lambda c, arn: c("stepfunctions").describe_state_machine(stateMachineArn=arn),
}
