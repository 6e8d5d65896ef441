"""The concurrency gate in front of each AMC instance: at most ``limit`` executions at once, the others admitted
in the order they asked, safely under concurrent requests (AMC allows 10 running executions per instance).

It is a ticket dispenser in DynamoDB. Each execution draws a numbered ticket (atomically, and once per key: a
redelivered request keeps its ticket); ticket ``t`` may run when ``t <= released + limit``, ``released`` counting
the tickets given back. Giving a ticket back is a transaction (the ticket marked, the count raised), so it counts
once however often it is retried, and a crash cannot half-do it.
"""

from __future__ import annotations

import time
from typing import Any

KEEP_S = 30 * 86400  # released tickets are kept a while (a late retry still finds them), then expire


class ConcurrencyGate:
    """``dynamodb`` is a low-level client: the transaction passes typed values (a Table's client would re-type
    them)."""

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._dynamodb = dynamodb
        self._table = table_name

    def ticket(self, instance_id: str, key: str) -> int:
        """The ticket of ``key`` (e.g. a request id) at ``instance_id``: drawn on the first call, the same after."""
        existing = self._ticket_number(instance_id, key)
        if existing is not None:
            return existing
        drawn = int(self._dynamodb.update_item(
            TableName=self._table, Key=_key(_counter(instance_id)), UpdateExpression="ADD issued :one",
            ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="UPDATED_NEW")["Attributes"]["issued"]["N"])
        try:
            self._dynamodb.put_item(TableName=self._table, ConditionExpression="attribute_not_exists(pk)",
                                    Item={**_key(_ticket(instance_id, key)), "number": {"N": str(drawn)}})
        except self._dynamodb.exceptions.ConditionalCheckFailedException:
            # A concurrent call for the same key won: give back the number drawn here, so no one waits for it.
            self._dynamodb.update_item(TableName=self._table, Key=_key(_counter(instance_id)),
                                       UpdateExpression="ADD released :one",
                                       ExpressionAttributeValues={":one": {"N": "1"}})
            return int(self._ticket_number(instance_id, key))  # type: ignore[arg-type]
        return drawn

    def admitted(self, instance_id: str, ticket: int, limit: int) -> bool:
        """Whether ``ticket`` may run now."""
        counter = self._dynamodb.get_item(TableName=self._table, Key=_key(_counter(instance_id)),
                                          ConsistentRead=True).get("Item", {})
        return ticket <= int(counter.get("released", {}).get("N", 0)) + limit

    def release(self, instance_id: str, key: str) -> bool:
        """Give back ``key``'s ticket; False when it was already given back (or never drawn)."""
        try:
            self._dynamodb.transact_write_items(TransactItems=[
                {"Update": {"TableName": self._table, "Key": _key(_ticket(instance_id, key)),
                            "UpdateExpression": "SET releasedAt = :now, expiresAt = :expires",
                            "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(releasedAt)",
                            "ExpressionAttributeValues": {":now": {"N": str(int(time.time()))},
                                                          ":expires": {"N": str(int(time.time()) + KEEP_S)}}}},
                {"Update": {"TableName": self._table, "Key": _key(_counter(instance_id)),
                            "UpdateExpression": "ADD released :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            ])
        except self._dynamodb.exceptions.TransactionCanceledException:
            return False
        return True

    def _ticket_number(self, instance_id: str, key: str) -> int | None:
        item = self._dynamodb.get_item(TableName=self._table, Key=_key(_ticket(instance_id, key)),
                                       ConsistentRead=True).get("Item")
        return int(item["number"]["N"]) if item else None


def _key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}}


def _counter(instance_id: str) -> str:
    return f"instance#{instance_id}"


def _ticket(instance_id: str, key: str) -> str:
    return f"ticket#{instance_id}#{key}"
