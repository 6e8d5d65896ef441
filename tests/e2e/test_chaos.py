"""Chaos, end to end on the local cloud. One run (the module's ``chaos`` fixture): several tenants at once run an
AMC execution, an Amazon Ads report and an SP report, every request delivered twice, while

* the sandbox throttles (429 storms), fails with 5xx and expires every access token mid-flow;
* functions crash right after an AWS call took effect (the workflow and Ads request handlers mid-batch, after
  starting an execution; both report downloads after writing the file; the lake's object-event handler after
  routing; stage B's Glue job after writing a Parquet file and adding its partition) - ``local/crashes.py``;
* poison messages (not JSON, JSON that is no request) sit in every request queue among the real requests;
* the AMC API is down while a workflow is created, so that request fails on every attempt into its DLQ;
* a malformed AMC result and an Ads report cut short reach the lake.

Then one test per invariant: each request answered exactly once; no duplicate execution or report at the
sandbox; every injected fault met; the lake's rows equal the source rows for AMC, Ads and SP, and a duplicate S3
event or a new version adds none; every dead letter and quarantined file explained, and redriven (or fixed and
sent again) to success.

``AMCI_CHAOS=heavy`` scales tenants and faults up (opt-in; the default profile is meant for every run).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from amci.inbox import Inbox, Notification
from amci.platform import Platform
from amci.sdk import Insights
from local.cloud import LocalCloud
from local.crashes import CrashRule
from shared import aws
from tests.support import (
    ads_creates,
    amc_creates,
    amc_tenant,
    answers,
    day,
    dead_letters,
    execution_request,
    own_day,
    pipeline_items,
    queue_idle,
    send,
    sp_creates,
    sql,
    wait_until,
)


@dataclass(frozen=True)
class Profile:
    tenants: int
    storm: int  # 429s injected per throttled operation
    errors: int  # 5xx injected per failing operation
    timeout_s: float


PROFILES = {"default": Profile(tenants=3, storm=4, errors=3, timeout_s=180),
            "heavy": Profile(tenants=8, storm=12, errors=8, timeout_s=400)}
PROFILE = PROFILES[os.environ.get("AMCI_CHAOS", "default")]
ADS_COLUMNS = ["date", "campaignId", "campaignName", "impressions", "cost"]
SERVICES = ("workflow", "ads_reporting", "sp_reporting")
# (service, function, the call after which it crashes, calls let through first): each crashes once.
CRASHES = (("workflow", "on_request", "SFN.StartExecution", 1),
           ("ads_reporting", "on_request", "SFN.StartExecution", 1),
           ("ads_reporting", "report_download", "S3.PutObject", 0),
           ("sp_reporting", "report_download", "S3.PutObject", 0),
           ("datalake", "on_object_event", "SQS.SendMessage", 0))
POISON = ('{"requestType": "createReport", "customerId": ', "[1, 2, 3]")  # not JSON; JSON but no request
AMC_HEADER, MANUAL_ROWS = "campaign,impressions\n", "alpha,10\nbeta,20\ngamma,30\n"
ADS_ROWS = json.dumps([{"campaignId": str(n), "cost": n / 10} for n in range(2000)]).encode()


@dataclass
class Tenant:
    customer: str
    instance: str
    profile_id: str
    sp_day: str
    table: str
    ids: dict[str, str] = field(default_factory=dict)  # service -> request id


@dataclass
class Run:
    """What the chaos run did and saw, for the tests to check."""

    tenants: list[Tenant]
    notes: dict[str, Notification]  # request id (a poison message's: its message id) -> its first answer
    statuses: dict[str, list[str]]  # request id -> the status of every notification received for it
    injected: Counter[tuple[str, int]]  # (api, status) -> calls the sandbox answered with an injected fault
    expired: int  # access tokens expired mid-flow
    refreshed: int  # tokens refreshed after that
    crashes: list[CrashRule]
    poison: dict[str, str]  # message id -> service
    outage: str  # the request id that failed on every attempt during the AMC outage
    outage_notes: list[Notification]  # its answers: ERROR, then SUCCEEDED once redriven
    redriven: dict[str, dict[str, Any]]  # service -> what Insights.redrive reported
    malformed: dict[str, str]  # "amc" / "ads" -> the s3 URI of the broken file
    seconds: dict[str, float]


def _requests(tenant: Tenant, sp_days_ago: int) -> dict[str, dict[str, Any]]:
    ads = {"customerId": tenant.customer, "profileId": tenant.profile_id, "region": "North America",
           "tableName": tenant.table, "requestBody": {
               "startDate": "TODAY(-3)", "endDate": "TODAY(-1)", "configuration": {
                   "adProduct": "SPONSORED_PRODUCTS", "groupBy": ["campaign"], "reportTypeId": "spCampaigns",
                   "timeUnit": "DAILY", "columns": ADS_COLUMNS}}}
    sales = {"customerId": tenant.customer, "region": "North America", "tablePrefix": tenant.table, "requestBody": {
        "reportType": "GET_SALES_AND_TRAFFIC_REPORT", "marketplaceIds": ["ATVPDKIKX0DER"],
        "reportOptions": {"dateGranularity": "DAY", "asinGranularity": "CHILD"},
        "dataStartTime": day(sp_days_ago), "dataEndTime": day(sp_days_ago - 2)}}
    return {"workflow": execution_request(tenant.customer), "ads_reporting": ads, "sp_reporting": sales}


def _explain(cloud: LocalCloud) -> dict[str, Any]:
    """Where unanswered requests may be: the request DLQs and the executions still running."""
    sfn, running = aws.client("stepfunctions"), {}
    for output in ("WorkflowExecutionsStateMachineArn", "AdsReportingReportsStateMachineArn",
                   "SpReportingReportsStateMachineArn"):
        for execution in sfn.list_executions(stateMachineArn=cloud.outputs[output],
                                             statusFilter="RUNNING")["executions"]:
            events = sfn.get_execution_history(executionArn=execution["executionArn"], reverseOrder=True,
                                               maxResults=3)["events"]
            running[execution["name"]] = [e["type"] for e in events]
    return {"dead letters": dead_letters(cloud, *SERVICES), "running executions": running}


@pytest.fixture(scope="module")
def cleared(cloud: LocalCloud) -> Iterator[None]:
    """Nothing of the chaos (faults, crash rules) outlives the module, even when the run fails."""
    yield
    cloud.sandbox.faults.clear()
    cloud.crashes.clear()


@pytest.fixture(scope="module")
def chaos(cloud: LocalCloud, inbox: Inbox, fast_amc: None, fast_ads: None, fast_sp: None, cleared: None
          ) -> Iterator[Run]:
    started, box, run = time.monotonic(), cloud.sandbox, uuid.uuid4().hex[:6]
    sp_days = [own_day() for _ in range(PROFILE.tenants)]
    tenants = []
    for n, days_ago in enumerate(sp_days):
        customer, instance = amc_tenant(cloud, inbox)
        tenant = Tenant(customer, instance, str(box.ads.add_profile("na").profile_id), day(days_ago),
                        f"chaos{run}_{n}")
        tenant.ids = {service: f"chaos-{run}-{n}-{service}" for service in SERVICES}
        tenants.append((tenant, _requests(tenant, days_ago)))
    onboarded = time.monotonic()

    # Throttling storms and server errors on every API the requests call, for more calls than one tenant makes;
    # the AMC API down for workflow creation; crashes after calls that take effect.
    for api, operation, status, times in (("amc", "createWorkflowExecution", 429, PROFILE.storm),
                                          ("amc", "getWorkflowExecution", 503, PROFILE.errors),
                                          ("ads", "createReport", 429, PROFILE.storm),
                                          ("ads", "getReport", 503, PROFILE.errors),
                                          ("sp", "createReport", 429, PROFILE.storm),
                                          ("sp", "getReport", 500, PROFILE.errors)):
        # Ads and AMC say when to retry; SP's throttling does not (its clients back off on their own)
        box.faults.add(api, operation, status=status, times=times,
                       retry_after=0.2 if status == 429 and api != "sp" else None)
    outage = box.faults.add("amc", "createWorkflow", status=503, retry_after=0.1, times=1_000_000)
    crashes = [cloud.crashes.add(cloud.apps[service].function(handler).name, call, after)
               for service, handler, call, after in CRASHES]
    # Stage B's Parquet goes up on s3transfer's threads; the partition it then adds is the job's own call
    crashes.append(cloud.crashes.add(cloud.outputs["DatalakeStageBJob"], "Glue.BatchCreatePartition"))
    before = {api: len(box.requests.where(api=api)) for api in ("amc", "ads", "sp")}

    sqs, poison = aws.client("sqs"), {}
    for service in SERVICES:
        for body in POISON:
            sent = sqs.send_message(QueueUrl=cloud.request_queue_url(service), MessageBody=body)
            poison[sent["MessageId"]] = service
    for _ in range(2):  # every request delivered twice, same request id
        for tenant, requests in tenants:
            for service, body in requests.items():
                send(cloud, service, {**json.loads(json.dumps(body)), "requestId": tenant.ids[service]})
    outage_id = send(cloud, "workflow", {"customerId": tenants[0][0].customer, "workflowRequest": {
        "requestType": "createWorkflow",
        "workflowDefinition": {"workflowId": "after_outage", "sqlQuery": "SELECT 1"}}})
    malformed = _malformed_files(cloud, tenants[0][0])
    # Every token expires once, while the first calls are in flight.
    wait_until(lambda: box.requests.where(api="ads", operation="getReport")
               and box.requests.where(api="amc", operation="createWorkflowExecution", status=200), 60, 0.05)
    expired, tokens_before = box.lwa.expire_all(), len(box.requests.where(api="lwa", operation="token", status=200))

    ids = [request_id for tenant, _ in tenants for request_id in tenant.ids.values()]
    notes = answers(inbox, [*ids, *poison, outage_id], PROFILE.timeout_s, lambda: _explain(cloud))
    wait_until(lambda: queue_idle(cloud.request_queue_url("workflow")))  # the failed request moved to the DLQ
    outage.times = 0  # the outage is over: what failed on every attempt is redriven by the operator
    insights = Insights(Platform.from_endpoints(cloud.endpoints))
    redriven = {service: insights.redrive(service) for service in SERVICES}
    recovered = inbox.wait_for(
        lambda n: n.body.get("request_id") == outage_id and n.attributes["status"] != "ERROR", 60)
    for service in SERVICES:
        wait_until(lambda s=service: queue_idle(cloud.request_queue_url(s)), 60)
    time.sleep(3)  # a late duplicate notification would arrive within this
    statuses: dict[str, list[str]] = {}
    for note in inbox.drain():
        statuses.setdefault(note.body.get("request_id"), []).append(note.attributes["status"])
    answered = time.monotonic()

    calls = [r for api in ("amc", "ads", "sp") for r in box.requests.where(api=api)[before[api]:]]
    yield Run(tenants=[tenant for tenant, _ in tenants], notes=notes, statuses=statuses,
              injected=Counter((r.api, r.status) for r in calls if r.status in (401, 403, 429) or r.status >= 500),
              expired=expired,
              refreshed=len(box.requests.where(api="lwa", operation="token", status=200)) - tokens_before,
              crashes=crashes, poison=poison, outage=outage_id, outage_notes=[notes[outage_id], recovered],
              redriven=redriven, malformed=malformed,
              seconds={"onboarding": onboarded - started, "pipeline": answered - onboarded})


def _malformed_files(cloud: LocalCloud, tenant: Tenant) -> dict[str, str]:
    """An AMC result with a row of three fields under a two-column header, and an Ads report cut short."""
    s3 = aws.client("s3")
    amc_key = "workflow=manual/schedule=adhoc/2026-11-27T06:00:00.000Z-manual.csv"
    s3.put_object(Bucket=f"amc-{tenant.customer}-results", Key=amc_key,
                  Body=(AMC_HEADER + MANUAL_ROWS.replace("beta,20", "beta,20,extra")).encode())
    report = gzip.compress(ADS_ROWS)
    ads_key = f"adtech/ads_report/{tenant.table}_cut/report_date=2026-11-01/report-cut.json.gz"
    s3.put_object(Bucket=cloud.outputs["ReportsBucket"], Key=ads_key, Body=report[: len(report) // 2])
    return {"amc": f"s3://amc-{tenant.customer}-results/{amc_key}",
            "ads": f"s3://{cloud.outputs['ReportsBucket']}/{ads_key}"}


# -- the invariants ----------------------------------------------------------------------------------------------


def test_every_request_is_answered_once_and_succeeds(chaos: Run) -> None:
    ids = [request_id for tenant in chaos.tenants for request_id in tenant.ids.values()]
    failed = {r: chaos.notes[r].body["summary"] for r in ids if chaos.notes[r].attributes["status"] != "SUCCEEDED"}

    assert not failed, failed
    assert {request_id: chaos.statuses[request_id] for request_id in ids} == {r: ["SUCCEEDED"] for r in ids}


def test_the_sandbox_made_one_execution_and_one_report_per_request(cloud: LocalCloud, chaos: Run) -> None:
    box = cloud.sandbox
    for tenant in chaos.tenants:
        made = sp_creates(cloud, tenant.sp_day, status=202)

        assert len(amc_creates(cloud, tenant.instance)) == 1, tenant
        assert len(box.amc.state.instances[tenant.instance].executions) == 1, tenant
        assert len([r for r in box.ads.state.reports.values() if r.profile_id == int(tenant.profile_id)]) == 1
        assert len(ads_creates(cloud, tenant.profile_id)) == 1 and len(made) == 1, tenant


def test_every_injected_fault_was_met(chaos: Run) -> None:
    injected = chaos.injected

    assert injected[("amc", 429)] and injected[("ads", 429)] and injected[("sp", 429)], injected
    assert injected[("amc", 503)] and injected[("ads", 503)] and injected[("sp", 500)], injected
    refused = sum(count for (_, status), count in injected.items() if status in (401, 403))
    assert chaos.expired > 0 and refused > 0 and chaos.refreshed > 0, (injected, chaos.refreshed)
    assert [(rule.runtime, rule.operation, rule.crashed) for rule in chaos.crashes] == [
        (rule.runtime, rule.operation, 1) for rule in chaos.crashes]


def test_poison_messages_are_rejected_with_their_reason_and_kept(chaos: Run) -> None:
    """Rejections are at least once: a function that crashes after rejecting a message of its batch rejects it
    again on redelivery (the workflow handler's crash above may do so), with the same reason each time."""
    for message_id, service in chaos.poison.items():
        summary = chaos.notes[message_id].body["summary"]
        kept = {m["reason"] for m in chaos.redriven[service]["kept"] if m["requestId"] == message_id}

        assert set(chaos.statuses[message_id]) == {"REJECTED"}, chaos.statuses[message_id]
        assert "(message): expected a JSON object" in summary, summary
        assert kept == {summary}  # each copy in the DLQ says why


def test_a_request_failed_by_an_outage_is_redriven_to_success(chaos: Run) -> None:
    errored, recovered = chaos.outage_notes

    assert errored.attributes["status"] == "ERROR", errored.body
    assert recovered.attributes["status"] == "SUCCEEDED", recovered.body
    assert chaos.redriven["workflow"]["redriven"] >= 1  # this one among them: kept it is not, and it succeeded
    assert chaos.outage not in {m["requestId"] for m in chaos.redriven["workflow"]["kept"]}
    assert chaos.statuses[chaos.outage] == ["ERROR", "SUCCEEDED"]  # and nothing more


def test_the_lake_holds_each_source_row_once(cloud: LocalCloud, chaos: Run) -> None:
    s3 = aws.client("s3")
    for tenant in chaos.tenants:
        ads = chaos.notes[tenant.ids["ads_reporting"]].body["details"]["s3Uri"]
        settled(cloud, "adtech-ads_report", ads)
        assert rows(cloud, tenant.table, "amci_local_adtech_ads_report") == len(json.loads(_read(ads)))

        sales = chaos.notes[tenant.ids["sp_reporting"]].body["details"]["s3Uri"]
        settled(cloud, "adtech-sp_report", sales)
        for array, items in json.loads(_read(sales)).items():
            if isinstance(items, list):
                assert rows(cloud, f"{tenant.table}_{array.lower()}", "amci_local_adtech_sp_report") == len(items)

        bucket = f"amc-{tenant.customer}-results"
        results = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="workflow=top/")["Contents"]
                   if o["Key"].endswith(".csv")]
        for key in results:
            settled(cloud, "adtech-amc", f"s3://{bucket}/{key}")
        expected = sum(len(list(csv.reader(io.StringIO(_read(f"s3://{bucket}/{key}").decode())))) - 1
                       for key in results)
        assert results and rows(cloud, "top_adhoc", f"amci_local_{tenant.customer}") == expected, tenant


def test_a_duplicate_s3_event_or_a_new_version_adds_no_rows(cloud: LocalCloud, chaos: Run) -> None:
    s3, sqs = aws.client("s3"), aws.client("sqs")
    events = sqs.get_queue_url(QueueName=cloud.outputs["DatalakeEventsQueue"])["QueueUrl"]
    ledger = aws.table(cloud.outputs["DatalakeObjectsTable"])
    for tenant in chaos.tenants:
        uri = chaos.notes[tenant.ids["ads_reporting"]].body["details"]["s3Uri"]
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        first = settled(cloud, "adtech-ads_report", uri)
        head = s3.head_object(Bucket=bucket, Key=key)
        counted = rows(cloud, tenant.table, "amci_local_adtech_ads_report")
        event_id = {"objectId": f"{uri}#{first}#CREATED"}
        recorded, seen = ledger.get_item(Key=event_id, ConsistentRead=True)["Item"], _versions(cloud, uri)

        sqs.send_message(QueueUrl=events, MessageBody=json.dumps(_object_event(bucket, key, head)))
        copied = s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": key},
                                Metadata=head["Metadata"], MetadataDirective="REPLACE",
                                ServerSideEncryption=head.get("ServerSideEncryption", "aws:kms"))
        assert copied["VersionId"] != first, copied
        settled(cloud, "adtech-ads_report", uri, copied["VersionId"])
        wait_until(lambda: queue_idle(events), 30)

        assert rows(cloud, tenant.table, "amci_local_adtech_ads_report") == counted, tenant
        assert ledger.get_item(Key=event_id, ConsistentRead=True)["Item"] == recorded  # the repeat was a no-op
        assert _versions(cloud, uri) == seen | {copied["VersionId"]}  # the copy is new; the repeated event is not


def test_malformed_files_are_quarantined_with_their_reason_and_land_once_fixed(
        cloud: LocalCloud, inbox: Inbox, chaos: Run) -> None:
    amc, ads = chaos.malformed["amc"], chaos.malformed["ads"]
    amc_told = inbox.wait_for(lambda n: n.attributes["requestType"] == "stageB" and amc in n.body["summary"], 90)
    ads_told = inbox.wait_for(lambda n: n.attributes["requestType"] == "stageA" and ads in n.body["summary"], 90)
    held = [json.loads(line) for line in _read(amc_told.body["details"]["quarantine"]).decode().splitlines()]
    bucket, key = amc.removeprefix("s3://").split("/", 1)
    database = "amci_local_" + bucket.removeprefix("amc-").removesuffix("-results")

    assert amc_told.attributes["status"] == ads_told.attributes["status"] == "REJECTED"
    assert [(row["row"], row["reason"]) for row in held] == [(2, "expected 2 fields, got 3")], held
    assert rows(cloud, "manual_adhoc", database) == 2  # the good rows of the file landed
    assert "cut short" in _quarantined_object(cloud, "adtech-ads_report", ads)["reason"]

    fixed = aws.client("s3").put_object(Bucket=bucket, Key=key, Body=(AMC_HEADER + MANUAL_ROWS).encode())
    settled(cloud, "adtech-amc", amc, fixed["VersionId"])
    assert rows(cloud, "manual_adhoc", database) == 3  # the fixed file replaces what its broken version wrote

    bucket, key = ads.removeprefix("s3://").split("/", 1)
    fixed = aws.client("s3").put_object(Bucket=bucket, Key=key, Body=gzip.compress(ADS_ROWS))
    settled(cloud, "adtech-ads_report", ads, fixed["VersionId"])
    assert rows(cloud, key.split("/")[2], "amci_local_adtech_ads_report") == 2000

    print(f"\nchaos[{os.environ.get('AMCI_CHAOS', 'default')}]: {len(chaos.tenants)} tenants, "
          f"{3 * len(chaos.tenants)} requests x2 deliveries, {len(chaos.poison)} poison messages; injected "
          f"{dict(sorted(chaos.injected.items()))}, {chaos.expired} tokens expired ({chaos.refreshed} refreshes), "
          f"{len(chaos.crashes)} crashes; onboarding {chaos.seconds['onboarding']:.1f}s, "
          f"pipeline {chaos.seconds['pipeline']:.1f}s")


# -- reading the lake -----------------------------------------------------------------------------------------------


def rows(cloud: LocalCloud, table: str, database: str) -> int:
    return int(sql(cloud, f"SELECT COUNT(*) AS n FROM {table}", database)[0]["n"])


def settled(cloud: LocalCloud, dataset: str, uri: str, version: str | None = None, timeout_s: float = 120) -> str:
    """Wait until stage A recorded ``version`` of ``uri`` (its current one by default) and nothing of it waits for
    stage B; returns the version."""
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    version = version or aws.client("s3").head_object(Bucket=bucket, Key=key).get("VersionId", "")

    def done() -> bool:
        items = pipeline_items(cloud, dataset)
        return (any(i["itemId"].startswith(f"object#{uri}#{version}") for i in items)
                and not any(i["itemId"].startswith("pending#") and i.get("source") == uri for i in items))
    wait_until(done, timeout_s)
    return version


def _versions(cloud: LocalCloud, uri: str) -> set[str]:
    """The versions of ``uri`` stage A recorded (a download retried after a crash writes the file twice)."""
    return {i["itemId"].rsplit("#", 1)[1] for i in pipeline_items(cloud, "adtech-ads_report")
            if i["itemId"].startswith(f"object#{uri}#")}


def _quarantined_object(cloud: LocalCloud, dataset: str, uri: str) -> dict[str, Any]:
    """Stage A's record of a version of ``uri`` it quarantined."""
    return wait_until(lambda: next((i for i in pipeline_items(cloud, dataset) if i["itemId"].startswith(
        f"object#{uri}#") and i.get("status") == "QUARANTINED"), None), 90)


def _read(uri: str) -> bytes:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body


def _object_event(bucket: str, key: str, head: dict[str, Any]) -> dict[str, Any]:
    """The EventBridge "Object Created" event S3 sends for the object version ``head`` describes."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Object Created", "source": "aws.s3",
            "time": datetime.now(UTC).isoformat(timespec="seconds"), "region": "us-east-1", "resources": [],
            "detail": {"version": "0", "bucket": {"name": bucket}, "reason": "PutObject", "object": {
                "key": key, "size": head["ContentLength"], "etag": head["ETag"].strip('"'),
                "version-id": head.get("VersionId", "")}}}
