"""SQS batches with Lambda's partial-batch response: a record that fails is reported in ``batchItemFailures``
and redelivered alone; the others are deleted. (Chalice has no support for it: the deploy enables
``ReportBatchItemFailures`` on each mapping, and the local cloud honours the same contract.)"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

log = logging.getLogger(__name__)
Record = Mapping[str, Any]
BatchResponse = dict[str, list[dict[str, str]]]


def process_partial_batch(records: Iterable[Record], handle: Callable[[Record], None]) -> BatchResponse:
    """Call ``handle`` on every record; returns the failed ones as ``{"batchItemFailures": [...]}``."""
    failures = []
    for record in records:
        try:
            handle(record)
        except Exception:
            log.exception("record failed; SQS will redeliver it", extra={"message_id": record["messageId"]})
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def sqs_records(event: Any) -> list[Record]:
    """The raw records of a Chalice ``SQSEvent`` (its wrapper hides ``messageId`` and the attributes)."""
    return list(event.to_dict()["Records"])
