"""Status notifications: every terminal outcome is one SNS message on the platform status topic.

Message attributes ``tenantId``, ``service``, ``requestType`` and ``status`` let email and SQS subscribers
filter; the body is JSON a person can read in an email.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from shared.logs import redact

PLATFORM_TENANT = "platform"  # tenantId of requests that concern no single tenant (SNS rejects empty values)


class Status(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"  # the request broke its contract; it was answered and quarantined
    ERROR = "ERROR"  # an internal error that exhausted its retries
    NO_DATA = "NO_DATA"
    CANCELLED = "CANCELLED"  # stopped on request (an AMC execution cancelled)


@dataclass(frozen=True)
class StatusMessage:
    service: str
    request_type: str
    status: Status
    summary: str
    tenant_id: str = PLATFORM_TENANT
    request_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    about: str = ""  # what the outcome concerns, for the subject line (e.g. "top-campaigns 7d29a430-...")
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def subject(self) -> str:
        # SNS subjects: at most 100 printable ASCII characters, no line breaks.
        text = f"[AMC Insights] {self.service} {self.request_type} {self.status} ({self.tenant_id})"
        text += f": {self.about}" if self.about else ""
        return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)[:100]

    def body(self) -> str:
        return json.dumps(redact(asdict(self)), indent=2, default=str)

    def attributes(self) -> dict[str, dict[str, str]]:
        values = {"tenantId": self.tenant_id, "service": self.service,
                  "requestType": self.request_type, "status": str(self.status)}
        return {k: {"DataType": "String", "StringValue": v} for k, v in values.items()}


class StatusPublisher:
    """Publishes :class:`StatusMessage` to the status topic."""

    def __init__(self, sns: Any, topic_arn: str) -> None:
        self._sns = sns
        self._topic_arn = topic_arn

    def publish(self, message: StatusMessage) -> str:
        """Publish ``message``; returns the SNS message id."""
        response = self._sns.publish(TopicArn=self._topic_arn, Subject=message.subject,
                                     Message=message.body(), MessageAttributes=message.attributes())
        return str(response["MessageId"])


def state_machine_outcome(event: dict[str, Any]) -> StatusMessage:
    """The status message for a state machine's final task: ``{"outcome": ..., "request": <state>}``.

    ``request`` carries ``service``, ``requestType``, ``requestId`` and optionally ``tenantId``, ``summary`` and,
    when a Catch caught an error, ``error`` (``{"Error", "Cause"}``).
    """
    request = dict(event["request"])
    status = Status(event["outcome"])
    error = request.pop("error", None)
    summary = request.pop("summary", None) or f"{request['requestType']} {status.lower()}"
    if error:
        summary = f"{summary}: {error_summary(error)}"
    return StatusMessage(service=request["service"], request_type=request["requestType"], status=status,
                         summary=summary, tenant_id=request.get("tenantId") or PLATFORM_TENANT,
                         request_id=request.get("requestId"), details=request)


def error_summary(error: dict[str, Any]) -> str:
    """``Error: message`` for what a state machine's Catch put in its ``ResultPath`` (``{"Error", "Cause"}``)."""
    return f"{error.get('Error')}: {_cause_message(error.get('Cause'))}"


def _cause_message(cause: Any) -> str:
    """Lambda errors arrive as a JSON ``Cause`` holding ``errorMessage``; other causes are plain text."""
    try:
        return str(json.loads(cause).get("errorMessage", cause))
    except (TypeError, ValueError, AttributeError):
        return str(cause)
