"""Serverless Data Lake: turns every file the other services fetch into typed, governed tables analysts query
with SQL.

Events: requests on its request queue; object events of the intake buckets (S3 -> EventBridge -> SQS);
Step Functions tasks (shared, see ``shared/chalice_app.py``).
"""

import os

from chalice.app import SQSEvent
from chalicelib import intake

from shared import aws
from shared.batch import BatchResponse, process_partial_batch, sqs_records
from shared.chalice_app import service_app

app, service = service_app("datalake", routes=[])


@app.on_sqs_message(queue=os.environ["DATALAKE_REQUEST_QUEUE"], batch_size=10)
def on_request(event: SQSEvent) -> BatchResponse:
    return service.handle_requests(sqs_records(event))


@app.on_sqs_message(queue=os.environ["DATALAKE_EVENTS_QUEUE"], batch_size=10, maximum_batching_window_in_seconds=1)
def on_object_event(event: SQSEvent) -> BatchResponse:
    ledger = aws.table(os.environ["DATALAKE_OBJECTS_TABLE"])
    return process_partial_batch(sqs_records(event), lambda record: intake.handle(record, ledger))
