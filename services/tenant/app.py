"""Tenant Provisioning Service: onboards each AMC instance as a tenant: its results bucket wired into the data lake,
its identifiers and credentials registered for the other services, its data governed.

Events: requests on its request queue (add, update, get, list, offboard; the AWS Solution's payload too);
the onboarding state machine's tasks; the shared Step Functions tasks (``shared/chalice_app.py``).
"""

import os
from typing import Any

from chalice.app import SQSEvent
from chalicelib import contracts, onboarding, tenants
from chalicelib.deps import TenantService

from shared import aws
from shared.batch import BatchResponse, sqs_records
from shared.chalice_app import service_app

app, service = service_app("tenant", routes=[
    (contracts.AddTenant, tenants.add), (contracts.UpdateTenant, tenants.add), (contracts.GetTenant, tenants.get),
    (contracts.ListTenants, tenants.list_all), (contracts.OffboardTenant, tenants.offboard),
], service_type=TenantService, classify=contracts.classify)


@app.on_sqs_message(queue=os.environ["TENANT_REQUEST_QUEUE"], batch_size=10)
def on_request(event: SQSEvent) -> BatchResponse:
    return service.handle_requests(sqs_records(event))


@app.lambda_function(name="onboarding_deploy")
def onboarding_deploy(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return onboarding.deploy(event, service.platform, service.registry, aws.client)


@app.lambda_function(name="onboarding_check")
def onboarding_check(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return onboarding.check(event, aws.client)


@app.lambda_function(name="onboarding_register")
def onboarding_register(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return onboarding.register(event, service.platform, service.registry, aws.client,
                               service.settings.status_topic_arn)


@app.lambda_function(name="onboarding_failed")
def onboarding_failed(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return onboarding.mark_failed(event, service.registry)
