"""Backfills: one request runs a workflow over a date range, one execution per window, each through the
executions state machine (so the concurrency gate meters them); a resubmission runs again the windows whose
latest attempt did not succeed.

Window ``i`` of backfill ``b`` is execution ``b-w<i>``, its resubmissions ``b-w<i>-r<n>``: a redelivered request
or resubmission finds them and adds nothing.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Any

from chalicelib.amc import tenant_config
from chalicelib.contracts import Backfill, ResubmitBackfill
from chalicelib.executions import submit
from chalicelib.records import workflow_records
from shared import dates
from shared.contracts import ContractError, FieldError
from shared.requests import RequestContext
from shared.service import Service
from shared.status import Status

MAX_WINDOWS = 400
_ATTEMPT = re.compile(r"-w(\d+)(?:-r(\d+))?$")
_RETRY = frozenset({"FAILED", "REJECTED", "CANCELLED", "ERROR"})


def start(request: Backfill, ctx: RequestContext, service: Service) -> None:
    tenant_config(request.customerId)
    first, last = _day(request, "startDate"), _day(request, "endDate")
    if last < first:
        raise ContractError(request.requestType, [FieldError("endDate", "a day on or after startDate",
                                                             request.endDate)])
    cuts = dates.windows(first, last, request.windowDays)
    if len(cuts) > MAX_WINDOWS:
        raise ContractError(request.requestType, [FieldError(
            "windowDays", f"windows that cut the range into at most {MAX_WINDOWS} executions", request.windowDays)])
    template = request.createExecutionRequest.to_api()
    backfill_id, workflow_id = ctx.request_id, request.createExecutionRequest.workflow_id
    workflow_records().put(request.customerId, "backfill", backfill_id, backfillId=backfill_id, workflowId=workflow_id,
                         windows=[[a.isoformat(), b.isoformat()] for a, b in cuts], template=json.dumps(template))
    submitted = sum(_submit(request.customerId, backfill_id, index, cuts[index], template, attempt=0)
                    for index in range(len(cuts)))
    service.answer(ctx, request.customerId, Status.SUCCEEDED,
                   f"backfill {backfill_id} of {workflow_id}: {len(cuts)} windows of {request.windowDays} days from "
                   f"{first} to {last} ({submitted} submitted now)",
                   {"backfillId": backfill_id, "workflowId": workflow_id, "windows": len(cuts)})


def resubmit(request: ResubmitBackfill, ctx: RequestContext, service: Service) -> None:
    records = workflow_records()
    backfill = records.get(request.customerId, "backfill", request.backfillId)
    if backfill is None:
        raise ContractError(request.requestType, [FieldError("backfillId", "a backfill of this tenant",
                                                             request.backfillId)])
    latest: dict[int, tuple[int, str]] = {}
    for record in records.all(request.customerId, f"execution#{request.backfillId}-w"):
        index, attempt = _window_attempt(record["requestId"])
        if attempt >= latest.get(index, (-1, ""))[0]:
            latest[index] = (attempt, record["executionStatus"])
    cuts = [(date.fromisoformat(a), date.fromisoformat(b)) for a, b in backfill["windows"]]
    again = sorted(index for index, (_, status) in latest.items() if status in _RETRY)
    for index in again:
        _submit(request.customerId, request.backfillId, index, cuts[index], json.loads(backfill["template"]),
                attempt=latest[index][0] + 1)
    service.answer(ctx, request.customerId, Status.SUCCEEDED,
                   f"backfill {request.backfillId}: {len(again)} of {len(cuts)} windows resubmitted",
                   {"backfillId": request.backfillId, "resubmitted": [cuts[i][0].isoformat() for i in again]})


def _submit(customer_id: str, backfill_id: str, index: int, window: tuple[date, date], template: dict[str, Any],
            attempt: int) -> bool:
    key = f"{backfill_id}-w{index:03d}" + (f"-r{attempt}" if attempt else "")
    body = {**template, "timeWindowType": "EXPLICIT", "timeWindowStart": f"{window[0]:%Y-%m-%dT00:00:00}",
            "timeWindowEnd": f"{window[1]:%Y-%m-%dT00:00:00}"}
    return submit(customer_id, key, body, fingerprint=f"{backfill_id}:{index}:{attempt}", backfillId=backfill_id,
                  window=index)


def _window_attempt(request_id: str) -> tuple[int, int]:
    match = _ATTEMPT.search(request_id)
    if match is None:
        raise ValueError(f"{request_id} is not a backfill window's execution")
    return int(match.group(1)), int(match.group(2) or 0)


def _day(request: Backfill, field: str) -> date:
    zone = request.createExecutionRequest.timeWindowTimeZone
    value = dates.resolve(getattr(request, field), datetime.now(UTC), dates.REPORT_FORMAT, zone)
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ContractError(request.requestType, [FieldError(
            field, "a day (YYYY-MM-DD) or a relative date such as TODAY(-90)", getattr(request, field))]) from None
