"""The workflow manager's records (DynamoDB ``WORKFLOW_RECORDS_TABLE``), per tenant, keyed ``<kind>#<id>``:

=================================  ==============================================================================
``workflow#<workflowId>``          a workflow the platform wrote to AMC (its id and when)
``schedule#<scheduleName>``        a schedule: expression, time zone, workflow, enabled
``backfill#<backfillId>``          a backfill: workflow and windows
``execution#<requestId>``          an execution: status (``executionStatus``), AMC's id and message, the body sent
=================================  ==============================================================================

Executions are indexed by status (``byStatus``) and by creation time (``byCreation``); finished ones expire after
``EXECUTION_HISTORY_DAYS``. Items stay small: no state machine state is stored.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from shared import aws

QUEUED = "QUEUED"  # waiting for a slot at the concurrency gate
ERROR = "ERROR"  # the platform could not finish it (see the notification)
FINISHED = frozenset({"SUCCEEDED", "FAILED", "REJECTED", "CANCELLED", ERROR})


def table() -> Any:
    return aws.table(os.environ["WORKFLOW_RECORDS_TABLE"])


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Records:
    def __init__(self, dynamodb_table: Any) -> None:
        self._table = dynamodb_table

    # -- workflows and schedules ------------------------------------------------------------------------------

    def put(self, customer_id: str, kind: str, name: str, **fields: Any) -> None:
        self._table.put_item(Item={"customerId": customer_id, "recordId": f"{kind}#{name}", "updatedAt": now_iso(),
                                   **fields})

    def get(self, customer_id: str, kind: str, name: str) -> dict[str, Any] | None:
        return self._table.get_item(Key={"customerId": customer_id, "recordId": f"{kind}#{name}"},
                                    ConsistentRead=True).get("Item")

    def delete(self, customer_id: str, kind: str, name: str) -> None:
        self._table.delete_item(Key={"customerId": customer_id, "recordId": f"{kind}#{name}"})

    def all(self, customer_id: str, prefix: str) -> Iterator[dict[str, Any]]:
        """The tenant's records whose key starts with ``prefix`` (``schedule#``, ``execution#<backfill>-w``...)."""
        args: dict[str, Any] = {"KeyConditionExpression": Key("customerId").eq(customer_id)
                                & Key("recordId").begins_with(prefix), "ConsistentRead": True}
        while True:
            page = self._table.query(**args)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def schedules_using(self, customer_id: str, workflow_id: str) -> list[str]:
        schedules = self.all(customer_id, "schedule#")
        return sorted(s["scheduleName"] for s in schedules if s.get("workflowId") == workflow_id)

    # -- executions -------------------------------------------------------------------------------------------

    def add_execution(self, customer_id: str, request_id: str, **fields: Any) -> dict[str, Any]:
        """Record a new execution as QUEUED, once: returns the record as it is (the first one on a redelivery)."""
        created = now_iso()
        item = {"customerId": customer_id, "recordId": f"execution#{request_id}", "requestId": request_id,
                "executionStatus": QUEUED, "createdAt": created, "updatedAt": created, **fields}
        try:
            self._table.put_item(Item=item, ConditionExpression=Attr("recordId").not_exists())
        except self._table.meta.client.exceptions.ConditionalCheckFailedException:
            return self.execution(customer_id, request_id) or item
        return item

    def execution(self, customer_id: str, request_id: str) -> dict[str, Any] | None:
        return self.get(customer_id, "execution", request_id)

    def update_execution(self, customer_id: str, request_id: str, **fields: Any) -> dict[str, Any]:
        """Set ``fields`` (None removes one); a finished status also sets the record's expiry. Returns the record."""
        fields["updatedAt"] = now_iso()
        if fields.get("executionStatus") in FINISHED:
            days = int(os.environ.get("EXECUTION_HISTORY_DAYS") or 90)
            fields["expiresAt"] = int(time.time() + timedelta(days=days).total_seconds())
        names = {f"#{i}": key for i, key in enumerate(fields)}
        sets = [f"#{i} = :{i}" for i, value in enumerate(fields.values()) if value is not None]
        removes = [f"#{i}" for i, value in enumerate(fields.values()) if value is None]
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        return self._table.update_item(
            Key={"customerId": customer_id, "recordId": f"execution#{request_id}"}, UpdateExpression=expression,
            ExpressionAttributeNames=names, ConditionExpression=Attr("recordId").exists(), ReturnValues="ALL_NEW",
            ExpressionAttributeValues={f":{i}": v for i, v in enumerate(fields.values()) if v is not None},
        )["Attributes"]

    def claim_notification(self, customer_id: str, request_id: str) -> bool:
        """True once per execution: whoever gets True sends its final notification."""
        try:
            self._table.update_item(Key={"customerId": customer_id, "recordId": f"execution#{request_id}"},
                                    UpdateExpression="SET notifiedAt = :now", ExpressionAttributeValues={
                                        ":now": now_iso()}, ConditionExpression=Attr("notifiedAt").not_exists())
        except self._table.meta.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def recent_executions(self, customer_id: str, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        """The tenant's executions, newest first (the ``byCreation`` index), page by page as they are consumed."""
        condition = Key("customerId").eq(customer_id)
        if since is not None:
            condition &= Key("createdAt").gte(since.isoformat(timespec="milliseconds"))
        args: dict[str, Any] = {"IndexName": "byCreation", "KeyConditionExpression": condition,
                                "ScanIndexForward": False}
        while True:
            page = self._table.query(**args)
            yield from (item for item in page.get("Items", []) if item["recordId"].startswith("execution#"))
            if "LastEvaluatedKey" not in page:
                return
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]
