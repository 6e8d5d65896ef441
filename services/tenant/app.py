"""Tenant Provisioning Service: onboards each AMC instance as a tenant: its results bucket wired into the data lake,
its identifiers and credentials registered for the other services.

Events: requests on its request queue; Step Functions tasks (shared, see ``shared/chalice_app.py``).
"""

import os

from chalice.app import SQSEvent

from shared.batch import BatchResponse, sqs_records
from shared.chalice_app import service_app

app, service = service_app("tenant", routes=[])


@app.on_sqs_message(queue=os.environ["TENANT_REQUEST_QUEUE"], batch_size=10)
def on_request(event: SQSEvent) -> BatchResponse:
    return service.handle_requests(sqs_records(event))
