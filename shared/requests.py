"""The request queue is each service's public API. This module turns a batch of SQS records into calls of the
service's handlers, one per request type, with Lambda's partial-batch contract:

* a valid request is handled; if the handler raises, the record is reported in ``batchItemFailures`` so SQS
  redelivers it, and after the last attempt an ERROR status is published before it goes to the DLQ;
* an invalid request is answered with a REJECTED status that names what is wrong, and is quarantined in the
  service's DLQ with the reason, so nothing a user sent is lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.batch import process_partial_batch
from shared.contracts import REQUEST_ID_PATTERN, Contract, ContractError, FieldError
from shared.logs import bind
from shared.status import PLATFORM_TENANT, Status, StatusMessage, StatusPublisher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RequestContext:
    """Where a request came from: its idempotency key and delivery facts."""

    service: str
    request_type: str
    request_id: str  # the sender's ``requestId``, else the SQS message id: stable across redeliveries
    attempt: int


Handler = Callable[[Any, RequestContext], None]
Classifier = Callable[[Mapping[str, Any]], str | None]


@dataclass(frozen=True)
class Route:
    contract: type[Contract]
    handler: Handler


def by_request_type(raw: Mapping[str, Any]) -> str | None:
    """The default classifier: the message's ``requestType`` field."""
    value = raw.get("requestType")
    return value if isinstance(value, str) else None


class RequestRouter:
    """Dispatches request messages to handlers by request type."""

    def __init__(self, service: str, routes: Iterable[Route], classify: Classifier = by_request_type) -> None:
        self.service = service
        self.routes = {route.contract.request_type: route for route in routes}
        self.classify = classify

    def handle_batch(self, records: Iterable[Mapping[str, Any]], publisher: StatusPublisher,
                     quarantine: Quarantine, max_receive_count: int) -> dict[str, list[dict[str, str]]]:
        """Handle every record; returns ``{"batchItemFailures": [...]}`` for the ones to redeliver."""
        return process_partial_batch(
            records, lambda record: self._handle_record(record, publisher, quarantine, max_receive_count))

    def _handle_record(self, record: Mapping[str, Any], publisher: StatusPublisher,
                       quarantine: Quarantine, max_receive_count: int) -> None:
        attempt = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        try:
            raw, route = self._parse(record["body"])
            request = route.contract.parse(raw)
        except ContractError as exc:
            self._reject(record, exc, publisher, quarantine)
            return
        request_id = getattr(request, "requestId", None) or record["messageId"]
        ctx = RequestContext(self.service, route.contract.request_type, request_id, attempt)
        with bind(service=self.service, correlation_id=request_id, request_type=ctx.request_type):
            try:
                route.handler(request, ctx)
            except ContractError as exc:  # the handler found the request inconsistent with what exists
                self._reject(record, exc, publisher, quarantine)
            except Exception as exc:
                if attempt >= max_receive_count:
                    publisher.publish(_error_status(ctx, raw, exc))
                raise

    def _parse(self, body: str) -> tuple[dict[str, Any], Route]:
        try:
            raw = json.loads(body)
        except ValueError:
            raise ContractError("unknown", [FieldError("(message)", "a JSON object", body[:80])]) from None
        if not isinstance(raw, dict):
            raise ContractError("unknown", [FieldError("(message)", "a JSON object", raw)])
        request_type = self.classify(raw)
        if request_type not in self.routes:
            expected = "one of " + ", ".join(sorted(self.routes))
            raise ContractError("unknown", [FieldError("requestType", expected, request_type)])
        return raw, self.routes[request_type]

    def _reject(self, record: Mapping[str, Any], error: ContractError, publisher: StatusPublisher,
                quarantine: Quarantine) -> None:
        log.info("request rejected", extra={"message_id": record["messageId"], "reason": str(error)})
        request_id = request_id_of(record)
        quarantine.put(record["body"], reason=str(error), request_id=request_id)
        publisher.publish(StatusMessage(
            service=self.service, request_type=error.contract, status=Status.REJECTED, summary=str(error),
            tenant_id=_tenant_of(record["body"]), request_id=request_id,
            details={**error.as_dict(), "quarantine": quarantine.queue_name}))


class Quarantine:
    """Keeps rejected messages in a dead-letter queue with the reason, where they can be fixed and redriven."""

    REASON_ATTRIBUTE = "amciRejectReason"
    REQUEST_ID_ATTRIBUTE = "amciRequestId"  # the id its REJECTED status carried (the message id when it had none)

    def __init__(self, sqs: Any, queue_name: str) -> None:
        self._sqs = sqs
        self.queue_name = queue_name
        self._url: str | None = None

    def put(self, body: str, reason: str, request_id: str | None = None) -> None:
        if self._url is None:
            self._url = self._sqs.get_queue_url(QueueName=self.queue_name)["QueueUrl"]
        attributes = {self.REASON_ATTRIBUTE: reason[:1024], self.REQUEST_ID_ATTRIBUTE: request_id}
        self._sqs.send_message(QueueUrl=self._url, MessageBody=body, MessageAttributes={
            name: {"DataType": "String", "StringValue": value} for name, value in attributes.items() if value})


@dataclass
class Redriven:
    delivered: int
    kept: list[dict[str, Any]]  # the messages left in the dead-letter queue


def redrive(sqs: Any, dead_letters_url: str, deliver: Callable[[dict[str, Any]], None], limit: int,
            keep: Callable[[dict[str, Any]], bool] = lambda message: False) -> Redriven:
    """Hand up to ``limit`` messages of a dead-letter queue to ``deliver``, deleting each once delivered. Messages
    ``keep`` picks stay where they are (e.g. rejected requests, which only their sender can fix). A body seen once
    is not taken again: a message delivered and dead-lettered anew during the run waits for the next one."""
    delivered, kept, seen = 0, [], set()
    try:
        while delivered < limit:
            messages = sqs.receive_message(QueueUrl=dead_letters_url, MaxNumberOfMessages=min(10, limit - delivered),
                                           WaitTimeSeconds=1, VisibilityTimeout=60,  # long polling: every server
                                           MessageAttributeNames=["All"]).get("Messages", [])
            fresh = [m for m in messages if m["MD5OfBody"] not in seen]
            if not fresh:
                break
            for message in fresh:
                seen.add(message["MD5OfBody"])
                if keep(message):
                    kept.append(message)
                    continue
                deliver(message)
                sqs.delete_message(QueueUrl=dead_letters_url, ReceiptHandle=message["ReceiptHandle"])
                delivered += 1
    finally:
        for message in kept:  # visible again at once, for whoever looks next
            with contextlib.suppress(Exception):  # a receipt older than its visibility is refused: visible anyway
                sqs.change_message_visibility(QueueUrl=dead_letters_url, ReceiptHandle=message["ReceiptHandle"],
                                              VisibilityTimeout=0)
    return Redriven(delivered, kept)


def dead_letter(message: Mapping[str, Any]) -> tuple[str, str | None]:
    """A dead-lettered request's id and why it was rejected (None: it failed on every attempt instead)."""
    attributes = {name: value["StringValue"] for name, value in message.get("MessageAttributes", {}).items()}
    request_id = attributes.get(Quarantine.REQUEST_ID_ATTRIBUTE) or request_id_of(
        {"body": message["Body"], "messageId": message["MessageId"]})
    return request_id, attributes.get(Quarantine.REASON_ATTRIBUTE)


def request_id_of(record: Mapping[str, Any]) -> str:
    """The sender's ``requestId`` when the body has a valid one, so they can match the answer; else the message id."""
    try:
        request_id = json.loads(record["body"]).get("requestId")
    except (ValueError, AttributeError):
        return str(record["messageId"])
    return request_id if isinstance(request_id, str) and re.fullmatch(REQUEST_ID_PATTERN, request_id) \
        else str(record["messageId"])


def _tenant_of(body: str) -> str:
    """Best effort: the tenant named by a (possibly invalid) request body."""
    try:
        return _tenant_in(json.loads(body))
    except ValueError:
        return PLATFORM_TENANT


def _tenant_in(raw: Any) -> str:
    tenant = (raw.get("customerId") or raw.get("tenantId")) if isinstance(raw, dict) else None
    return tenant if isinstance(tenant, str) and tenant else PLATFORM_TENANT


def _error_status(ctx: RequestContext, raw: Mapping[str, Any], exc: Exception) -> StatusMessage:
    return StatusMessage(
        service=ctx.service, request_type=ctx.request_type, status=Status.ERROR, tenant_id=_tenant_in(raw),
        request_id=ctx.request_id, summary=f"internal error after {ctx.attempt} attempts; the request is in the DLQ",
        details={"error": type(exc).__name__, "message": str(exc)[:500]})
