"""Reading what was published on an SNS topic: an SQS queue subscribed to it, drained on demand.

The SDK (and so the CLI and the demo) and the tests use it to watch the status topic the way an email subscriber would.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Notification:
    subject: str
    body: dict[str, Any]
    attributes: dict[str, str]


class Inbox:
    """Subscribes a new queue to ``topic_arn``; :meth:`wait_for` returns the first notification that matches."""

    def __init__(self, sqs: Any, sns: Any, topic_arn: str, name: str | None = None) -> None:
        self._sqs = sqs
        # Encrypted, short-lived (a crashed reader's queue keeps nothing for long), and open to the topic only:
        # SNS delivers to a queue only when the queue's policy lets it.
        self.url = sqs.create_queue(QueueName=name or f"inbox-{uuid.uuid4().hex[:12]}", Attributes={
            "SqsManagedSseEnabled": "true", "MessageRetentionPeriod": "3600"})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sqs.set_queue_attributes(QueueUrl=self.url, Attributes={"Policy": json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
                "Resource": arn, "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}}}]})})
        self.subscription_arn = sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn,
                                              ReturnSubscriptionArn=True)["SubscriptionArn"]
        self.received: list[Notification] = []

    def close(self, sns: Any) -> None:
        """Unsubscribe and delete the queue."""
        sns.unsubscribe(SubscriptionArn=self.subscription_arn)
        self._sqs.delete_queue(QueueUrl=self.url)

    def drain(self, wait_s: int = 0) -> list[Notification]:
        """Receive whatever is waiting; returns everything received so far."""
        while True:
            messages = self._sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10,
                                                 WaitTimeSeconds=wait_s).get("Messages", [])
            for message in messages:
                self.received.append(_notification(json.loads(message["Body"])))
                self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
            if not messages:
                return self.received
            wait_s = 0

    def wait_for(self, matches: Callable[[Notification], bool], timeout_s: float = 30) -> Notification:
        """The first notification (already received or arriving within ``timeout_s``) that ``matches``."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = next((n for n in self.received if matches(n)), None)
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no matching notification within {timeout_s}s; received {len(self.received)}: "
                                   + "; ".join(n.subject for n in self.received[-5:]))
            self.drain(wait_s=1)


def _notification(envelope: dict[str, Any]) -> Notification:
    attributes = {name: value["Value"] for name, value in envelope.get("MessageAttributes", {}).items()}
    try:
        body = json.loads(envelope["Message"])
    except ValueError:
        body = {"text": envelope["Message"]}
    return Notification(envelope.get("Subject", ""), body, attributes)
