"""Workflow Manager: defines AMC SQL workflows, runs and schedules their executions within AMC's limits,
and reports every outcome.

Events: requests on its request queue (the AWS Solution's workflow requests, and listWorkflows); the shared
Step Functions tasks (``shared/chalice_app.py``).
"""

import os

from chalice.app import SQSEvent
from chalicelib import contracts, workflows

from shared.batch import BatchResponse, sqs_records
from shared.chalice_app import service_app

app, service = service_app("workflow", routes=[
    (contracts.WorkflowRequest, workflows.handle), (contracts.ListWorkflows, workflows.list_all),
], classify=contracts.classify)


@app.on_sqs_message(queue=os.environ["WORKFLOW_REQUEST_QUEUE"], batch_size=10)
def on_request(event: SQSEvent) -> BatchResponse:
    return service.handle_requests(sqs_records(event))
