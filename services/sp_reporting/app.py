"""Selling Partner Reporting: requests Selling Partner reports, waits for them and streams each file into the
reports bucket for the data lake.

Events: requests on its request queue; Step Functions tasks (the shared ``tasks`` blueprint).
"""

import os

from chalice import Chalice

from shared import diagnostics, runtime
from shared.batch import sqs_records
from shared.service import Service
from shared.tasks import tasks

app = Chalice(app_name="amci-sp-reporting", configure_logs=False)
app.register_blueprint(tasks)
runtime.init("sp_reporting")
service = Service("sp_reporting", routes=[(diagnostics.DiagnoseRequest, diagnostics.start)])


@app.on_sqs_message(queue=os.environ["SP_REPORTING_REQUEST_QUEUE"], batch_size=10)
def on_request(event):
    return service.handle_requests(sqs_records(event))
