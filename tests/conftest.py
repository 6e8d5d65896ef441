"""One local cloud per test process (moto's emulated account is process-wide); tests isolate by unique ids.

Requests become visible again after 2 s and move to their DLQ on the second receive, so retry paths finish in
seconds; the scheduler's clock runs 60 times faster, so a ``rate(1 minute)`` fires every second.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local.cloud import LocalCloud
from local.inbox import Inbox
from local.scheduler import ScaledClock
from shared import aws

TESTS = Path(__file__).resolve().parent
TEST_PARAMETERS = {"RequestVisibilityTimeout": 2, "RequestMaxReceiveCount": 2, "ExecutionPollSeconds": 1}


@pytest.fixture(scope="session")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(port=0, parameters=TEST_PARAMETERS, clock=ScaledClock(speed=60),
                    extra_apps=[TESTS / "apps" / "clock"]) as running:
        yield running


@pytest.fixture(scope="session")
def inbox(cloud: LocalCloud) -> Inbox:
    """Every status notification published while the tests run."""
    return Inbox(aws.client("sqs"), aws.client("sns"), cloud.outputs["StatusTopicArn"])
