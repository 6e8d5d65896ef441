"""Tenant Provisioning Service: onboards each AMC instance as a tenant: its results bucket wired into the data lake,
its identifiers and credentials registered for the other services.

Events: requests on its request queue; Step Functions tasks (the shared ``tasks`` blueprint).
"""

import os

from chalice import Chalice

from shared import diagnostics, runtime
from shared.batch import sqs_records
from shared.service import Service
from shared.tasks import tasks

app = Chalice(app_name="amci-tenant", configure_logs=False)
app.register_blueprint(tasks)
runtime.init("tenant")
service = Service("tenant", routes=[(diagnostics.DiagnoseRequest, diagnostics.start)])


@app.on_sqs_message(queue=os.environ["TENANT_REQUEST_QUEUE"], batch_size=10)
def on_request(event):
    return service.handle_requests(sqs_records(event))
