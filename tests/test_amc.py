"""The AMC client (shared/amazon/amc.py) against the sandbox's AMC (local/sandbox/amc/), in the local cloud.

Each test registers its own AMC instance and LWA app, so the shared sandbox's other users never see its
executions, and restores every sandbox setting it changes.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from local.cloud import LocalCloud
from local.sandbox.amc.data import select_columns
from local.sandbox.amc.state import AmcTimings
from local.sandbox.faults import FaultRule
from local.sandbox.records import RecordedRequest
from shared import aws
from shared.amazon.amc import (
    AmcClient,
    Execution,
    ExecutionFinished,
    ExecutionRequest,
    ExecutionStatus,
    ResultsNotReady,
    TimeWindowType,
    Workflow,
    WorkflowExists,
    WorkflowWrite,
)
from shared.amazon.errors import InvalidRequest, NotFound, Unauthorized
from shared.amazon.http import AmazonHttp, RetryPolicy
from shared.amazon.lwa import BearerAuth, CredentialStore, TokenProvider
from shared.amazon.regions import Endpoints
from tests.support import amc_calls, own_credentials, queued_at_amc, token_requests, wait_until

FAST_RETRIES = RetryPolicy(max_attempts=5, base_delay_s=0.01, max_delay_s=0.05, read_timeout_s=10)
FAST = AmcTimings(pending_s=0.05, running_s=0.15, publishing_s=0.05, tick_s=0.05)
SLOW = AmcTimings(pending_s=0.05, running_s=60, publishing_s=0.05, tick_s=0.05)  # runs until cancelled
SQL = ("SELECT advertiser, campaign, SUM(total_cost) AS spend, SUM(impressions) AS impressions "
       "FROM dsp_impressions GROUP BY advertiser, campaign")


@dataclass
class Amc:
    """One test's AMC instance and a client for it, with what it needs to look inside the sandbox."""

    cloud: LocalCloud
    instance_id: str
    client_id: str
    tokens: TokenProvider
    sleeps: list[float]

    def client(self, policy: RetryPolicy = FAST_RETRIES, **options: Any) -> AmcClient:
        sandbox = self.cloud.sandbox
        http = AmazonHttp("amc", policy, sleep=self._sleep)
        return AmcClient(http, _endpoints(self.cloud), BearerAuth(self.tokens), self.instance_id,
                         sandbox.account.advertiser_id, sandbox.account.marketplace_id, **options)

    def calls(self, operation: str, status: int | None = None) -> list[RecordedRequest]:
        """The sandbox's record of this instance's calls of ``operation``."""
        return amc_calls(self.cloud, self.instance_id, operation, status)

    def token_refreshes(self) -> int:
        return token_requests(self.cloud.sandbox, self.client_id)

    def executions(self) -> list[Any]:
        return list(self.cloud.sandbox.amc.state.instances[self.instance_id].executions.values())

    def headers(self) -> dict[str, str]:
        account = self.cloud.sandbox.account
        return {"Authorization": f"Bearer {self.tokens.access_token()}",
                "Amazon-Advertising-API-ClientId": self.client_id,
                "Amazon-Advertising-API-AdvertiserId": account.advertiser_id,
                "Amazon-Advertising-API-MarketplaceId": account.marketplace_id}

    def url(self, path: str) -> str:
        return f"{self.cloud.sandbox.endpoints['amc']}/na/amc/reporting/{self.instance_id}{path}"

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def _endpoints(cloud: LocalCloud) -> Endpoints:
    return Endpoints({api: cloud.sandbox.endpoints[api] for api in ("lwa", "amc")})


@pytest.fixture
def amc(cloud: LocalCloud) -> Iterator[Amc]:
    """A fresh AMC instance (demo advertiser and marketplace), and a fresh LWA app whose secret is in the cloud."""
    sandbox, suffix = cloud.sandbox, uuid.uuid4().hex[:10]
    secret_id = f"amci/test/amc/{suffix}"
    client_id, secrets = own_credentials(sandbox, secret_id), aws.client("secretsmanager")
    tokens = TokenProvider(CredentialStore(secrets, secret_id), AmazonHttp("lwa", FAST_RETRIES), _endpoints(cloud))
    instance_id = f"amctest{suffix}"
    sandbox.amc.register_instance(instance_id, sandbox.account.advertiser_id, sandbox.account.marketplace_id)
    yield Amc(cloud, instance_id, client_id, tokens, [])
    secrets.delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)


@pytest.fixture
def timings(cloud: LocalCloud) -> Iterator[Callable[[AmcTimings], None]]:
    """Set the sandbox's AMC timings for this test; the previous ones come back afterwards."""
    saved = replace(cloud.sandbox.amc.timings)
    yield lambda chosen: setattr(cloud.sandbox.amc, "timings", replace(chosen))
    cloud.sandbox.amc.timings = saved


@pytest.fixture
def faults(cloud: LocalCloud) -> Iterator[Callable[..., FaultRule]]:
    """Add fault rules for this test; they are switched off afterwards, whether used up or not."""
    added: list[FaultRule] = []

    def add(operation: str, **options: Any) -> FaultRule:
        added.append(cloud.sandbox.faults.add("amc", operation, **options))
        return added[-1]

    yield add
    for rule in added:
        rule.times = 0


def _wait_for(client: AmcClient, execution_id: str, done: Callable[[Execution], bool] = lambda e: e.terminal,
              timeout_s: float = 15) -> tuple[Execution, list[str]]:
    """Poll until ``done``; also return every status seen on the way, in order, without repeats."""
    seen: list[str] = []

    def probe() -> Execution | None:
        execution = client.get_execution(execution_id)
        if not seen or seen[-1] != execution.status:
            seen.append(execution.status)
        return execution if done(execution) else None

    return wait_until(probe, timeout_s=timeout_s, interval_s=0.02), seen


# -- workflows -----------------------------------------------------------------------------------------------


def test_workflow_create_get_update_list_delete(amc: Amc) -> None:
    client = amc.client()
    parameters = ({"name": "campaigns", "dataType": {"type": "ARRAY", "elementDataType": "STRING"},
                   "columnType": "DIMENSION", "defaultValue": ["ALL"]},)
    workflow = Workflow("campaign-spend", SQL, parameters, filtered_metrics_discriminator_column="filtered")

    client.create_workflow(workflow)
    stored = client.get_workflow("campaign-spend")
    assert stored.sql_query == SQL and stored.filtered_metrics_discriminator_column == "filtered"
    assert stored.input_parameters[0]["dataType"] == {"type": "ARRAY", "elementDataType": "STRING",
                                                      "elementNullable": False}
    client.update_workflow(replace(workflow, sql_query="SELECT campaign FROM dsp_impressions"))
    assert client.get_workflow("campaign-spend").sql_query == "SELECT campaign FROM dsp_impressions"
    assert [w.workflow_id for w in client.list_workflows()] == ["campaign-spend"]

    client.delete_workflow("campaign-spend")
    with pytest.raises(NotFound):
        client.get_workflow("campaign-spend")
    with pytest.raises(NotFound):
        client.delete_workflow("campaign-spend")
    client.delete_workflow("campaign-spend", missing_ok=True)
    assert list(client.list_workflows()) == []


def test_duplicate_workflow_is_a_typed_error_and_create_or_update_updates(amc: Amc) -> None:
    client = amc.client()
    assert client.create_or_update_workflow(Workflow("dup", SQL)) == WorkflowWrite.CREATED
    with pytest.raises(WorkflowExists) as raised:
        client.create_workflow(Workflow("dup", SQL))
    assert (raised.value.status, raised.value.code) == (400, "WORKFLOW_ALREADY_EXISTS")
    assert raised.value.detail == "Workflow with ID dup already exists."

    assert client.create_or_update_workflow(Workflow("dup", "SELECT advertiser FROM t")) == WorkflowWrite.UPDATED
    assert client.get_workflow("dup").sql_query == "SELECT advertiser FROM t"
    assert len(amc.calls("updateWorkflow", status=200)) == 1


def test_workflow_paging(amc: Amc) -> None:
    client = amc.client()
    for i in range(5):
        client.create_workflow(Workflow(f"wf-{i}", SQL))

    first = client.list_workflows_page(limit=2)
    second = client.list_workflows_page(limit=2, next_token=first.next_token)
    third = client.list_workflows_page(limit=2, next_token=second.next_token)
    assert [[w.workflow_id for w in p.items] for p in (first, second, third)] == [
        ["wf-0", "wf-1"], ["wf-2", "wf-3"], ["wf-4"]]
    assert third.next_token is None
    assert [w.workflow_id for w in client.list_workflows(page_size=2)] == [f"wf-{i}" for i in range(5)]
    with pytest.raises(InvalidRequest):
        client.list_workflows_page(next_token="not-a-token")
    with pytest.raises(InvalidRequest):
        client.list_workflows_page(limit=101)


# -- executions ----------------------------------------------------------------------------------------------


def _with_results_bucket(amc: Amc) -> tuple[str, Any]:
    """A bucket in the local cloud that the test's instance delivers its results to, and an S3 client."""
    bucket, s3, sandbox = f"amc-{amc.instance_id}", aws.client("s3"), amc.cloud.sandbox
    s3.create_bucket(Bucket=bucket)
    sandbox.amc.register_instance(amc.instance_id, sandbox.account.advertiser_id, sandbox.account.marketplace_id,
                                  results_bucket=bucket)
    return bucket, s3


def test_execution_succeeds_and_results_reach_the_bucket_and_the_download_urls(
        amc: Amc, timings: Callable[[AmcTimings], None]) -> None:
    timings(FAST)
    bucket, s3 = _with_results_bucket(amc)
    client = amc.client()
    client.create_workflow(Workflow("spend", SQL, filtered_metrics_discriminator_column="filtered"))

    with queued_at_amc(amc.cloud.sandbox, amc.instance_id):  # until the early ask has been made
        created = client.create_execution(ExecutionRequest(
            workflow_id="spend", time_window_type=TimeWindowType.EXPLICIT, time_window_start="2024-01-20T00:00:00",
            time_window_end=datetime(2024, 1, 25), time_zone="America/New_York", parameter_values={"x": 1}))
        assert created.status == ExecutionStatus.PENDING
        assert (created.time_window_start, created.time_window_end) == (datetime(2024, 1, 20, 5, tzinfo=UTC),
                                                                        datetime(2024, 1, 25, 5, tzinfo=UTC))
        assert created.raw["timeWindowStartOriginal"] == "2024-01-20T00:00:00"
        assert created.raw["timeWindowTimeZoneOriginal"] == "America/New_York"
        assert created.parameter_values == {"x": 1}
        with pytest.raises(ResultsNotReady) as early:
            client.download_urls(created.execution_id)
        assert early.value.detail == f"Execution with ID {created.execution_id} is unavailable for download."

    done, seen = _wait_for(client, created.execution_id)
    assert done.status == ExecutionStatus.SUCCEEDED, done.status_reason
    order = ["PENDING", "RUNNING", "PUBLISHING", "SUCCEEDED"]
    assert seen == sorted(seen, key=order.index) and seen[-1] == "SUCCEEDED"
    assert [c.name for c in done.output_columns] == ["advertiser", "campaign", "spend", "impressions", "filtered"]

    key = done.output_s3_uri.removeprefix(f"s3://{bucket}/") if done.output_s3_uri else ""
    assert re.fullmatch(r"workflow=spend/schedule=adhoc/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z-spend\.csv", key)
    delivered = s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    urls = client.download_urls(created.execution_id)
    assert len(urls.urls) == 1 and "X-Amz-Expires=600" in urls.urls[0] and "Signature" not in repr(urls)
    downloaded = requests.get(urls.urls[0], timeout=10)
    assert downloaded.status_code == 200 and downloaded.content == delivered
    rows = list(csv.reader(io.StringIO(delivered.decode())))
    assert rows[0] == ["advertiser", "campaign", "spend", "impressions", "filtered"]
    assert all(len(row) == 5 for row in rows) and {row[4] for row in rows[1:]} == {"true", "false"}
    cells = [cell for row in rows[1:] for cell in row]
    assert "" in cells and any("," in c for c in cells) and any('"' in c for c in cells)
    metadata = requests.get(urls.metadata_urls[0], timeout=10).json()
    assert metadata["sqlQuery"] == SQL and metadata["workflowExecutionId"] == created.execution_id


def test_results_are_delivered_when_nobody_polls(amc: Amc, timings: Callable[[AmcTimings], None]) -> None:
    timings(FAST)
    bucket, s3 = _with_results_bucket(amc)
    amc.client().create_execution(ExecutionRequest(workflow=Workflow("adhoc-report", "SELECT campaign FROM t")))

    listed = wait_until(lambda: s3.list_objects_v2(Bucket=bucket).get("Contents"), timeout_s=10, interval_s=0.05)
    assert listed[0]["Key"].startswith("workflow=adhoc-report/schedule=adhoc/")


def test_ad_hoc_execution_and_request_fields(amc: Amc, timings: Callable[[AmcTimings], None]) -> None:
    timings(SLOW)
    client = amc.client()
    ad_hoc = client.create_execution(ExecutionRequest(
        workflow=Workflow("", "SELECT advertiser FROM t"), ignore_data_gaps=True, require_synthetic_data=True,
        timeout_seconds=3600))
    assert ad_hoc.workflow_id.startswith("transient_")
    assert (ad_hoc.raw["ignoreDataGaps"], ad_hoc.raw["requireSyntheticData"]) == (True, True)
    assert ad_hoc.raw["workflowExecutionTimeoutSeconds"] == 3600
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert (ad_hoc.time_window_start, ad_hoc.time_window_end) == (today - timedelta(days=1), today)  # MOST_RECENT_DAY
    assert ad_hoc.raw["timeWindowTimeZoneOriginal"] == "UTC"
    fetched = client.get_execution(ad_hoc.execution_id, include_workflow=True)
    assert fetched.workflow is not None and fetched.workflow.sql_query == "SELECT advertiser FROM t"
    assert client.get_execution(ad_hoc.execution_id).workflow is None

    named = client.create_execution(ExecutionRequest(workflow=Workflow("my-adhoc", "SELECT 1 AS one"),
                                                     time_window_type=TimeWindowType.MOST_RECENT_WEEK))
    assert named.workflow_id == "my-adhoc"
    assert named.time_window_end - named.time_window_start == timedelta(days=7)
    for execution in (ad_hoc, named):
        client.cancel_execution(execution.execution_id)

    with pytest.raises(NotFound):
        client.create_execution(ExecutionRequest(workflow_id="no-such-workflow"))
    refused = requests.post(amc.url("/workflowExecutions"), headers=amc.headers(), timeout=10, json={
        "workflowId": "x", "timeWindowType": "EXPLICIT", "timeWindowStart": "2024-01-01T00:00:00",
        "timeWindowEnd": "2024-01-02T00:00:00", "timeWindowTimeZone": "Mars/Olympus_Mons"})
    assert refused.status_code == 400 and "Mars/Olympus_Mons" in refused.json()["message"]
    with pytest.raises(ValueError, match="EXPLICIT"):
        ExecutionRequest(workflow_id="x", time_window_type=TimeWindowType.EXPLICIT, time_window_start="2024-01-01")


@pytest.mark.parametrize(("outcome", "reason"), [("FAILED", "Query execution failed"),
                                                  ("REJECTED", "too many workflows have already been run")])
def test_failed_and_rejected_outcomes(amc: Amc, timings: Callable[[AmcTimings], None],
                                      faults: Callable[..., FaultRule], outcome: str, reason: str) -> None:
    timings(replace(FAST, running_s=600))  # a run lasts until it has been seen
    faults("createWorkflowExecution", outcome=outcome, times=1)
    client = amc.client()
    client.create_workflow(Workflow("doomed", SQL))
    created = client.create_execution(ExecutionRequest(workflow_id="doomed"))
    timings(FAST)

    _, seen = _wait_for(client, created.execution_id, lambda e: e.status != ExecutionStatus.PENDING)
    amc.cloud.sandbox.amc.state.end_running(amc.instance_id, created.execution_id)  # seen running: it may fail now
    done, rest = _wait_for(client, created.execution_id)
    seen += rest
    assert done.status == outcome and reason in (done.status_reason or "")
    assert ("RUNNING" in seen) == (outcome == "FAILED")  # a rejected execution never runs
    with pytest.raises(ResultsNotReady):
        client.download_urls(created.execution_id)
    again = client.create_execution(ExecutionRequest(workflow_id="doomed"))  # the fault was used up
    assert _wait_for(client, again.execution_id)[0].status == ExecutionStatus.SUCCEEDED


def test_cancel(amc: Amc, timings: Callable[[AmcTimings], None]) -> None:
    timings(SLOW)
    client = amc.client()
    client.create_workflow(Workflow("long", SQL))
    running = client.create_execution(ExecutionRequest(workflow_id="long"))
    _wait_for(client, running.execution_id, lambda e: e.status == ExecutionStatus.RUNNING)

    client.cancel_execution(running.execution_id)
    cancelled = client.get_execution(running.execution_id)
    assert cancelled.status == ExecutionStatus.CANCELLED and cancelled.status_reason
    client.cancel_execution(running.execution_id)  # again: already cancelled is fine (a retried cancel)
    refused = requests.put(amc.url(f"/workflowExecutions/{running.execution_id}"), json={"status": "CANCELLED"},
                           headers=amc.headers(), timeout=10)
    assert (refused.status_code, refused.json()["code"]) == (400, "INVALID_STATE")

    queued = client.create_execution(ExecutionRequest(workflow_id="long"))
    deleted = requests.delete(amc.url(f"/workflowExecutions/{queued.execution_id}"), headers=amc.headers(),
                              timeout=10)
    assert deleted.status_code == 200 and deleted.json()["status"] == "CANCELLED"

    timings(FAST)
    finished = client.create_execution(ExecutionRequest(workflow_id="long"))
    _wait_for(client, finished.execution_id)
    with pytest.raises(ExecutionFinished):
        client.cancel_execution(finished.execution_id)
    with pytest.raises(NotFound):
        client.cancel_execution("no-such-execution")


def test_at_most_ten_run_at_once_per_instance(amc: Amc, timings: Callable[[AmcTimings], None]) -> None:
    timings(SLOW)
    client = amc.client()
    client.create_workflow(Workflow("busy", SQL))
    executions = [client.create_execution(ExecutionRequest(workflow_id="busy")) for _ in range(11)]

    def statuses() -> list[str]:
        return [client.get_execution(e.execution_id).status for e in executions]

    wait_until(lambda: statuses()[:10] == ["RUNNING"] * 10, timeout_s=10)
    assert statuses()[10] == "PENDING"
    client.cancel_execution(executions[0].execution_id)
    _wait_for(client, executions[10].execution_id, lambda e: e.status == ExecutionStatus.RUNNING, timeout_s=5)
    for execution in executions[1:]:
        client.cancel_execution(execution.execution_id)


def test_execution_listing_filters_and_paging(amc: Amc, timings: Callable[[AmcTimings], None]) -> None:
    timings(SLOW)
    state = amc.cloud.sandbox.amc.state
    saved_page_size, state.execution_page_size = state.execution_page_size, 2
    try:
        client = amc.client()
        for workflow_id in ("a", "b"):
            client.create_workflow(Workflow(workflow_id, SQL))
        made = [client.create_execution(ExecutionRequest(workflow_id=w)) for w in ("a", "a", "b", "a", "b")]

        page = client.list_executions_page()
        assert len(page.items) == 2 and page.next_token
        assert [e.execution_id for e in client.list_executions()] == [e.execution_id for e in made]
        assert len(list(client.list_executions(workflow_id="a"))) == 3
        now = datetime.now(UTC)
        assert list(client.list_executions(min_creation_time=now + timedelta(minutes=5))) == []
        assert list(client.list_executions(max_creation_time=now - timedelta(minutes=5))) == []
        recent = list(client.list_executions(min_creation_time=now - timedelta(minutes=5), workflow_id="b",
                                             include_workflow=True))
        assert len(recent) == 2 and all(e.workflow and e.workflow.workflow_id == "b" for e in recent)
        for execution in made:
            client.cancel_execution(execution.execution_id)
    finally:
        state.execution_page_size = saved_page_size


# -- headers, tokens, retries, idempotency -------------------------------------------------------------------


@pytest.mark.parametrize("header", ["Amazon-Advertising-API-ClientId", "Amazon-Advertising-API-AdvertiserId",
                                    "Amazon-Advertising-API-MarketplaceId"])
def test_a_missing_header_is_named(amc: Amc, header: str) -> None:
    headers = {k: v for k, v in amc.headers().items() if k != header}
    response = requests.get(amc.url("/workflows"), headers=headers, timeout=10)
    assert response.status_code == 400 and header in response.json()["message"]


def test_a_missing_or_bad_token_is_401_and_a_foreign_advertiser_403(amc: Amc) -> None:
    headers = amc.headers()
    del headers["Authorization"]
    response = requests.get(amc.url("/workflows"), headers=headers, timeout=10)
    assert (response.status_code, response.json()["code"]) == (401, "UNAUTHORIZED")
    response = requests.get(amc.url("/workflows"), headers={**headers, "Authorization": "Bearer Atza|forged"},
                            timeout=10)
    assert response.status_code == 401

    stranger = amc.client()
    stranger.advertiser_id = "ENTITYSOMEONEELSE"
    with pytest.raises(Unauthorized) as raised:
        stranger.list_workflows_page()
    assert raised.value.status == 403


def test_an_expired_token_is_refreshed_once(amc: Amc) -> None:
    client = amc.client()
    client.create_workflow(Workflow("tokens", SQL))
    refreshes = amc.token_refreshes()

    amc.cloud.sandbox.lwa.expire_all()
    assert client.get_workflow("tokens").sql_query == SQL
    assert amc.token_refreshes() == refreshes + 1
    assert len(amc.calls("getWorkflow", status=401)) == 1 and len(amc.calls("getWorkflow", status=200)) == 1


@pytest.mark.parametrize("retry_after", [0.05, None])
def test_throttling_is_retried(amc: Amc, faults: Callable[..., FaultRule], retry_after: float | None) -> None:
    client = amc.client()
    faults("listWorkflows", status=429, retry_after=retry_after, times=2)
    assert client.list_workflows_page().items == []
    assert len(amc.calls("listWorkflows", status=429)) == 2 and len(amc.calls("listWorkflows", status=200)) == 1
    if retry_after is not None:
        assert amc.sleeps == [retry_after, retry_after]  # the server's word
    else:
        assert len(amc.sleeps) == 2 and all(0 <= s <= FAST_RETRIES.max_delay_s for s in amc.sleeps)  # backoff


def test_server_errors_are_retried_and_a_failed_create_is_not_doubled(amc: Amc, timings: Callable[[AmcTimings], None],
                                                                      faults: Callable[..., FaultRule]) -> None:
    timings(SLOW)
    client = amc.client()
    client.create_workflow(Workflow("flaky", SQL))
    faults("getWorkflow", status=503, times=2)
    assert client.get_workflow("flaky").workflow_id == "flaky"
    assert len(amc.calls("getWorkflow", status=503)) == 2 and len(amc.calls("getWorkflow", status=200)) == 1

    faults("createWorkflowExecution", status=500, times=1)
    created = client.create_execution(ExecutionRequest(workflow_id="flaky"))
    assert [e.execution_id for e in amc.executions()] == [created.execution_id]
    assert len(amc.calls("createWorkflowExecution", status=500)) == 1
    assert len(amc.calls("createWorkflowExecution", status=200)) == 1
    assert len(amc.calls("listWorkflowExecutions")) == 1  # it looked before trying again
    client.cancel_execution(created.execution_id)


def test_a_create_that_times_out_makes_exactly_one_execution(amc: Amc, timings: Callable[[AmcTimings], None],
                                                             faults: Callable[..., FaultRule]) -> None:
    timings(SLOW)

    def settle(_seconds: float) -> None:  # the client's wait for its timed-out create lasts until it was answered
        wait_until(lambda: amc.calls("createWorkflowExecution", status=200), timeout_s=30)

    client = amc.client(RetryPolicy(max_attempts=5, base_delay_s=0.01, max_delay_s=0.05, read_timeout_s=0.3),
                        settle_s=5.0, settle_poll_s=0.1, sleep=settle)
    client.create_workflow(Workflow("slow", SQL))
    faults("createWorkflowExecution", delay_s=1.0, times=1)  # answered after the client has given up

    created = client.create_execution(ExecutionRequest(
        workflow_id="slow", time_window_type=TimeWindowType.EXPLICIT, time_window_start="2024-02-01T00:00:00",
        time_window_end="2024-02-02T00:00:00", time_zone="Europe/Paris"))
    assert [e.execution_id for e in amc.executions()] == [created.execution_id]
    wait_until(lambda: amc.calls("createWorkflowExecution"), timeout_s=5)
    assert len(amc.calls("createWorkflowExecution")) == 1  # never sent again
    assert created.raw["timeWindowStart"] == "2024-01-31T23:00:00Z"
    client.cancel_execution(created.execution_id)


def test_a_create_that_never_happened_is_retried(amc: Amc, timings: Callable[[AmcTimings], None],
                                                 faults: Callable[..., FaultRule]) -> None:
    """An ambiguous failure with nothing created behind it: after looking, the client creates it once more."""
    timings(SLOW)
    client = amc.client(settle_s=0.3, settle_poll_s=0.1)
    client.create_workflow(Workflow("retry-me", SQL))
    faults("createWorkflowExecution", status=502, times=2)
    created = client.create_execution(ExecutionRequest(workflow_id="retry-me"))
    assert [e.execution_id for e in amc.executions()] == [created.execution_id]
    assert len(amc.calls("createWorkflowExecution")) == 3
    client.cancel_execution(created.execution_id)


# -- result columns ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("sql", "columns"), [
    (SQL, ["advertiser", "campaign", "spend", "impressions"]),
    ("WITH c AS (SELECT x, y FROM t) SELECT DISTINCT c.campaign, SUM(impressions), count(*) n, "
     "'a, b' AS \"odd, name\" FROM c -- trailing, comment", ["campaign", "impressions", "n", "odd, name"]),
    ("select a /* b, c */, (d + e) as f from t union all select 1, 2 from u", ["a", "f"]),
    ("SELECT CASE WHEN x > 0 THEN 'y' ELSE 'n' END flag, * FROM t", ["flag", "_col2"]),
])
def test_result_columns_come_from_the_top_level_select(sql: str, columns: list[str]) -> None:
    assert select_columns(sql) == columns
