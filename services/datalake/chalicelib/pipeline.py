"""The lake's pipeline between an object event and stage B: routing, stage A, and batching.

``route``     an intake object (raw bucket, reports bucket, a tenant's AMC bucket) -> its dataset -> the stage A queue
``stage_a``   the dataset's light transform -> pre-stage files in the stage bucket, each a *pending* item of its
              dataset in the pipeline table (``pending#<pre-stage key>``)
``batch``     (every minute) per dataset, once ``min_items`` wait or the oldest has waited ``max_wait_s``: claim up
              to ``max_items`` and start a stage B run (the Glue job ``glue/stage_b.py``). A failed run's files are
              claimed again; the one it was working on when it failed counts an attempt, and after MAX_ATTEMPTS it
              goes to the stage B dead-letter queue with the reason.

Every step is idempotent: pre-stage names are the source's, a replay writes the same keys and the same pending item.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.conditions import Attr
from boto3.s3.transfer import TransferConfig

from chalicelib import stage_a
from chalicelib.datasets import Dataset, Registry
from chalicelib.intake import ObjectEvent
from shared import aws
from shared.config import require
from shared.lake import entry_point, pending_files, put_metrics
from shared.requests import Quarantine
from shared.status import PLATFORM_TENANT, Status, StatusMessage, StatusPublisher

log = logging.getLogger(__name__)

PENDING, CLAIMED = "PENDING", "CLAIMED"
MAX_ATTEMPTS = 3
HISTORY_S = 90 * 24 * 3600  # object and run records expire after this
UPLOAD_PART = 8 * 1024 * 1024
S3_METADATA_BYTES = 2048  # user metadata, keys and values together
_FAILED_RUN = ("FAILED", "ERROR", "TIMEOUT", "STOPPED", "EXPIRED", "NOT_STARTED")
_UNSTARTED_S = 300  # a claim whose run never started is released after this


@dataclass(frozen=True)
class Lake:
    """The lake's resources, from the function's environment."""

    stage: str
    raw_bucket: str
    reports_bucket: str
    stage_bucket: str
    stage_a_queue: str
    stage_b_job: str
    stage_b_dlq: str

    @classmethod
    def from_env(cls) -> Lake:
        return cls(require("STAGE"), require("RAW_BUCKET"), require("REPORTS_BUCKET"), require("STAGE_BUCKET"),
                   require("DATALAKE_STAGE_A_QUEUE"), require("DATALAKE_STAGE_B_JOB"), require("DATALAKE_STAGE_B_DLQ"))


# -- routing --------------------------------------------------------------------------------------------------


def route(event: ObjectEvent, lake: Lake, registry: Registry, tenants: Any) -> dict[str, Any] | None:
    """The stage A message for an object, or None when it belongs to no dataset (recorded, not an error)."""
    if event.action != "CREATED":
        return None
    customer_id, database = None, None
    if event.bucket in (lake.reports_bucket, lake.raw_bucket):  # keys start <team>/<dataset>/
        key = "-".join(event.key.split("/")[:2])
    else:
        tenant = tenants.get_item(Key={"bucket": event.bucket}, ConsistentRead=True).get("Item")
        if tenant is None:
            return None
        key, customer_id, database = f"{tenant['team']}-{tenant['dataset']}", tenant["customerId"], tenant["database"]
    dataset = registry.get(key)
    if dataset is None:
        return None
    return {"bucket": event.bucket, "key": event.key, "versionId": event.version_id, "dataset": dataset.key,
            "customerId": customer_id, "database": database or dataset.database(lake.stage)}


def send_to_stage_a(event: ObjectEvent, lake: Lake, registry: Registry, tenants: Any, sqs: Any,
                    stage_a_url: str) -> str:
    """Route an object and queue it for stage A; what happened, for the intake ledger."""
    message = route(event, lake, registry, tenants)
    if message is None:
        return "DELETED" if event.action != "CREATED" else "UNROUTED"
    sqs.send_message(QueueUrl=stage_a_url, MessageBody=json.dumps(message))
    return "ROUTED"


# -- stage A --------------------------------------------------------------------------------------------------


def run_stage_a(message: dict[str, Any], lake: Lake, registry: Registry, s3: Any, pipeline: Any,
                publisher: StatusPublisher) -> str:
    """Transform one object; returns what happened (STAGED, SKIPPED or QUARANTINED), recorded on the object. A
    quarantined object stays where it is (nothing is lost); its owner is told why."""
    dataset = registry.get(message["dataset"])
    if dataset is None:
        raise LookupError(f"dataset {message['dataset']} is not registered any more")
    version = {"VersionId": message["versionId"]} if message.get("versionId") else {}
    where = (message["bucket"], message["key"], message.get("versionId") or "", message.get("customerId"))
    try:
        found = s3.get_object(Bucket=message["bucket"], Key=message["key"], **version)
    except Exception as exc:  # deleted before stage A read it (its delete event follows): nothing left to take.
        # S3 says so only to a reader that may list the bucket (the platform's buckets; a tenant's answers 403).
        if aws.error_code(exc) not in ("NoSuchKey", "NoSuchVersion"):
            raise
        gone = stage_a.Source(*where, datetime.now(UTC), 0)
        return _record_object(pipeline, dataset, gone, "SKIPPED", "deleted before stage A read it")
    source = stage_a.Source(*where, found["LastModified"], int(found["ContentLength"]), found.get("Metadata", {}))
    transform = _transform(dataset)
    try:
        staged = [_stage(pre, dataset, message, source, lake, s3, pipeline)
                  for pre in transform(found["Body"], source)]
    except stage_a.Skipped as skipped:
        return _record_object(pipeline, dataset, source, "SKIPPED", str(skipped))
    except stage_a.Malformed as malformed:  # the data is wrong; any other error is retried (then dead-lettered)
        reason = str(malformed) if malformed.__cause__ else f"Malformed: {malformed}"
        publisher.publish(StatusMessage(
            service="datalake", request_type="stageA", status=Status.REJECTED,
            summary=f"{source.uri} was not taken into the lake: {reason}",
            tenant_id=source.customer_id or PLATFORM_TENANT, request_id=message.get("versionId") or None,
            details={"dataset": dataset.key, "source": source.uri, "reason": reason}))
        return _record_object(pipeline, dataset, source, "QUARANTINED", reason)
    return _record_object(pipeline, dataset, source, "STAGED", f"{len(staged)} pre-stage files", staged=staged)


def _transform(dataset: Dataset) -> stage_a.Transform:
    kind, _, name = dataset.stage_a.partition(":")
    return stage_a.BUILTIN[name] if kind == "builtin" else stage_a.custom(entry_point(dataset.stage_a))


def _stage(pre: stage_a.PreStaged, dataset: Dataset, message: dict[str, Any], source: stage_a.Source, lake: Lake,
           s3: Any, pipeline: Any) -> str:
    key = pre.key(dataset.team, dataset.name)
    metadata = {"source": source.uri, "source-version": source.version_id, **pre.metadata}  # first: they fit
    # Buffered in parts: s3transfer then uploads part by part (a raw stream's short reads would make it read all).
    stream = stage_a.readable(pre.chunks, UPLOAD_PART)
    s3.upload_fileobj(stream, lake.stage_bucket, key, ExtraArgs={"Metadata": _headers(metadata)},
                      Config=TransferConfig(multipart_chunksize=UPLOAD_PART))
    pipeline.put_item(Item={
        "dataset": dataset.key, "itemId": f"pending#{key}", "status": PENDING, "preStageKey": key, "table": pre.table,
        "partition": [[k, v] for k, v in pre.partition.items()],  # a list: DynamoDB maps keep no order
        "format": pre.file_format, "database": message["database"], "source": source.uri,
        "metadata": {k: str(v) for k, v in pre.metadata.items()},  # whole, for stage B
        "enqueuedAt": int(time.time()), "staging": uuid.uuid4().hex, "attempts": 0})
    return key


def _record_object(pipeline: Any, dataset: Dataset, source: stage_a.Source, status: str, reason: str,
                   staged: Iterable[str] = ()) -> str:
    now = int(time.time())
    pipeline.put_item(Item={"dataset": dataset.key, "itemId": f"object#{source.uri}#{source.version_id}",
                            "status": status, "reason": reason, "staged": list(staged), "size": source.size,
                            "updatedAt": now, "expiresAt": now + HISTORY_S})
    log.info("stage A", extra={"dataset": dataset.key, "source": source.uri, "status": status, "reason": reason})
    put_metrics(dataset.key, {"Objects": 1, "ObjectsQuarantined": int(status == "QUARANTINED")})
    return status


# -- batching -------------------------------------------------------------------------------------------------


def batch(lake: Lake, registry: Registry, pipeline: Any, glue: Any, now: float | None = None) -> list[str]:
    """Start the stage B runs that are due, one at a time per dataset (so runs of a dataset never widen a table
    concurrently); returns their run ids."""
    now = time.time() if now is None else now
    started, dead_letters = [], Quarantine(aws.client("sqs"), lake.stage_b_dlq)
    for dataset in registry.all():
        items = list(pending_files(pipeline, dataset.key))
        _release_failed(lake, dataset, items, pipeline, glue, now, dead_letters)
        if any(i["status"] == CLAIMED for i in items):
            continue  # a run of this dataset is under way
        ready = sorted((i for i in items if i["status"] == PENDING), key=lambda i: int(i["enqueuedAt"]))
        if not ready or (len(ready) < dataset.min_items
                         and now - int(ready[0]["enqueuedAt"]) < dataset.max_wait_s):
            continue
        run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        claimed = [i for i in ready[:dataset.max_items] if _claim(pipeline, i, run_id, now)]
        if claimed and _start(lake, dataset, run_id, claimed, pipeline, glue, now):
            started.append(run_id)
    return started


def _start(lake: Lake, dataset: Dataset, run_id: str, claimed: list[dict[str, Any]], pipeline: Any, glue: Any,
           now: float) -> bool:
    """Start the run (its record first, so a lost start is seen as one); a refused start frees its files at once."""
    key = {"dataset": dataset.key, "itemId": f"run#{run_id}"}
    pipeline.put_item(Item={**key, "status": "STARTING", "files": len(claimed), "startedAt": int(now),
                            "expiresAt": int(now) + HISTORY_S})
    try:
        run = glue.start_job_run(JobName=lake.stage_b_job, Arguments={
            "--dataset": dataset.key, "--run_id": run_id, "--stage_b": dataset.stage_b})
    except Exception as refused:
        log.warning("stage B run not started", extra={"dataset": dataset.key, "error": str(refused)})
        for item in claimed:
            _release(pipeline, item, run_id, int(item.get("attempts", 0)))
        pipeline.update_item(Key=key, UpdateExpression="SET #s = :failed, reason = :why",
                             ExpressionAttributeNames={"#s": "status"},
                             ExpressionAttributeValues={":failed": "NOT_STARTED", ":why": str(refused)[:500]})
        return False
    pipeline.update_item(Key=key, UpdateExpression="SET #s = :started, jobRunId = :run",
                         ExpressionAttributeNames={"#s": "status"},
                         ExpressionAttributeValues={":started": "STARTED", ":run": run["JobRunId"]})
    return True


def _claim(pipeline: Any, item: dict[str, Any], run_id: str, now: float) -> bool:
    try:
        pipeline.update_item(Key={"dataset": item["dataset"], "itemId": item["itemId"]},
                             UpdateExpression="SET #s = :claimed, runId = :run, claimedAt = :now",
                             ConditionExpression=Attr("status").eq(PENDING), ExpressionAttributeNames={"#s": "status"},
                             ExpressionAttributeValues={":claimed": CLAIMED, ":run": run_id, ":now": int(now)})
    except pipeline.meta.client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def _release_failed(lake: Lake, dataset: Dataset, items: list[dict[str, Any]], pipeline: Any, glue: Any,
                    now: float, dead_letters: Quarantine) -> None:
    """Claims of runs that failed (or never started) go back to PENDING. The file a run failed on counts an
    attempt (every file of a run that failed before its first, as at start-up); one out of attempts goes to the
    stage B DLQ with the reason."""
    for run_id in {i["runId"] for i in items if i["status"] == CLAIMED}:
        held = [i for i in items if i["status"] == CLAIMED and i["runId"] == run_id]
        claimed_at = min(int(i.get("claimedAt", 0)) for i in held)
        state, reason = _run_state(pipeline, glue, lake, dataset.key, run_id, now - claimed_at)
        if state not in _FAILED_RUN:
            continue
        marked = any(i.get("processingRun") == run_id for i in held)
        for item in held:
            attempts = int(item.get("attempts", 0)) + (1 if not marked or item.get("processingRun") == run_id else 0)
            if attempts >= MAX_ATTEMPTS:
                why = f"stage B failed {attempts} times: {reason}"
                dead_letters.put(json.dumps({**item, "reason": why}, default=str), why)
                pipeline.delete_item(Key={"dataset": item["dataset"], "itemId": item["itemId"]})
            else:
                _release(pipeline, item, run_id, attempts)
            item["status"] = PENDING
        pipeline.update_item(Key={"dataset": dataset.key, "itemId": f"run#{run_id}"},
                             UpdateExpression="SET #s = :state, reason = :why",
                             ExpressionAttributeNames={"#s": "status"},
                             ExpressionAttributeValues={":state": state, ":why": reason[:500]})
        put_metrics(dataset.key, {"RunsFailed": 1})


def _release(pipeline: Any, item: dict[str, Any], run_id: str, attempts: int) -> None:
    """Back to PENDING, if the run still holds it (a stale batcher never frees another run's claim)."""
    with contextlib.suppress(pipeline.meta.client.exceptions.ConditionalCheckFailedException):
        pipeline.update_item(Key={"dataset": item["dataset"], "itemId": item["itemId"]},
                             UpdateExpression="SET #s = :pending, attempts = :attempts REMOVE runId",
                             ConditionExpression=Attr("status").eq(CLAIMED) & Attr("runId").eq(run_id),
                             ExpressionAttributeNames={"#s": "status"},
                             ExpressionAttributeValues={":pending": PENDING, ":attempts": attempts})


def _run_state(pipeline: Any, glue: Any, lake: Lake, dataset: str, run_id: str,
               claimed_for: float) -> tuple[str, str]:
    run = pipeline.get_item(Key={"dataset": dataset, "itemId": f"run#{run_id}"}, ConsistentRead=True).get("Item")
    if run is not None and run["status"] == "NOT_STARTED":
        return "NOT_STARTED", run.get("reason", "the run was not started")
    if run is None or "jobRunId" not in run:  # claimed, but the run was never started (the batch died in between)
        return ("NOT_STARTED", "the run was never started") if claimed_for > _UNSTARTED_S else ("STARTING", "")
    found = glue.get_job_run(JobName=lake.stage_b_job, RunId=run["jobRunId"])["JobRun"]
    return found["JobRunState"], found.get("ErrorMessage") or found["JobRunState"]


# -- helpers --------------------------------------------------------------------------------------------------


def _headers(metadata: dict[str, str]) -> dict[str, str]:
    """S3 user metadata travels in HTTP headers: ASCII only, 2 KB in all. What does not fit is left out (the
    pending item keeps it whole)."""
    kept, size = {}, 0
    for key, value in metadata.items():
        if value is None:
            continue
        text = str(value).encode("ascii", "replace").decode()
        if size + len(key) + len(text) > S3_METADATA_BYTES:
            continue
        kept[key], size = text, size + len(key) + len(text)
    return kept
