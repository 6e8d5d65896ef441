"""The intake ledger: every object event of an intake bucket (S3 -> EventBridge -> SQS) is recorded once.

S3 delivers at least once and a multipart upload emits two events for one object, so an event is identified by
the object version it is about (the version id; in an unversioned bucket the sequencer, which S3 increases with
every write of a key); a conditional write turns a repeat into a no-op.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)
RETENTION_SECONDS = 400 * 24 * 3600  # ledger items outlive a year of daily re-runs, then expire


@dataclass(frozen=True)
class ObjectEvent:
    """One EventBridge "Object Created"/"Object Deleted" event of an intake bucket."""

    bucket: str
    key: str
    action: str  # CREATED or DELETED
    etag: str
    version_id: str
    sequencer: str
    size: int
    time: str

    @property
    def object_id(self) -> str:
        return f"s3://{self.bucket}/{self.key}#{self.version_id or self.sequencer or self.etag}#{self.action}"


def parse(body: str) -> ObjectEvent | None:
    """The object event in an SQS body; None for events that concern no object (test events, folder markers)."""
    event = json.loads(body)
    if event.get("source") != "aws.s3" or event.get("detail-type") not in ("Object Created", "Object Deleted"):
        return None
    detail = event["detail"]
    key = detail["object"]["key"]
    if key.endswith("/"):
        return None
    return ObjectEvent(
        bucket=detail["bucket"]["name"], key=key,
        action="CREATED" if event["detail-type"] == "Object Created" else "DELETED",
        etag=detail["object"].get("etag") or detail["object"].get("eTag", ""),  # AWS writes etag, moto eTag
        version_id=detail["object"].get("version-id", ""), sequencer=detail["object"].get("sequencer", ""),
        size=int(detail["object"].get("size", 0)), time=event.get("time", ""))


def handle(message: Mapping[str, Any], table: Any, route: Callable[[ObjectEvent], str]) -> None:
    """One SQS record of the object-events queue: record its event once, then ``route`` it (which says where it
    went: ROUTED, UNROUTED...). A repeat of an event whose routing did not finish is routed again."""
    event = parse(message["body"])
    if event is None:
        return
    if record(event, table) or _status(table, event) == "RECEIVED":
        table.update_item(Key={"objectId": event.object_id}, UpdateExpression="SET #s = :s",
                          ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": route(event)})


def _status(table: Any, event: ObjectEvent) -> str | None:
    item = table.get_item(Key={"objectId": event.object_id}, ConsistentRead=True).get("Item")
    return item.get("status") if item else None


def record(event: ObjectEvent, table: Any, now: float | None = None) -> bool:
    """Write the event to the ledger; returns False when it was already there (a duplicate delivery)."""
    now = time.time() if now is None else now
    item = {"objectId": event.object_id, "bucket": event.bucket, "key": event.key, "action": event.action,
            "etag": event.etag, "versionId": event.version_id, "size": event.size, "eventTime": event.time,
            "receivedAt": int(now), "expiresAt": int(now) + RETENTION_SECONDS, "status": "RECEIVED"}
    try:
        table.put_item(Item=item, ConditionExpression="attribute_not_exists(objectId)")
    except table.meta.client.exceptions.ConditionalCheckFailedException:
        log.info("duplicate object event", extra={"object_id": event.object_id})
        return False
    log.info("object received", extra={"object_id": event.object_id, "size": event.size})
    return True
