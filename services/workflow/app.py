"""Workflow Manager: defines AMC SQL workflows, runs and schedules their executions within AMC's limits,
and reports every outcome.

Events: requests on its request queue (workflows, executions, schedules, backfills; the AWS Solution's payloads
too); the executions state machine's tasks; the shared Step Functions tasks (``shared/chalice_app.py``).
"""

import os
from typing import Any

from chalice.app import SQSEvent
from chalicelib import backfill, contracts, executions, schedules, workflows

from shared import scheduler
from shared.batch import BatchResponse, sqs_records
from shared.chalice_app import service_app

app, service = service_app("workflow", routes=[
    (contracts.WorkflowRequest, workflows.handle), (contracts.ListWorkflows, workflows.list_all),
    (contracts.CreateExecution, executions.create), (contracts.CancelExecution, executions.cancel),
    (contracts.GetExecutionStatus, executions.status), (contracts.ListExecutions, executions.list_all),
    (contracts.SyncExecutions, executions.sync),
    (contracts.ScheduleRequest, schedules.put), (contracts.UpdateSchedule, schedules.put),
    (scheduler.NamedSchedule, schedules.delete), (scheduler.EnableSchedule, schedules.set_state),
    (scheduler.DisableSchedule, schedules.set_state), (contracts.ListSchedules, schedules.list_all),
    (contracts.Backfill, backfill.start), (contracts.ResubmitBackfill, backfill.resubmit),
], classify=contracts.classify)


@app.on_sqs_message(queue=os.environ["WORKFLOW_REQUEST_QUEUE"], batch_size=10)
def on_request(event: SQSEvent) -> BatchResponse:
    return service.handle_requests(sqs_records(event))


@app.lambda_function(name="execution_admit")
def execution_admit(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return executions.admit(event, executions.gate())


@app.lambda_function(name="execution_start")
def execution_start(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return executions.start(event)


@app.lambda_function(name="execution_poll")
def execution_poll(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return executions.poll(event)


@app.lambda_function(name="execution_finish")
def execution_finish(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return executions.finish(event, executions.gate(), service)
