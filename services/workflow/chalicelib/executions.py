"""AMC workflow executions.

A ``createExecution`` request is recorded (QUEUED) and handed to the executions state machine
(``infra/statemachines/workflow-executions.asl.json``), whose tasks are here:

``admit``   draw a ticket at the instance's concurrency gate; wait (in a Wait state) until it is admitted
``start``   create the AMC execution, at most once even when the task is retried
``poll``    look at it (cadence ``EXECUTION_POLL_SECONDS``), cancel it past ``EXECUTION_MAX_HOURS``
``finish``  give the gate's slot back, record the outcome, notify once (platform topic; the tenant's address
            through its subscription filtered on ``tenantId``)

Cancel, status, list and sync requests are answered directly.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from chalicelib.amc import UnknownTenant, client_for, concurrency_limit, tenant_config
from chalicelib.contracts import CancelExecution, CreateExecution, GetExecutionStatus, ListExecutions, SyncExecutions
from chalicelib.gate import ConcurrencyGate
from chalicelib.records import ERROR, workflow_records
from shared import aws, dates, scheduler
from shared.amazon.amc import ExecutionFinished
from shared.amazon.errors import InvalidRequest, NotFound, ServerError, Throttled
from shared.amazon.http import AmbiguousFailure
from shared.config import require
from shared.contracts import ContractError, FieldError
from shared.orchestration import execution_name, start_execution
from shared.requests import RequestContext
from shared.service import Service
from shared.status import Status, StatusMessage, error_summary

_REFUSED = (InvalidRequest, NotFound)  # AMC will not run it: asking again would not change its answer
_PASSING = (Throttled, ServerError, AmbiguousFailure)  # worth another look at the next poll
_CREATE_SKEW_S = 120.0  # how far back to look for an execution a crashed attempt may have created


# -- requests -------------------------------------------------------------------------------------------------


def create(request: CreateExecution, ctx: RequestContext, service: Service) -> None:
    """Resolve the relative dates (at the schedule's fire time for a scheduled run) and start the execution."""
    tenant_config(request.customerId)  # an unknown tenant is rejected here, not in the state machine
    body = request.createExecutionRequest
    now = scheduler.fired_at(request.scheduledTime)
    resolved = dates.resolve(body.to_api(), now, zone=body.timeWindowTimeZone)
    key = scheduler.request_key(ctx.request_id, request.scheduleName, request.scheduledTime, request.requestId)
    submit(request.customerId, key, resolved, request.fingerprint(),
           **({"scheduleName": request.scheduleName} if request.scheduleName else {}))


def submit(customer_id: str, key: str, body: dict[str, Any], fingerprint: str, **fields: Any) -> bool:
    """Record execution ``key`` and start its state machine; False when it was already submitted (a redelivery).

    Raises ContractError when ``key`` was used for another request."""
    records = workflow_records()
    workflow_id = body.get("workflowId") or body["workflow"]["workflowId"]
    # The body is kept as JSON text: DynamoDB would turn its numbers into Decimals (and refuse floats).
    record = records.add_job(customer_id, key, workflowId=workflow_id, request=json.dumps(body),
                                   fingerprint=fingerprint, **fields)
    if record.get("fingerprint") != fingerprint:
        raise ContractError("createExecution", [FieldError(
            "requestId", "an id not used before for a different execution request", key)])
    _, started = start_execution(aws.client("stepfunctions"), require("WORKFLOW_EXECUTIONS_STATE_MACHINE_ARN"),
                                 execution_name("execution", customer_id, key),
                                 {"customerId": customer_id, "requestId": key, "requestType": "createExecution"})
    return started


def cancel(request: CancelExecution, ctx: RequestContext, service: Service) -> None:
    client = client_for(tenant_config(request.customerId))
    execution_id = request.workflowExecutionId
    try:
        client.cancel_execution(execution_id)
    except ExecutionFinished:
        status = client.get_execution(execution_id).status
        service.answer(ctx, request.customerId, Status.FAILED, f"execution {execution_id} had already finished: "
                       f"{status}", {"workflowExecutionId": execution_id, "amcStatus": str(status)})
        return
    except _REFUSED as refusal:
        service.answer(ctx, request.customerId, Status.FAILED, f"AMC refused to cancel {execution_id}: "
                       f"{refusal.detail}", {"workflowExecutionId": execution_id, "amcStatus": refusal.status})
        return
    service.answer(ctx, request.customerId, Status.SUCCEEDED, f"execution {execution_id} cancelled",
                   {"workflowExecutionId": execution_id})


def status(request: GetExecutionStatus, ctx: RequestContext, service: Service) -> None:
    client = client_for(tenant_config(request.customerId))
    try:
        execution = client.get_execution(request.workflowExecutionId)
    except _REFUSED as refusal:
        service.answer(ctx, request.customerId, Status.FAILED, f"AMC: {refusal.detail}",
                       {"workflowExecutionId": request.workflowExecutionId, "amcStatus": refusal.status})
        return
    service.answer(ctx, request.customerId, Status.SUCCEEDED,
                   f"execution {execution.execution_id} of {execution.workflow_id}: {execution.status}", {
                       "workflowExecutionId": execution.execution_id, "workflowId": execution.workflow_id,
                       "amcStatus": str(execution.status), "amcMessage": execution.status_reason,
                       "outputS3URI": execution.output_s3_uri})


def list_all(request: ListExecutions, ctx: RequestContext, service: Service) -> None:
    matching = (r for r in workflow_records().recent_jobs(request.customerId)
                if request.status in (None, r["executionStatus"]))
    found = [_summary(r) for r in islice(matching, request.limit)]  # pages are read only as far as needed
    service.answer(ctx, request.customerId, Status.SUCCEEDED, f"{len(found)} executions", {"executions": found})


def sync(request: SyncExecutions, ctx: RequestContext, service: Service) -> None:
    """Update the records from AMC; executions started elsewhere (AMC's console, other tools) get a record too."""
    client, records = client_for(tenant_config(request.customerId)), workflow_records()
    since = datetime.now(UTC) - timedelta(days=request.days)
    known = {r["workflowExecutionId"]: r for r in records.recent_jobs(request.customerId, since - timedelta(
        days=1)) if r.get("workflowExecutionId")}
    counts = {"seen": 0, "updated": 0, "added": 0}
    for execution in client.list_executions(min_creation_time=since):
        counts["seen"] += 1
        record = known.get(execution.execution_id)
        if record is None:
            record = records.add_job(request.customerId, f"amc-{execution.execution_id}", origin="amc",
                                           workflowId=execution.workflow_id, workflowExecutionId=execution.execution_id)
            counts["added"] += 1
        elif record["executionStatus"] == str(execution.status):
            continue
        else:
            counts["updated"] += 1
        records.update_job(request.customerId, record["requestId"], executionStatus=str(execution.status),
                                 amcMessage=execution.status_reason)
    service.answer(ctx, request.customerId, Status.SUCCEEDED,
                   f"{counts['seen']} AMC executions since {since:%Y-%m-%d %H:%M} UTC: {counts['updated']} updated, "
                   f"{counts['added']} added", counts)


# -- state machine tasks --------------------------------------------------------------------------------------


def admit(state: dict[str, Any], gate: ConcurrencyGate) -> dict[str, Any]:
    """Draw (or keep) the execution's ticket at the instance's gate; ``admitted`` says whether it may start."""
    config = tenant_config(state["customerId"])
    poll_s, max_s = int(require("EXECUTION_POLL_SECONDS")), int(require("EXECUTION_MAX_HOURS")) * 3600
    state = {**state, "pollSeconds": poll_s, "deadline": state.get("deadline") or int(time.time()) + max_s}
    ticket = gate.ticket(config["amcInstanceId"], _gate_key(state))
    admitted = gate.admitted(config["amcInstanceId"], ticket, concurrency_limit(config))
    if not admitted and time.time() > state["deadline"]:
        return {**state, "terminal": True, "status": "CANCELLED",
                "message": "waited for a free slot longer than EXECUTION_MAX_HOURS"}
    return {**state, "admitted": admitted, "terminal": False, "ticket": ticket}


def start(state: dict[str, Any]) -> dict[str, Any]:
    """Create the AMC execution once: a retried task finds the one it created (by the record, else at AMC)."""
    records = workflow_records()
    record = records.job(state["customerId"], state["requestId"])
    if record is None:
        raise LookupError(f"no record of execution {state['requestId']}")
    if record.get("workflowExecutionId"):
        return {**state, "workflowExecutionId": record["workflowExecutionId"], "terminal": False}
    client = client_for(tenant_config(state["customerId"]))
    body = json.loads(record["request"])
    if record.get("createAttemptAt") and (found := client.find_execution(
            body, float(record["createAttemptAt"]) - _CREATE_SKEW_S)):
        execution = found
    else:
        records.update_job(state["customerId"], state["requestId"], createAttemptAt=int(time.time()))
        try:
            execution = client.create_execution(body)
        except _REFUSED as refusal:
            return {**state, "terminal": True, "status": "REJECTED", "message": f"AMC refused: {refusal.detail}",
                    "amcCode": refusal.code}
    records.update_job(state["customerId"], state["requestId"], workflowExecutionId=execution.execution_id,
                             executionStatus=str(execution.status))
    return {**state, "workflowExecutionId": execution.execution_id, "terminal": execution.terminal,
            "status": str(execution.status), "message": execution.status_reason}


def poll(state: dict[str, Any]) -> dict[str, Any]:
    """AMC's status now; a passing error waits for the next look, and past the deadline the execution is
    cancelled."""
    client, seen = client_for(tenant_config(state["customerId"])), state.get("status")
    try:
        execution = client.get_execution(state["workflowExecutionId"])
    except _PASSING as passing:
        return {**state, "terminal": False, "lastError": f"{type(passing).__name__}: {passing.detail}"}
    state = {**state, "status": str(execution.status), "message": execution.status_reason,
             "outputS3URI": execution.output_s3_uri, "lastError": None}
    if not execution.terminal and time.time() > state["deadline"]:
        try:
            client.cancel_execution(execution.execution_id)
        except ExecutionFinished:  # it finished meanwhile: the next look reports how
            return {**state, "terminal": False}
        return {**state, "terminal": True, "status": "CANCELLED",
                "message": "cancelled: it ran longer than EXECUTION_MAX_HOURS"}
    if state["status"] != seen:  # the record changes when the status does, not at every look
        workflow_records().update_job(state["customerId"], state["requestId"], executionStatus=state["status"])
    return {**state, "terminal": execution.terminal}


def finish(state: dict[str, Any], gate: ConcurrencyGate, service: Service) -> dict[str, Any]:
    """Give the slot back, record the outcome and notify once; safe to retry."""
    customer_id, key = state["customerId"], state["requestId"]
    error = state.get("error")
    outcome = ERROR if error else state.get("status", ERROR)
    message = error_summary(error) if error else state.get("message")
    with suppress(UnknownTenant):  # offboarded meanwhile: nothing waits behind it
        gate.release(tenant_config(customer_id)["amcInstanceId"], _gate_key(state))
    records = workflow_records()
    record = records.update_job(customer_id, key, executionStatus=outcome, amcMessage=message,
                                outputS3URI=state.get("outputS3URI"))
    records.notify_once(customer_id, key, lambda: service.publisher.publish(
        _outcome_message(record, state, Status(outcome), message, service.name)))
    return {"customerId": customer_id, "requestId": key, "status": outcome}


# -- helpers --------------------------------------------------------------------------------------------------


def _outcome_message(record: dict[str, Any], state: dict[str, Any], outcome: Status, message: str | None,
                     service: str) -> StatusMessage:
    customer_id, workflow, execution_id = record["customerId"], record.get("workflowId", "?"), \
        state.get("workflowExecutionId")
    summary = f"{customer_id} createExecution for {workflow} ({execution_id or 'not started'}) {outcome}" + (
        f": {message}" if message else "")
    return StatusMessage(
        service=service, request_type="createExecution", status=outcome, tenant_id=customer_id,
        request_id=record["requestId"], summary=summary, about=f"{workflow} {execution_id or ''}".strip(),
        details={"workflowId": workflow, "workflowExecutionId": execution_id, "amcStatus": str(outcome),
                 "amcMessage": message, "outputS3URI": state.get("outputS3URI"),
                 **{k: record[k] for k in ("scheduleName", "backfillId", "window") if k in record}})


def _gate_key(state: dict[str, Any]) -> str:
    return f"{state['customerId']}#{state['requestId']}"


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    keep = ("requestId", "workflowId", "executionStatus", "workflowExecutionId", "createdAt", "updatedAt",
            "amcMessage", "scheduleName", "backfillId", "origin")
    return {k: record[k] for k in keep if record.get(k) is not None}


def gate() -> ConcurrencyGate:
    return ConcurrencyGate(aws.client("dynamodb"), os.environ["WORKFLOW_GATE_TABLE"])

