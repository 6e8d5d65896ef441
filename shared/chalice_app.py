"""What every service's Chalice app has: the app itself, its :class:`Service` wiring, and the Step Functions task
functions all services share (a blueprint).

This is the one module of the library that imports Chalice; domain modules don't. Lambda imports this module
directly for the shared tasks (handler ``shared.chalice_app.notify``), not the app, so it initialises the runtime
itself; the service is bound per event instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, TypeVar

from chalice import Blueprint, Chalice

from shared import aws, diagnostics, runtime
from shared.logs import bind
from shared.requests import Classifier, by_request_type
from shared.service import Service, ServiceHandler
from shared.status import StatusPublisher, state_machine_outcome

S = TypeVar("S", bound=Service)

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


def service_app(service: str, routes: Iterable[tuple[type, ServiceHandler]], service_type: type[S] = Service,
                classify: Classifier = by_request_type) -> tuple[Chalice, S]:
    """The Chalice app of ``service`` (``amci-<service>``) with the shared tasks, and its request wiring
    (``service_type``: a :class:`Service` with the service's own dependencies).

    Every service answers ``diagnose`` requests besides its own ``routes``.
    """
    app = Chalice(app_name=f"amci-{service.replace('_', '-')}", configure_logs=False)
    app.register_blueprint(tasks)
    runtime.init(service)
    return app, service_type(service, [(diagnostics.DiagnoseRequest, diagnostics.start), *routes], classify)
