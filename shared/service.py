"""A service's wiring in one object: its settings, clients and request router, each built lazily once per
Lambda container (import stays cheap, and nothing reads the environment until the first event)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cached_property
from typing import Any

from shared import aws
from shared.config import ServiceSettings
from shared.requests import Classifier, Quarantine, RequestContext, RequestRouter, Route, by_request_type
from shared.status import Status, StatusMessage, StatusPublisher

ServiceHandler = Callable[[Any, RequestContext, "Service"], None]


class Service:
    """One of the five services, as its handlers see it."""

    def __init__(self, name: str, routes: Iterable[tuple[type, ServiceHandler]],
                 classify: Classifier = by_request_type) -> None:
        self.name = name
        self._routes = list(routes)
        self._classify = classify

    @cached_property
    def settings(self) -> ServiceSettings:
        return ServiceSettings.from_env(self.name)

    def client(self, aws_service: str, region: str | None = None) -> Any:
        return aws.client(aws_service, region)

    @cached_property
    def publisher(self) -> StatusPublisher:
        return StatusPublisher(self.client("sns"), self.settings.status_topic_arn)

    @cached_property
    def router(self) -> RequestRouter:
        def bind(handler: ServiceHandler) -> Callable[[Any, RequestContext], None]:
            return lambda request, ctx: handler(request, ctx, self)

        return RequestRouter(self.name, [Route(c, bind(h)) for c, h in self._routes], self._classify)

    def answer(self, ctx: RequestContext, tenant_id: str, status: Status, summary: str,
               details: dict[str, Any] | None = None, request_type: str | None = None) -> None:
        """Publish the outcome of the request ``ctx`` (as ``request_type`` when it names its own operation)."""
        self.publisher.publish(StatusMessage(service=ctx.service, request_type=request_type or ctx.request_type,
                                             status=status, tenant_id=tenant_id, request_id=ctx.request_id,
                                             summary=summary, details=details or {}))

    def handle_requests(self, records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
        """Handle a batch from the request queue (Lambda's SQS event records)."""
        quarantine = Quarantine(self.client("sqs"), self.settings.request_dlq)
        return self.router.handle_batch(records, self.publisher, quarantine, self.settings.max_receive_count)
