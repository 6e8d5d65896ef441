"""The Step Functions task functions every service has, as a Chalice blueprint each app registers.

This is the one module of the library that imports Chalice (it defines Lambda functions); domain modules don't.
Lambda imports this module directly (handler ``shared.tasks.notify``), not the app, so it initialises the runtime
itself; the service is bound per event instead.
"""

from __future__ import annotations

import os
from typing import Any

from chalice import Blueprint

from shared import aws, diagnostics, runtime
from shared.logs import bind
from shared.status import StatusPublisher, state_machine_outcome

tasks = Blueprint(__name__)
runtime.init()


@tasks.lambda_function(name="diagnostics_probe")
def diagnostics_probe(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with bind(service=event.get("service"), correlation_id=event.get("requestId")):
        return diagnostics.probe(event, os.environ, aws.client)


@tasks.lambda_function(name="notify")
def notify(event: dict[str, Any], context: Any) -> dict[str, Any]:
    message = state_machine_outcome(event)
    with bind(service=message.service, correlation_id=message.request_id):
        message_id = StatusPublisher(aws.client("sns"), os.environ["STATUS_TOPIC_ARN"]).publish(message)
    return {"status": str(message.status), "messageId": message_id}
