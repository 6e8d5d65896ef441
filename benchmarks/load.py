"""Load: N tenants x M workflows on this machine, every tenant also requesting an Amazon Ads and an SP report at
the same time, through the local cloud in this process (the five apps, moto, the sandbox, all on the same cores).

Stages, each timed from what the platform records:

* onboarding   request sent -> the tenant's SUCCEEDED status (its stacks, registrations, lake grants)
* workflow     createWorkflow sent -> SUCCEEDED (an AMC call from the request handler)
* execution    createExecution sent -> SUCCEEDED (Step Functions: admit, start, poll, finish)
* ads / sp     createReport sent -> SUCCEEDED (create, poll, stream the file into the reports bucket)
* stage A      the file's S3 write -> stage A's record (routed, read, pre-staged)
* stage B      stage A's record -> the file's Parquet written and catalogued (batched Glue job runs)

The baseline is the same work for 1 tenant x 1 workflow in the same run, before the load: each stage's latency
alone. The sandbox runs AMC executions in about 2 s and reports in about 1 s, so what is measured is the platform,
not Amazon's queue. SP's rate limits are raised: every tenant here uses the sandbox's one seller, whose documented
quota (``createReport`` one a minute after a burst of 15) would make 40 sales reports take 25 minutes, where 40
sellers would each have their own.

Usage: python benchmarks/load.py [--tenants N] [--workflows M] [--out FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from amci.inbox import Inbox, Notification  # noqa: E402  (after the path)
from benchmarks.measure import machine  # noqa: E402
from local.cloud import LocalCloud  # noqa: E402
from local.sandbox.amc.state import AmcTimings  # noqa: E402
from shared import aws  # noqa: E402
from shared.amazon import sp  # noqa: E402

PARAMETERS = {"ExecutionPollSeconds": 1, "ReportPollSeconds": 2}
STAGES = ("onboarding", "workflow", "execution", "ads", "sp", "stage A", "stage B")
DATASETS = {"amc": "adtech-amc", "ads": "adtech-ads_report", "sp": "adtech-sp_report"}


@dataclass
class Timed:
    """When each request was sent and answered, and how."""

    sent: dict[str, tuple[str, float]] = field(default_factory=dict)  # request id -> (stage, sent at)
    answered: dict[str, tuple[Notification, float]] = field(default_factory=dict)

    def send(self, cloud: LocalCloud, service: str, stage: str, body: dict[str, Any]) -> str:
        request_id = uuid.uuid4().hex
        aws.client("sqs").send_message(QueueUrl=cloud.request_queue_url(service),
                                       MessageBody=json.dumps({**body, "requestId": request_id}))
        self.sent[request_id] = (stage, time.time())
        return request_id

    def wait(self, inbox: Inbox, request_ids: list[str], timeout_s: float, progress: Callable[[int], None]) -> None:
        deadline, seen = time.monotonic() + timeout_s, len(inbox.received)
        while any(r not in self.answered for r in request_ids):
            if time.monotonic() > deadline:
                missing = [r for r in request_ids if r not in self.answered]
                raise TimeoutError(f"{len(missing)} requests unanswered after {timeout_s:.0f}s")
            inbox.drain(wait_s=1)
            for note in inbox.received[seen:]:
                request_id = note.body.get("request_id")
                if request_id in self.sent and request_id not in self.answered:
                    self.answered[request_id] = (note, time.time())
            seen = len(inbox.received)
            progress(sum(r in self.answered for r in request_ids))

    def latencies(self, request_ids: list[str]) -> dict[str, list[float]]:
        by_stage: dict[str, list[float]] = {}
        for request_id in request_ids:
            stage, sent = self.sent[request_id]
            note, at = self.answered[request_id]
            if note.attributes["status"] != "SUCCEEDED":
                raise RuntimeError(f"{stage} {request_id} ended {note.attributes['status']}: {note.body['summary']}")
            by_stage.setdefault(stage, []).append(at - sent)
        return by_stage


def _tenant_details(customer: str, instance: str, credentials: dict[str, str]) -> dict[str, Any]:
    return {"customer_details": {
        "customer_id": customer, "customer_name": f"load {customer}", "bucket_exists": "false",
        "amc": {"aws_orange_account_id": "111122223333", "bucket_name": f"amc-{customer}-results",
                "instance_id": instance, "amazon_ads_advertiser_id": credentials["advertiser_id"],
                "amazon_ads_marketplace_id": credentials["marketplace_id"]}}}


def _day(days_ago: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=days_ago)).isoformat()


def run_load(cloud: LocalCloud, inbox: Inbox, tenants: int, workflows: int, label: str) -> dict[str, Any]:
    """Onboard ``tenants``, create ``workflows`` each, run them all with an Ads and an SP report per tenant."""
    box, timed, started = cloud.sandbox, Timed(), time.monotonic()
    credentials = box.credentials
    customers = [f"ld{uuid.uuid4().hex[:8]}" for _ in range(tenants)]
    onboarding = []
    for customer in customers:
        instance = f"amc{uuid.uuid4().hex[:8]}"
        box.amc.register_instance(instance, credentials["advertiser_id"], credentials["marketplace_id"],
                                  f"amc-{customer}-results")
        onboarding.append(timed.send(cloud, "tenant", "onboarding", _tenant_details(customer, instance, credentials)))
    step(f"{label}: onboarding {tenants} tenants")
    timed.wait(inbox, onboarding, 600, progress(len(onboarding)))
    names = [f"load_{n}" for n in range(workflows)]
    created = [timed.send(cloud, "workflow", "workflow", {"customerId": customer, "workflowRequest": {
        "requestType": "createWorkflow", "workflowDefinition": {
            "workflowId": name, "sqlQuery": "SELECT campaign, SUM(impressions) AS impressions FROM t GROUP BY 1"}}})
        for customer in customers for name in names]
    step(f"{label}: creating {len(created)} workflows")
    timed.wait(inbox, created, 600, progress(len(created)))

    jobs_started, jobs_started_at = time.monotonic(), time.time()
    jobs = []
    for customer in customers:
        for name in names:
            jobs.append(timed.send(cloud, "workflow", "execution", {
                "customerId": customer, "requestType": "createExecution", "createExecutionRequest": {
                    "workflowId": name, "timeWindowType": "EXPLICIT", "timeWindowStart": "TODAY(-2)",
                    "timeWindowEnd": "TODAY(-1)", "timeWindowTimeZone": "America/New_York"}}))
        profile = str(box.ads.add_profile("na").profile_id)
        jobs.append(timed.send(cloud, "ads_reporting", "ads", {
            "customerId": customer, "profileId": profile, "region": "North America", "tableName": f"load_{customer}",
            "requestBody": {"startDate": "TODAY(-3)", "endDate": "TODAY(-1)", "configuration": {
                "adProduct": "SPONSORED_PRODUCTS", "groupBy": ["campaign"], "reportTypeId": "spCampaigns",
                "timeUnit": "DAILY", "columns": ["date", "campaignId", "impressions", "cost"]}}}))
        days_ago = 40 + (uuid.uuid4().int % 600)
        jobs.append(timed.send(cloud, "sp_reporting", "sp", {
            "customerId": customer, "region": "North America", "tablePrefix": f"load_{customer}", "requestBody": {
                "reportType": "GET_SALES_AND_TRAFFIC_REPORT", "marketplaceIds": ["ATVPDKIKX0DER"],
                "reportOptions": {"dateGranularity": "DAY"}, "dataStartTime": _day(days_ago),
                "dataEndTime": _day(days_ago - 1)}}))
    step(f"{label}: {len(jobs)} executions and reports at once")
    timed.wait(inbox, jobs, 1800, progress(len(jobs)))
    jobs_done = time.monotonic()
    sources = [_source(timed.answered[j][0]) for j in jobs]
    step(f"{label}: the lake takes {len(sources)} files")
    lake, lake_done = _lake_latencies(cloud, sources, progress(len(sources)))
    latencies = {**timed.latencies(onboarding + created + jobs), **lake}
    return {"label": label, "tenants": tenants, "workflows": workflows, "jobs": len(jobs),
            "jobs_s": jobs_done - jobs_started, "lake_s": lake_done - jobs_started_at,
            "total_s": time.monotonic() - started, "latencies": latencies}


def _source(note: Notification) -> tuple[str, str]:
    """(dataset, s3 URI) of the file a job wrote."""
    details = note.body["details"]
    if "outputS3URI" in details:
        bucket = details["outputS3URI"].removeprefix("s3://").split("/", 1)[0]
        prefix = f"workflow={details['workflowId']}/"
        keys = [o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
                if o["Key"].endswith(".csv")]
        return DATASETS["amc"], f"s3://{bucket}/{keys[0]}"
    return DATASETS["ads" if note.attributes["service"] == "ads_reporting" else "sp"], details["s3Uri"]


def _lake_latencies(cloud: LocalCloud, sources: list[tuple[str, str]], report: Callable[[int], None],
                    timeout_s: float = 900) -> tuple[dict[str, list[float]], float]:
    """Stage A: S3 write -> stage A's record; stage B: that -> the file's Parquet catalogued. Also when the last
    file was catalogued (epoch seconds)."""
    pipeline, s3 = aws.table(cloud.outputs["DatalakePipelineTable"]), aws.client("s3")
    deadline, done = time.time() + timeout_s, {}
    while len(done) < len(sources):
        if time.time() > deadline:
            raise TimeoutError(f"{len(sources) - len(done)} files not in the lake after {timeout_s:.0f}s")
        for dataset in {d for d, _ in sources}:
            items = list(aws.items(pipeline.query, KeyConditionExpression="dataset = :d",
                                   ExpressionAttributeValues={":d": dataset}, ConsistentRead=True))
            staged = {i["itemId"].split("#")[1]: float(i["updatedAt"]) for i in items
                      if i["itemId"].startswith("object#")}
            converted = _converted(items)
            for d, uri in sources:
                if d == dataset and uri not in done and uri in staged and uri in converted:
                    bucket, key = uri.removeprefix("s3://").split("/", 1)
                    written = s3.head_object(Bucket=bucket, Key=key)["LastModified"].timestamp()
                    done[uri] = (staged[uri] - written, converted[uri] - staged[uri], converted[uri])
        report(len(done))
        time.sleep(1)
    return ({"stage A": [a for a, _, _ in done.values()], "stage B": [b for _, b, _ in done.values()]},
            max(last for _, _, last in done.values()))


def _converted(items: list[dict[str, Any]]) -> dict[str, float]:
    """When each source's last pre-stage file (an SP report makes one per table) was catalogued, for sources
    whose every file is; a pending file holds its source back."""
    files: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        if item["itemId"].startswith(("file#", "pending#")) and item.get("source"):
            files.setdefault(item["source"], []).append(item)
    return {source: max(float(f["updatedAt"]) for f in found) for source, found in files.items()
            if all(f["itemId"].startswith("file#") and f.get("status") == "PROCESSED" for f in found)}


def step(text: str) -> None:
    print(f"\n{text}", file=sys.stderr, flush=True)


def progress(total: int) -> Callable[[int], None]:
    def report(done: int) -> None:
        print(f"\r  {done}/{total}", end="", file=sys.stderr, flush=True)
    return report


def _figures(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{statistics.median(ordered):.1f} / {p95:.1f} / {ordered[-1]:.1f}"


def table(baseline: dict[str, Any], load: dict[str, Any]) -> str:
    lines = [f"| stage | baseline (1 tenant x 1 workflow): median s | {load['tenants']} tenants x "
             f"{load['workflows']} workflows: n | median / p95 / max s |", "|---|---:|---:|---:|"]
    for stage in STAGES:
        loaded, alone = load["latencies"].get(stage, []), baseline["latencies"].get(stage, [])
        lines.append(f"| {stage} | {statistics.median(alone):.1f} | {len(loaded)} | {_figures(loaded)} |")
    jobs, files = load["jobs"], len(load["latencies"]["stage B"])
    return "\n".join(lines) + (
        f"\n\nThroughput: {jobs} executions and reports answered {load['jobs_s']:.0f} s after the first was sent "
        f"({jobs / load['jobs_s'] * 60:.0f} a minute); their {files} files all queryable in the lake "
        f"{load['lake_s']:.0f} s after the first request ({files / load['lake_s'] * 60:.0f} a minute).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--workflows", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "load.md")
    options = parser.parse_args()

    with LocalCloud(port=0, parameters=PARAMETERS) as cloud:
        box = cloud.sandbox
        box.amc.timings = AmcTimings(pending_s=0.3, running_s=1.0, publishing_s=0.3, tick_s=0.1)
        box.ads.state.timings = dataclasses.replace(box.ads.timings, pending_s=0.3, processing_s=0.5)
        box.sp.timings.queued_s, box.sp.timings.processing_s = 0.2, 0.3
        for limits in (box.sp.limits, sp.LIMITER.limits):  # each tenant a seller with its own quota (see above)
            limits.update(dict.fromkeys(limits, (100.0, 100.0)))
        inbox = Inbox(aws.client("sqs"), aws.client("sns"), cloud.outputs["StatusTopicArn"])
        baseline = run_load(cloud, inbox, 1, 1, "baseline")
        load = run_load(cloud, inbox, options.tenants, options.workflows, "load")
    figures = table(baseline, load)
    text = (f"Machine: {machine()}. Local cloud in the benchmark's process, parameters {PARAMETERS}; the load run "
            f"took {load['total_s']:.0f} s in all (onboarding included), the baseline {baseline['total_s']:.0f} s."
            f"\n\n{figures}\n")
    options.out.write_text(text)
    print("\n\n" + text)


if __name__ == "__main__":
    main()
