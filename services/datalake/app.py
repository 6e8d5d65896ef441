"""Serverless Data Lake: turns every file the other services fetch into typed, governed tables analysts query
with SQL.

Events: requests on its request queue (datasets, redrives); object events of the intake buckets (S3 -> EventBridge
-> SQS), each recorded once and routed to its dataset; stage A messages (the light transform of one object); every
minute, the stage B batches that are due (the Glue job ``glue/stage_b.py``); the shared Step Functions tasks
(``shared/chalice_app.py``).
"""

import functools
import json
import os
from typing import Any

from chalice.app import Rate, SQSEvent
from chalicelib import datasets, intake, operations, pipeline

from shared import aws
from shared.batch import BatchResponse, process_partial_batch, sqs_records
from shared.chalice_app import service_app

app, service = service_app("datalake", routes=[
    (datasets.RegisterDataset, operations.register), (datasets.ListDatasets, operations.list_datasets),
    (operations.Redrive, operations.redrive),
])


@app.on_sqs_message(queue=os.environ["DATALAKE_REQUEST_QUEUE"], batch_size=10)
def on_request(event: SQSEvent) -> BatchResponse:
    return service.handle_requests(sqs_records(event))


@app.on_sqs_message(queue=os.environ["DATALAKE_EVENTS_QUEUE"], batch_size=10, maximum_batching_window_in_seconds=1)
def on_object_event(event: SQSEvent) -> BatchResponse:
    lake, sqs = pipeline.Lake.from_env(), aws.client("sqs")
    route = functools.partial(pipeline.send_to_stage_a, lake=lake, registry=datasets.registry(),
                              tenants=aws.table(os.environ["DATALAKE_TENANTS_TABLE"]), sqs=sqs,
                              stage_a_url=sqs.get_queue_url(QueueName=lake.stage_a_queue)["QueueUrl"])
    ledger = aws.table(os.environ["DATALAKE_OBJECTS_TABLE"])
    return process_partial_batch(sqs_records(event), lambda record: intake.handle(record, ledger, route))


@app.on_sqs_message(queue=os.environ["DATALAKE_STAGE_A_QUEUE"], batch_size=1)
def on_stage_a(event: SQSEvent) -> BatchResponse:
    lake, table, known = pipeline.Lake.from_env(), aws.table(os.environ["DATALAKE_PIPELINE_TABLE"]), datasets.registry()
    return process_partial_batch(sqs_records(event), lambda record: pipeline.run_stage_a(
        json.loads(record["body"]), lake, known, aws.client("s3"), table, service.publisher))


@app.schedule(Rate(1, unit=Rate.MINUTES))
def stage_b_batches(event: Any) -> None:
    pipeline.batch(pipeline.Lake.from_env(), datasets.registry(), aws.table(os.environ["DATALAKE_PIPELINE_TABLE"]),
                   aws.client("glue"))
