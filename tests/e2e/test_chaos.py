"""Chaos, end to end on the local cloud: several tenants at once run an AMC execution, an Amazon Ads report and an
SP report, every request delivered twice, while the sandbox throttles, fails with 5xx and expires every token.

Invariants: each request id gets exactly one terminal notification; the sandbox made one AMC execution per tenant
and one report per Ads profile and per SP request; the Ads report's rows in the lake equal the rows of its file,
and a duplicate S3 event (the same event re-sent, then a new version copied onto the object) adds none.

``AMCI_CHAOS=heavy`` scales tenants and faults up (opt-in; the default profile is meant for every run).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from amci.inbox import Inbox
from local.cloud import LocalCloud
from local.sandbox.faults import Faults
from shared import aws, lake
from shared.amazon import sp
from tests.support import amc_creates, amc_tenant, answer, execution_request, queue_idle, send, wait_until


@dataclass(frozen=True)
class Profile:
    tenants: int
    storm: int  # 429s injected per throttled operation
    errors: int  # 5xx injected per failing operation
    timeout_s: float


PROFILES = {"default": Profile(tenants=3, storm=4, errors=3, timeout_s=120),
            "heavy": Profile(tenants=8, storm=12, errors=8, timeout_s=300)}
PROFILE = PROFILES[os.environ.get("AMCI_CHAOS", "default")]
ADS_COLUMNS = ["date", "campaignId", "campaignName", "impressions", "cost"]
SERVICES = ("workflow", "ads_reporting", "sp_reporting")
GENEROUS = (1000.0, 1000.0)


@pytest.fixture
def fast_sp(cloud: LocalCloud) -> Iterator[None]:
    """SP reports ready in a fraction of a second and generous rate limits on both sides; restored afterwards."""
    box = cloud.sandbox
    timings, limits, client_limits = dataclasses.replace(box.sp.timings), dict(box.sp.limits), dict(sp.LIMITER.limits)
    box.sp.timings.queued_s, box.sp.timings.processing_s = 0.2, 0.3
    for current in (box.sp.limits, sp.LIMITER.limits):
        current.update(dict.fromkeys(current, GENEROUS))
    yield
    box.sp.timings.__dict__.update(dataclasses.asdict(timings))
    for current, saved in ((box.sp.limits, limits), (sp.LIMITER.limits, client_limits)):
        current.clear()
        current.update(saved)


@dataclass
class Tenant:
    customer: str
    instance: str
    profile_id: str
    sp_day: str
    table: str
    ids: dict[str, str]  # service -> request id


def _day(days_ago: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=days_ago)).isoformat()


def _requests(tenant: Tenant, sp_days_ago: int) -> dict[str, dict[str, Any]]:
    ads = {"customerId": tenant.customer, "profileId": tenant.profile_id, "region": "North America",
           "tableName": tenant.table, "requestBody": {
               "startDate": "TODAY(-3)", "endDate": "TODAY(-1)", "configuration": {
                   "adProduct": "SPONSORED_PRODUCTS", "groupBy": ["campaign"], "reportTypeId": "spCampaigns",
                   "timeUnit": "DAILY", "columns": ADS_COLUMNS}}}
    sales = {"customerId": tenant.customer, "region": "North America", "requestBody": {
        "reportType": "GET_SALES_AND_TRAFFIC_REPORT", "marketplaceIds": ["ATVPDKIKX0DER"],
        "reportOptions": {"dateGranularity": "DAY", "asinGranularity": "CHILD"},
        "dataStartTime": _day(sp_days_ago), "dataEndTime": _day(sp_days_ago - 2)}}
    return {"workflow": execution_request(tenant.customer), "ads_reporting": ads, "sp_reporting": sales}


def _ads_creates(cloud: LocalCloud, profile_id: str, status: int | None = None) -> list[Any]:
    return [r for r in cloud.sandbox.requests.where(api="ads", operation="createReport", status=status)
            if {k.lower(): v for k, v in r.headers.items()}.get("amazon-advertising-api-scope") == profile_id]


def _sp_creates(cloud: LocalCloud, start: str, status: int | None = None) -> list[Any]:
    return [r for r in cloud.sandbox.requests.where(api="sp", operation="createReport", status=status)
            if isinstance(r.body, dict) and str(r.body.get("dataStartTime", "")).startswith(start)]


def _sql(cloud: LocalCloud, statement: str) -> list[dict[str, Any]]:
    return lake.query(aws.client("athena"), statement, database="amci_local_adtech_ads_report",
                      output=f"s3://{cloud.outputs['StageBucket']}/athena/").as_dicts()


def _lake_items(cloud: LocalCloud) -> list[dict[str, Any]]:
    table = aws.table(cloud.outputs["DatalakePipelineTable"])
    return table.query(KeyConditionExpression="dataset = :d", ExpressionAttributeValues={":d": "adtech-ads_report"},
                       ConsistentRead=True)["Items"]


def _settled(cloud: LocalCloud, source: str, version: str) -> bool:
    """Stage A recorded this version of ``source``, and nothing of ``source`` waits for stage B."""
    items = _lake_items(cloud)
    return (any(i["itemId"].startswith(f"object#{source}#{version}") for i in items)
            and not any(i["itemId"].startswith("pending#") and i.get("source") == source for i in items))


def _lake_rows(cloud: LocalCloud, table: str) -> int:
    return int(_sql(cloud, f"SELECT COUNT(*) AS n FROM {table}")[0]["n"])


def _object_event(bucket: str, key: str, head: dict[str, Any]) -> dict[str, Any]:
    """The EventBridge "Object Created" event S3 sends for the object version ``head`` describes."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Object Created", "source": "aws.s3",
            "time": datetime.now(UTC).isoformat(timespec="seconds"), "region": "us-east-1", "resources": [],
            "detail": {"version": "0", "bucket": {"name": bucket}, "reason": "PutObject", "object": {
                "key": key, "size": head["ContentLength"], "etag": head["ETag"].strip('"'),
                "version-id": head.get("VersionId", "")}}}


def test_tenants_at_once_under_faults_and_duplicates_keep_every_invariant(
        cloud: LocalCloud, inbox: Inbox, faults: Faults, fast_amc: None, fast_ads: None, fast_sp: None) -> None:
    started, box, run = time.monotonic(), cloud.sandbox, uuid.uuid4().hex[:6]
    sp_days = random.Random(uuid.uuid4().int).sample(range(40, 700), PROFILE.tenants)
    tenants = []
    for n, days_ago in enumerate(sp_days):
        customer, instance = amc_tenant(cloud, inbox)
        tenant = Tenant(customer, instance, str(box.ads.add_profile("na").profile_id), _day(days_ago),
                        f"chaos{run}_{n}", {})
        tenant.ids = {service: f"chaos-{run}-{n}-{service}" for service in SERVICES}
        tenants.append((tenant, _requests(tenant, days_ago)))
    onboarded = time.monotonic()

    # Throttling storms and server errors on every API the requests call, for more calls than one tenant makes.
    storm, errors = PROFILE.storm, PROFILE.errors
    faults.add("amc", "createWorkflowExecution", status=429, retry_after=0.3, times=storm)
    faults.add("amc", "getWorkflowExecution", status=503, times=errors)
    faults.add("ads", "createReport", status=429, retry_after=0.2, times=storm)
    faults.add("ads", "getReport", status=503, times=errors)
    faults.add("sp", "createReport", status=429, times=storm)
    faults.add("sp", "getReport", status=500, times=errors)
    before = {api: len(box.requests.where(api=api)) for api in ("amc", "ads", "sp")}

    for _ in range(2):  # every request delivered twice, same request id
        for tenant, requests in tenants:
            for service, body in requests.items():
                send(cloud, service, {**json.loads(json.dumps(body)), "requestId": tenant.ids[service]})
    # Every token expires once, while the first calls are in flight.
    wait_until(lambda: box.requests.where(api="ads", operation="getReport")
               and box.requests.where(api="amc", operation="createWorkflowExecution", status=200), 60, 0.05)
    expired, tokens_before = box.lwa.expire_all(), len(box.requests.where(api="lwa", operation="token", status=200))

    notes = {}
    for tenant, _ in tenants:
        for request_id in tenant.ids.values():
            notes[request_id] = answer(inbox, request_id, PROFILE.timeout_s)
    for service in SERVICES:
        wait_until(lambda s=service: queue_idle(cloud.request_queue_url(s)), 60)
    time.sleep(3)  # a late duplicate notification would arrive within this
    received = Counter(n.body.get("request_id") for n in inbox.drain())
    answered = time.monotonic()

    statuses = {request_id: note.attributes["status"] for request_id, note in notes.items()}
    assert set(statuses.values()) == {"SUCCEEDED"}, {r: notes[r].body["summary"] for r, s in statuses.items()
                                                     if s != "SUCCEEDED"}
    assert {request_id: received[request_id] for request_id in notes} == dict.fromkeys(notes, 1)
    for tenant, _ in tenants:
        assert len(amc_creates(cloud, tenant.instance)) == 1, tenant
        assert len(box.amc.state.instances[tenant.instance].executions) == 1, tenant
        assert len([r for r in box.ads.state.reports.values() if r.profile_id == int(tenant.profile_id)]) == 1
        assert len([r for r in _ads_creates(cloud, tenant.profile_id) if r.status < 300]) == 1, tenant
        assert len(_sp_creates(cloud, tenant.sp_day, status=202)) == 1, tenant
    answered_calls = [r for api in ("amc", "ads", "sp") for r in box.requests.where(api=api)[before[api]:]]
    injected = Counter((r.api, r.status) for r in answered_calls if r.status in (401, 403, 429) or r.status >= 500)
    assert injected[("amc", 429)] and injected[("ads", 429)] and injected[("sp", 429)], injected
    assert injected[("amc", 503)] and injected[("ads", 503)] and injected[("sp", 500)], injected
    refused = sum(count for (_, status), count in injected.items() if status in (401, 403))
    refreshed = len(box.requests.where(api="lwa", operation="token", status=200)) - tokens_before
    assert expired > 0 and refused > 0 and refreshed > 0, (injected, refreshed)  # the expiry was met and ridden out

    # The lake: each Ads report's rows, once, after the same S3 event twice and a second version of the object.
    s3, events = aws.client("s3"), aws.client("sqs").get_queue_url(QueueName=cloud.outputs["DatalakeEventsQueue"])
    for tenant, _ in tenants:
        uri = notes[tenant.ids["ads_reporting"]].body["details"]["s3Uri"]
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        head = s3.head_object(Bucket=bucket, Key=key)
        first = head.get("VersionId", "")
        rows = len(json.loads(gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read())))
        wait_until(lambda u=uri, v=first: _settled(cloud, u, v), 90)
        ledger = aws.table(cloud.outputs["DatalakeObjectsTable"])
        event_id = {"objectId": f"{uri}#{first}#CREATED"}
        recorded = ledger.get_item(Key=event_id, ConsistentRead=True)["Item"]
        assert rows > 0 and _lake_rows(cloud, tenant.table) == rows, tenant

        aws.client("sqs").send_message(QueueUrl=events["QueueUrl"], MessageBody=json.dumps(
            _object_event(bucket, key, head)))
        copied = s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": key},
                                Metadata=head["Metadata"], MetadataDirective="REPLACE",
                                ServerSideEncryption=head.get("ServerSideEncryption", "aws:kms"))
        assert copied.get("VersionId") and copied["VersionId"] != head.get("VersionId"), copied
        wait_until(lambda u=uri, v=copied["VersionId"]: _settled(cloud, u, v), 90)
        wait_until(lambda: queue_idle(events["QueueUrl"]), 30)
        assert _lake_rows(cloud, tenant.table) == rows, tenant
        assert ledger.get_item(Key=event_id, ConsistentRead=True)["Item"] == recorded  # the repeat was a no-op
        versions = sorted(i["itemId"] for i in _lake_items(cloud) if i["itemId"].startswith(f"object#{uri}#"))
        assert versions == sorted(f"object#{uri}#{v}" for v in (first, copied["VersionId"])), versions

    print(f"\nchaos[{os.environ.get('AMCI_CHAOS', 'default')}]: {PROFILE.tenants} tenants, "
          f"{3 * PROFILE.tenants} requests x2 deliveries; injected {dict(sorted(injected.items()))}, "
          f"{expired} tokens expired ({refused} calls refused, {refreshed} refreshes); "
          f"onboarding {onboarded - started:.1f}s, pipeline {answered - onboarded:.1f}s, "
          f"lake {time.monotonic() - answered:.1f}s")
