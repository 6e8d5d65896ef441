"""A service's records in DynamoDB: the jobs it runs (AMC executions, reports) and what they depend on (workflows,
schedules, backfills), per owner (a tenant, or the service itself), keyed ``<kind>#<name>``.

Jobs are written for at-least-once delivery: :meth:`Records.add_job` creates a job once and returns the first
one on a redelivery; :meth:`Records.notify_once` sends a job's outcome once, and again only if sending failed.
Finished jobs expire after ``history_days`` (DynamoDB TTL on ``expiresAt``); the table's ``byCreation`` index
(owner, ``createdAt``) lists them newest first. Items stay small: no state machine state is stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from shared import aws

QUEUED = "QUEUED"  # recorded, not yet started


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Records:
    """``owner_key`` names the partition key; a job's status is ``status_key``, and a status in ``finished`` sets
    the job's expiry."""

    def __init__(self, table: Any, *, owner_key: str, job_kind: str, status_key: str, finished: frozenset[str],
                 history_days: int = 90) -> None:
        self._table = table
        self.owner_key, self.job_kind, self.status_key = owner_key, job_kind, status_key
        self.finished, self.history_days = finished, history_days

    # -- any record -----------------------------------------------------------------------------------------------

    def put(self, owner: str, kind: str, name: str, **fields: Any) -> None:
        self._table.put_item(Item={**self._key(owner, kind, name), "updatedAt": now_iso(), **fields})

    def put_new(self, owner: str, kind: str, name: str, **fields: Any) -> dict[str, Any]:
        """Write the record unless it exists: returns the record as it is (the first one on a redelivery)."""
        item = {**self._key(owner, kind, name), "updatedAt": now_iso(), **fields}
        try:
            self._table.put_item(Item=item, ConditionExpression=Attr("recordId").not_exists())
        except self._table.meta.client.exceptions.ConditionalCheckFailedException:
            return self.get(owner, kind, name) or item
        return item

    def get(self, owner: str, kind: str, name: str) -> dict[str, Any] | None:
        return self._table.get_item(Key=self._key(owner, kind, name), ConsistentRead=True).get("Item")

    def delete(self, owner: str, kind: str, name: str) -> None:
        self._table.delete_item(Key=self._key(owner, kind, name))

    def all(self, owner: str, prefix: str) -> Iterator[dict[str, Any]]:
        """The owner's records whose key starts with ``prefix`` (``schedule#``, ``execution#<backfill>-w``...)."""
        yield from aws.items(self._table.query, KeyConditionExpression=Key(self.owner_key).eq(owner)
                             & Key("recordId").begins_with(prefix), ConsistentRead=True)

    # -- jobs -----------------------------------------------------------------------------------------------------

    def add_job(self, owner: str, job_id: str, **fields: Any) -> dict[str, Any]:
        """Record a new job as QUEUED, once: returns the record as it is (the first one on a redelivery)."""
        return self.put_new(owner, self.job_kind, job_id, requestId=job_id, createdAt=now_iso(),
                            **{self.status_key: QUEUED}, **fields)

    def job(self, owner: str, job_id: str) -> dict[str, Any] | None:
        return self.get(owner, self.job_kind, job_id)

    def update_job(self, owner: str, job_id: str, **fields: Any) -> dict[str, Any]:
        """Set ``fields`` (None removes one); a finished status also sets the expiry. Returns the record."""
        fields["updatedAt"] = now_iso()
        if fields.get(self.status_key) in self.finished:
            fields["expiresAt"] = int(time.time() + timedelta(days=self.history_days).total_seconds())
        names = {f"#{i}": key for i, key in enumerate(fields)}
        sets = [f"#{i} = :{i}" for i, value in enumerate(fields.values()) if value is not None]
        removes = [f"#{i}" for i, value in enumerate(fields.values()) if value is None]
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        return self._table.update_item(
            Key=self._key(owner, self.job_kind, job_id), UpdateExpression=expression, ExpressionAttributeNames=names,
            ConditionExpression=Attr("recordId").exists(), ReturnValues="ALL_NEW",
            ExpressionAttributeValues={f":{i}": v for i, v in enumerate(fields.values()) if v is not None},
        )["Attributes"]

    def notify_once(self, owner: str, job_id: str, send: Callable[[], object]) -> bool:
        """Call ``send`` (the job's final notification) once per job, whoever asks and however often; False when it
        was sent before. The claim is given back if ``send`` fails, so a retry sends it: never lost, never twice."""
        key = self._key(owner, self.job_kind, job_id)
        try:
            self._table.update_item(Key=key, UpdateExpression="SET notifiedAt = :now",
                                    ExpressionAttributeValues={":now": now_iso()},
                                    ConditionExpression=Attr("notifiedAt").not_exists())
        except self._table.meta.client.exceptions.ConditionalCheckFailedException:
            return False
        try:
            send()
        except BaseException:
            self._table.update_item(Key=key, UpdateExpression="REMOVE notifiedAt")
            raise
        return True

    def recent_jobs(self, owner: str, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        """The owner's jobs, newest first (the ``byCreation`` index), page by page as they are consumed."""
        condition = Key(self.owner_key).eq(owner)
        if since is not None:
            condition &= Key("createdAt").gte(since.isoformat(timespec="milliseconds"))
        prefix = f"{self.job_kind}#"
        yield from (item for item in aws.items(self._table.query, IndexName="byCreation",
                                               KeyConditionExpression=condition, ScanIndexForward=False)
                    if item["recordId"].startswith(prefix))

    # -- helpers --------------------------------------------------------------------------------------------------

    def _key(self, owner: str, kind: str, name: str) -> dict[str, str]:
        return {self.owner_key: owner, "recordId": f"{kind}#{name}"}
