"""One local cloud per test process (moto's emulated account is process-wide); tests isolate by unique ids.

Requests become visible again after 2 s and move to their DLQ on the second receive, so retry paths finish in
seconds; the scheduler's clock runs 60 times faster, so a ``rate(1 minute)`` fires every second.

Every line logged at INFO and above (the apps', the local cloud's; its noisiest libraries log errors only), formatted
as the platform writes it, is searched for secrets: the test during which (or before which, in a fixture's set-up)
one leaks fails, naming the logger.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from amci.cli import main
from amci.commands.common import console
from amci.inbox import Inbox
from amci.package import Package, package
from local.cloud import LocalCloud
from local.sandbox.faults import Faults
from local.scheduler import ScaledClock
from shared import aws
from shared.config import SERVICES
from tests.support import FAST, LOG_WATCH, offline_packaging, sp_unthrottled

TESTS = Path(__file__).resolve().parent
# Reports: an hour of polling every 2 s is as often as an execution's history allows (shared/reports.py MAX_POLLS).
TEST_PARAMETERS = {"RequestVisibilityTimeout": 2, "RequestMaxReceiveCount": 2, "ExecutionPollSeconds": 1,
                   "ReportPollSeconds": 2, "ReportMaxHours": 1}
logging.getLogger().addHandler(LOG_WATCH)


@pytest.fixture(autouse=True)
def no_secret_in_logs() -> Iterator[None]:
    yield  # the lines since the last test's end: this test's, and its module's and session's fixtures' set-up
    leaks = LOG_WATCH.leaks()
    assert not leaks, f"secrets in the logs of this test (shown masked): {leaks[:5]}"


@pytest.fixture(scope="session")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(port=0, parameters=TEST_PARAMETERS, clock=ScaledClock(speed=60),
                    extra_apps=[TESTS / "apps" / "clock"]) as running:
        yield running


@pytest.fixture(scope="session")
def endpoints_file(cloud: LocalCloud, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The local cloud's endpoints, as ``amci local up`` writes them for other processes."""
    path = tmp_path_factory.mktemp("endpoints") / "endpoints.json"
    path.write_text(json.dumps(cloud.endpoints))
    return path


@pytest.fixture(scope="session")
def amci(endpoints_file: Path) -> Callable[..., Result]:
    """Run an ``amci`` command in this process against the local cloud, as a user would type it (wide tables);
    ``env`` adds environment variables."""
    runner = CliRunner()
    console.width = 200  # pytest-xdist's workers set COLUMNS=80, which the console read when it was imported
    return lambda *args, env=None: runner.invoke(main, list(args), catch_exceptions=False, env={
        "AMCI_ENDPOINTS": str(endpoints_file), **(env or {})})


@pytest.fixture(scope="session")
def inbox(cloud: LocalCloud) -> Inbox:
    """Every status notification published while the tests run."""
    return Inbox(aws.client("sqs"), aws.client("sns"), cloud.outputs["StatusTopicArn"])


@pytest.fixture(scope="module")
def fast_amc(cloud: LocalCloud) -> Iterator[None]:
    """The sandbox's AMC runs executions in about two seconds while the module's tests run."""
    before = cloud.sandbox.amc.timings
    cloud.sandbox.amc.timings = replace(FAST)
    yield
    cloud.sandbox.amc.timings = before


@pytest.fixture(scope="module")
def fast_ads(cloud: LocalCloud) -> Iterator[None]:
    """The sandbox's Amazon Ads reports are ready in under a second while the module's tests run."""
    before = cloud.sandbox.ads.timings
    cloud.sandbox.ads.state.timings = replace(before, pending_s=0.3, processing_s=0.5)
    yield
    cloud.sandbox.ads.state.timings = before


@pytest.fixture(scope="module")
def fast_sp(cloud: LocalCloud) -> Iterator[None]:
    """The sandbox's SP reports are ready in under a second, with rate limits (the sandbox's and the clients') that
    the module's tests cannot reach, while they run."""
    with sp_unthrottled(cloud.sandbox, queued_s=0.2, processing_s=0.3):
        yield


@pytest.fixture
def faults(cloud: LocalCloud) -> Iterator[Faults]:
    """The sandbox's fault rules; whatever the test added is cleared afterwards."""
    yield cloud.sandbox.faults
    cloud.sandbox.faults.clear()


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Package]:
    """Each app packaged once per test process, offline, as ``amci package`` builds it for the local stage (the
    deployed stage's variables are filled in by the deploy)."""
    out = tmp_path_factory.mktemp("packages")
    with offline_packaging():
        return {service: package(service, "local", out) for service in SERVICES}
