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

from shared import aws
from shared.records import Records

ERROR = "ERROR"  # the platform could not finish it (see the notification)
FINISHED = frozenset({"SUCCEEDED", "FAILED", "REJECTED", "CANCELLED", ERROR})


def workflow_records() -> Records:
    return Records(aws.table(os.environ["WORKFLOW_RECORDS_TABLE"]), owner_key="customerId", job_kind="execution",
                   status_key="executionStatus", finished=FINISHED,
                   history_days=int(os.environ.get("EXECUTION_HISTORY_DAYS") or 90))


def schedules_using(records: Records, customer_id: str, workflow_id: str) -> list[str]:
    schedules = records.all(customer_id, "schedule#")
    return sorted(s["scheduleName"] for s in schedules if s.get("workflowId") == workflow_id)
