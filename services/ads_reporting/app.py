"""Amazon Ads Reporting: requests Amazon Ads reports, waits for them and streams each file into the reports
bucket for the data lake.

Events: requests on its request queue (reports, schedules, profiles, backfills; the AWS Solution's payloads too);
the report state machine's tasks (``shared/reports.py``); the shared Step Functions tasks (``shared/chalice_app.py``).
"""

import functools
import os
from typing import Any

from chalice.app import SQSEvent
from chalicelib import backfill, contracts, profiles
from chalicelib.source import AdsSource

from shared.batch import BatchResponse, sqs_records
from shared.chalice_app import service_app
from shared.reports import Reports

reports = Reports("ads_reporting", AdsSource())
app, service = service_app("ads_reporting", routes=[
    *reports.routes(contracts.AdsReportRequest, contracts.AdsSchedule),
    (contracts.ListProfiles, profiles.list_all),
    (contracts.BackfillReports, functools.partial(backfill.start, reports=reports)),
], classify=contracts.classify)


@app.on_sqs_message(queue=os.environ["ADS_REPORTING_REQUEST_QUEUE"], batch_size=10)
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
