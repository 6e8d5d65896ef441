"""Serverless Data Lake: turns every file the other services fetch into typed, governed tables analysts query
with SQL.

Events: requests on its request queue; object events of the intake buckets (S3 -> EventBridge -> SQS);
Step Functions tasks (shared, see ``shared/chalice_app.py``).
"""

import os

from chalicelib import intake

from shared import aws
from shared.batch import process_partial_batch, sqs_records
from shared.chalice_app import service_app

app, service = service_app("datalake", routes=[])


@app.on_sqs_message(queue=os.environ["DATALAKE_REQUEST_QUEUE"], batch_size=10)
def on_request(event):
    return service.handle_requests(sqs_records(event))


@app.on_sqs_message(queue=os.environ["DATALAKE_EVENTS_QUEUE"], batch_size=10, maximum_batching_window_in_seconds=1)
def on_object_event(event):
    return process_partial_batch(sqs_records(event), _record_object_event)


def _record_object_event(record):
    event = intake.parse(record["body"])
    if event is not None:
        intake.record(event, aws.table(os.environ["DATALAKE_OBJECTS_TABLE"]))
