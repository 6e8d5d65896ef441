"""Helpers the tests share."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from shared import aws

T = TypeVar("T")


def wait_until(probe: Callable[[], T], timeout_s: float = 30, interval_s: float = 0.2) -> T:
    """Call ``probe`` until it returns something truthy; fail with the last value after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s (last value: {value!r})")
        time.sleep(interval_s)


def queue_idle(url: str) -> bool:
    """No message waiting in the queue and none being handled."""
    attributes = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return all(value == "0" for value in attributes.values())
