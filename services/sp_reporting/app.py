"""Selling Partner Reporting: requests Selling Partner API reports, waits for them and streams each document into
the reports bucket for the data lake, named by its content (JSON, tab-separated...).

Events: requests on its request queue (reports and schedules; the AWS Solution's payloads too);
the report state machine's tasks (``shared/reports.py``); the shared Step Functions tasks (``shared/chalice_app.py``).
"""

import os
from typing import Any

from chalice.app import SQSEvent
from chalicelib import contracts
from chalicelib.source import SpSource

from shared.batch import BatchResponse, sqs_records
from shared.chalice_app import service_app
from shared.reports import Reports, classify

reports = Reports("sp_reporting", SpSource())
app, service = service_app("sp_reporting", routes=reports.routes(contracts.SpReportRequest, contracts.SpSchedule),
                           classify=classify)


@app.on_sqs_message(queue=os.environ["SP_REPORTING_REQUEST_QUEUE"], batch_size=10)
def on_request(event: SQSEvent) -> BatchResponse:
    return service.handle_requests(sqs_records(event))


@app.lambda_function(name="report_create")
def report_create(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return reports.create(event, context)


@app.lambda_function(name="report_poll")
def report_poll(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return reports.poll(event, context)


@app.lambda_function(name="report_download")
def report_download(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return reports.download(event, context)


@app.lambda_function(name="report_finish")
def report_finish(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return reports.finish(event, service)
