"""SQS event sources, as Lambda runs them: long-poll the queue, gather up to ``batch_size`` messages within the
batching window, invoke the function with Lambda's event, then delete what succeeded.

A function that raises leaves its whole batch to reappear after the visibility timeout; one that returns
``{"batchItemFailures": [...]}`` leaves only those. The queue's redrive policy then moves a message that was
received ``maxReceiveCount`` times to its DLQ, exactly as on AWS (SQS, not Lambda, does that part).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)
Invoke = Callable[[str, dict[str, Any]], Any]


@dataclass(frozen=True)
class EventSource:
    function_name: str
    queue_url: str
    queue_arn: str
    batch_size: int
    batching_window_s: int


class SqsPoller:
    """One thread per event source mapping."""

    def __init__(self, sqs: Any, source: EventSource, invoke: Invoke, region: str, stop: threading.Event) -> None:
        self._sqs = sqs
        self.source = source
        self._invoke = invoke
        self._region = region
        self._stop = stop
        self._thread = threading.Thread(target=self._run, name=f"sqs:{source.function_name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                messages = self._receive_batch()
                if messages:
                    self._deliver(messages)
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("poller error", extra={"function": self.source.function_name})
                self._stop.wait(1)

    def _receive_batch(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        deadline = 0.0  # the batching window opens with the first message
        while len(messages) < self.source.batch_size and not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if messages and remaining <= 0:
                break
            received = self._sqs.receive_message(
                QueueUrl=self.source.queue_url, MaxNumberOfMessages=min(10, self.source.batch_size - len(messages)),
                WaitTimeSeconds=1 if not messages else min(1, math.ceil(remaining)),
                AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
            if received and not messages:
                deadline = time.monotonic() + self.source.batching_window_s
            messages.extend(received)
        return messages

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [self._record(m) for m in messages]}
        try:
            result = self._invoke(self.source.function_name, event)
        except Exception:
            log.warning("function failed; its batch returns after the visibility timeout",
                        extra={"function": self.source.function_name, "messages": len(messages)}, exc_info=True)
            return
        failed = _failed_ids(result, {m["MessageId"] for m in messages})
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self._sqs.delete_message_batch(QueueUrl=self.source.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start:start + 10])])

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        """A message in the shape Lambda gives SQS records (camelCase keys, typed message attributes)."""
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {name: _lambda_attribute(value)
                                  for name, value in message.get("MessageAttributes", {}).items()},
            "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.source.queue_arn,
            "awsRegion": self._region,
        }


def _lambda_attribute(value: dict[str, Any]) -> dict[str, Any]:
    return {"stringValue": value.get("StringValue"), "binaryValue": value.get("BinaryValue"),
            "stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}


def _failed_ids(result: Any, delivered: set[str]) -> set[str]:
    """The message ids a function reported as failed; an unusable report fails the whole batch, as in Lambda."""
    if not isinstance(result, dict) or "batchItemFailures" not in result:
        return set()
    try:
        failed = {item["itemIdentifier"] for item in result["batchItemFailures"]}
    except (TypeError, KeyError):
        return delivered
    return failed if failed <= delivered else delivered
