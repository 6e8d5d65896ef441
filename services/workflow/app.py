"""Workflow Manager: defines AMC SQL workflows, runs and schedules their executions within AMC's limits,
and reports every outcome.

Events: requests on its request queue; Step Functions tasks (the shared ``tasks`` blueprint).
"""

import os

from chalice import Chalice

from shared import diagnostics, runtime
from shared.batch import sqs_records
from shared.service import Service
from shared.tasks import tasks

app = Chalice(app_name="amci-workflow", configure_logs=False)
app.register_blueprint(tasks)
runtime.init("workflow")
service = Service("workflow", routes=[(diagnostics.DiagnoseRequest, diagnostics.start)])


@app.on_sqs_message(queue=os.environ["WORKFLOW_REQUEST_QUEUE"], batch_size=10)
def on_request(event):
    return service.handle_requests(sqs_records(event))
