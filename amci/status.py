"""The platform's health on one screen, for whoever is on call: what waits in each queue and dead-letter queue,
executions and reports by status, and the latest failures with their reasons. Read from the platform's own
resources (the stack's outputs), never from a service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Key

from amci.platform import Platform
from shared import aws
from shared.lake import pending_files

EXECUTION_STATUSES = ("QUEUED", "PENDING", "RUNNING", "PUBLISHING", "SUCCEEDED", "FAILED", "REJECTED", "CANCELLED",
                      "ERROR")
REPORT_STATUSES = ("QUEUED", "REQUESTED", "PENDING", "PROCESSING", "IN_QUEUE", "IN_PROGRESS", "SUCCEEDED", "FAILED",
                   "NO_DATA", "REJECTED", "CANCELLED", "ERROR")
FAILED = ("FAILED", "REJECTED", "ERROR")
_QUEUES = ("TenantRequest", "WorkflowRequest", "AdsReportingRequest", "SpReportingRequest", "DatalakeRequest",
           "DatalakeEvents", "DatalakeStageA")
_DEAD_LETTERS = (*(f"{name}Dlq" for name in ("TenantRequest", "WorkflowRequest", "AdsReportingRequest",
                                              "SpReportingRequest", "DatalakeRequest", "DatalakeStageA")),
                 "DatalakeStageBDlq", "DatalakeEventsDlq")


def platform_status(platform: Platform, failures: int = 10, recent_hours: float = 24) -> dict[str, Any]:
    """``{"queues": [...], "executions": {status: n}, "reports": {status: n}, "failures": [the latest, any age],
    "recent": {"hours": h, "failures": n}, "troubled": bool}``. Troubled: something waits in a dead-letter queue,
    or failed within the last ``recent_hours`` (a failure from last month is history, not a page)."""
    workflow = platform.table("WorkflowRecordsTable")
    reports = platform.table("ReportRecordsTable")
    failed = [*_by_status(workflow, "executionStatus", FAILED), *_by_status(reports, "reportStatus", FAILED)]
    since = (datetime.now(UTC) - timedelta(hours=recent_hours)).isoformat(timespec="milliseconds")
    queues = _queues(platform)
    recent = sum(_failed_at(item) >= since for item in failed)
    return {"queues": queues,
            "executions": _counts(workflow, "executionStatus", EXECUTION_STATUSES),
            "reports": _counts(reports, "reportStatus", REPORT_STATUSES),
            "failures": [_failure(item) for item in sorted(failed, key=_failed_at, reverse=True)[:failures]],
            "recent": {"hours": recent_hours, "failures": recent},
            "troubled": recent > 0 or any(q["deadLetter"] and q["waiting"] for q in queues)}


def _queues(platform: Platform) -> list[dict[str, Any]]:
    sqs, found = platform.client("sqs"), []
    for name in (*(f"{q}Queue" for q in _QUEUES), *_DEAD_LETTERS):
        queue = platform.outputs.get(name)
        if not queue:
            continue
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        found.append({"queue": queue, "deadLetter": name.endswith("Dlq"),
                      "waiting": int(attributes["ApproximateNumberOfMessages"]),
                      "inFlight": int(attributes["ApproximateNumberOfMessagesNotVisible"])})
    return found


def _counts(table: Any, attribute: str, statuses: tuple[str, ...]) -> dict[str, int]:
    counts = {status: aws.count(table.query, IndexName="byStatus", KeyConditionExpression=Key(attribute).eq(status))
              for status in statuses}
    return {status: n for status, n in counts.items() if n}


def _by_status(table: Any, attribute: str, statuses: tuple[str, ...]) -> Any:
    for status in statuses:
        yield from aws.items(table.query, IndexName="byStatus", KeyConditionExpression=Key(attribute).eq(status))


def _failed_at(item: dict[str, Any]) -> str:
    """When the job ended: its record's last change (a report fails hours after it was asked for)."""
    return str(item.get("updatedAt") or item["createdAt"])


def _failure(item: dict[str, Any]) -> dict[str, Any]:
    execution = "executionStatus" in item
    return {"kind": "execution" if execution else "report",
            "owner": item.get("customerId") or item.get("service"), "requestId": item["requestId"],
            "status": item.get("executionStatus") or item.get("reportStatus"), "createdAt": item["createdAt"],
            "failedAt": _failed_at(item),
            "what": item.get("workflowId") if execution else item.get("tableName"),
            "reason": item.get("amcMessage") if execution else item.get("message")}


def lake_status(platform: Platform, datasets: list[str]) -> list[dict[str, Any]]:
    """Per dataset: files waiting for stage B, files in a run, and its latest run (status, files, totals)."""
    pipeline = platform.table("DatalakePipelineTable")
    found = []
    for dataset in datasets:
        files = list(pending_files(pipeline, dataset))
        runs = aws.items(pipeline.query, KeyConditionExpression=Key("dataset").eq(dataset)
                         & Key("itemId").begins_with("run#"))
        latest = max(runs, key=lambda run: int(run.get("startedAt", 0)), default=None)
        found.append({"dataset": dataset, "waiting": sum(f["status"] == "PENDING" for f in files),
                      "inRun": sum(f["status"] == "CLAIMED" for f in files),
                      "latestRun": None if latest is None else {
                          "runId": latest["itemId"].removeprefix("run#"), "status": latest["status"],
                          "files": int(latest.get("files", 0)), "startedAt": int(latest.get("startedAt", 0)),
                          "totals": {k: int(v) for k, v in (latest.get("totals") or {}).items()}}})
    return found
