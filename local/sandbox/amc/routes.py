"""AMC's reporting API over HTTP, on the Ads hosts: ``/ads/{na|eu|fe}/amc/reporting/{instanceId}/...``.

Workflows (create, get, update, delete, list with ``limit``/``nextToken``) and workflow executions (create saved
or ad hoc, get, list with ``minCreationTime``/``maxCreationTime``/``workflowId``/``nextToken``, cancel with
``PUT {"status": "CANCELLED"}`` or ``DELETE``, ``downloadUrls``), with AMC's headers, content types and
lifecycle (``state.py``). Results are generated from the query's columns (``data.py``), served by pre-signed URLs
valid 10 minutes and, when the instance has a results bucket that exists, written to it as AMC delivers:
``workflow={workflowId}/schedule=adhoc/{2026-11-27T04:30:00.000Z}-{workflowId}.csv``.

Errors are ``{"code": ..., "message": ...}`` (AMC's clients read ``message``). Codes: ``UNAUTHORIZED`` (401, bad
or expired token), ``BAD_REQUEST`` (400: a missing header, named; an invalid field), ``FORBIDDEN`` (403: the
headers' client, advertiser or marketplace do not own the instance), ``NOT_FOUND`` (404),
``WORKFLOW_ALREADY_EXISTS`` (400, ``Workflow with ID {id} already exists.``), ``RESULTS_UNAVAILABLE`` (400,
``Execution with ID {id} is unavailable for download.``), ``INVALID_STATE`` (400, updating a finished execution).

Settings, at run time: ``sandbox.amc.timings`` (phase lengths), :meth:`AmcApi.register_instance` (instances,
their results bucket and concurrency limit), ``sandbox.amc.result_rows``, ``sandbox.amc.state.execution_page_size``.
Call :meth:`AmcApi.stop` when the sandbox stops: it ends the background ticker.
"""

from __future__ import annotations

import logging
import secrets
import string
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from werkzeug.wrappers import Request

from local.sandbox.amc import data
from local.sandbox.amc.state import FAULT_OUTCOMES, AmcError, AmcState, AmcTimings, Delivery, Execution, Instance, iso
from local.sandbox.auth import authorized_client
from local.sandbox.http import Reply, SandboxError

if TYPE_CHECKING:
    from local.sandbox import Sandbox

log = logging.getLogger(__name__)

WORKFLOWS_TYPE = "application/vnd.amcworkflows.v1+json"
EXECUTIONS_TYPE = "application/vnd.amcworkflowexecutions.v1+json"
CREATED_TYPE = "application/octet-stream"  # create workflow answers 200 `{}` with this type, as recorded
CLIENT_ID = "Amazon-Advertising-API-ClientId"
ADVERTISER_ID = "Amazon-Advertising-API-AdvertiserId"
MARKETPLACE_ID = "Amazon-Advertising-API-MarketplaceId"
URL_EXPIRY_S = 600

_BASE = "/<any(na, eu, fe):region>/amc/reporting/<instance_id>"


class AmcApi:
    name = "amc"
    prefix = "/ads"
    routes = [
        (f"{_BASE}/workflows", "POST", "createWorkflow"),
        (f"{_BASE}/workflows", "GET", "listWorkflows"),
        (f"{_BASE}/workflows/<workflow_id>", "GET", "getWorkflow"),
        (f"{_BASE}/workflows/<workflow_id>", "PUT", "updateWorkflow"),
        (f"{_BASE}/workflows/<workflow_id>", "DELETE", "deleteWorkflow"),
        (f"{_BASE}/workflowExecutions", "POST", "createWorkflowExecution"),
        (f"{_BASE}/workflowExecutions", "GET", "listWorkflowExecutions"),
        (f"{_BASE}/workflowExecutions/", "GET", "listWorkflowExecutions"),  # AWS's own solution adds the slash
        (f"{_BASE}/workflowExecutions/<execution_id>", "GET", "getWorkflowExecution"),
        (f"{_BASE}/workflowExecutions/<execution_id>", "PUT", "updateWorkflowExecution"),
        (f"{_BASE}/workflowExecutions/<execution_id>", "DELETE", "deleteWorkflowExecution"),
        (f"{_BASE}/workflowExecutions/<execution_id>/downloadUrls", "GET", "getWorkflowExecutionDownloadUrls"),
    ]

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.result_rows: int | None = None  # rows per result file; None: 12-30, chosen from the query
        self.state = AmcState(AmcTimings(), deliver=self._deliver,
                              outcome=lambda: sandbox.faults.take_outcome("amc", "createWorkflowExecution"))
        sandbox.faults.produces("amc", "createWorkflowExecution", FAULT_OUTCOMES)
        account = sandbox.account
        self.register_instance(account.amc_instance_id, account.advertiser_id, account.marketplace_id)
        self._ticker: threading.Thread | None = None
        self._stopped = threading.Event()
        self._ticker_lock = threading.Lock()

    # -- settings --------------------------------------------------------------------------------------------

    @property
    def timings(self) -> AmcTimings:
        return self.state.timings

    @timings.setter
    def timings(self, value: AmcTimings) -> None:
        self.state.timings = value

    def register_instance(self, instance_id: str, advertiser_id: str, marketplace_id: str,
                          results_bucket: str | None = None, concurrency_limit: int = 10) -> Instance:
        """Add an AMC instance (or change one): results go to ``results_bucket`` when it exists in ``sandbox.s3``."""
        return self.state.register_instance(instance_id, advertiser_id, marketplace_id, results_bucket,
                                            concurrency_limit)

    def stop(self) -> None:
        """End the background ticker (statuses still advance when read)."""
        self._stopped.set()
        with self._ticker_lock:
            ticker = self._ticker
        if ticker is not None:
            ticker.join(timeout=5)

    def error_body(self, status: int, code: str | None, message: str) -> Any:
        return {"code": code or str(status), "message": message}

    # -- workflows -------------------------------------------------------------------------------------------

    def create_workflow(self, request: Request, region: str, instance_id: str) -> Reply:
        return self._serve(request, instance_id, CREATED_TYPE,
                           lambda: self.state.create_workflow(instance_id, _json(request)) or {})

    def list_workflows(self, request: Request, region: str, instance_id: str) -> Reply:
        return self._serve(request, instance_id, WORKFLOWS_TYPE, lambda: self.state.list_workflows(
            instance_id, request.args.get("limit"), request.args.get("nextToken")))

    def get_workflow(self, request: Request, region: str, instance_id: str, workflow_id: str) -> Reply:
        return self._serve(request, instance_id, WORKFLOWS_TYPE,
                           lambda: self.state.get_workflow(instance_id, workflow_id))

    def update_workflow(self, request: Request, region: str, instance_id: str, workflow_id: str) -> Reply:
        return self._serve(request, instance_id, CREATED_TYPE,
                           lambda: self.state.update_workflow(instance_id, workflow_id, _json(request)) or {})

    def delete_workflow(self, request: Request, region: str, instance_id: str, workflow_id: str) -> Reply:
        return self._serve(request, instance_id, WORKFLOWS_TYPE,
                           lambda: self.state.delete_workflow(instance_id, workflow_id) or {})

    # -- executions ------------------------------------------------------------------------------------------

    def create_workflow_execution(self, request: Request, region: str, instance_id: str) -> Reply:
        def create() -> dict[str, Any]:
            execution = self.state.create_execution(instance_id, _json(request))
            self._ensure_ticker()
            return execution

        return self._serve(request, instance_id, EXECUTIONS_TYPE, create)

    def list_workflow_executions(self, request: Request, region: str, instance_id: str) -> Reply:
        return self._serve(request, instance_id, EXECUTIONS_TYPE,
                           lambda: self.state.list_executions(instance_id, request.args))

    def get_workflow_execution(self, request: Request, region: str, instance_id: str, execution_id: str) -> Reply:
        include = request.args.get("includeWorkflow", "false").lower() == "true"
        return self._serve(request, instance_id, EXECUTIONS_TYPE,
                           lambda: self.state.get_execution(instance_id, execution_id, include))

    def update_workflow_execution(self, request: Request, region: str, instance_id: str,
                                  execution_id: str) -> Reply:
        return self._serve(request, instance_id, EXECUTIONS_TYPE,
                           lambda: self.state.update_execution(instance_id, execution_id, _json(request)))

    def delete_workflow_execution(self, request: Request, region: str, instance_id: str,
                                  execution_id: str) -> Reply:
        return self._serve(request, instance_id, EXECUTIONS_TYPE,
                           lambda: self.state.delete_execution(instance_id, execution_id))

    def get_workflow_execution_download_urls(self, request: Request, region: str, instance_id: str,
                                             execution_id: str) -> Reply:
        def urls() -> dict[str, Any]:
            delivery = self.state.download_files(instance_id, execution_id)
            files = self.sandbox.files
            return {"downloadUrls": [files.url(name, URL_EXPIRY_S) for name in delivery.files],
                    "metadataDownloadUrls": [files.url(name, URL_EXPIRY_S) for name in delivery.metadata_files]}

        return self._serve(request, instance_id, EXECUTIONS_TYPE, urls)

    # -- plumbing --------------------------------------------------------------------------------------------

    def _serve(self, request: Request, instance_id: str, content_type: str, answer: Callable[[], Any]) -> Reply:
        """Check the headers, compute the answer, and shape AMC's reply (or its error)."""
        request_id = _request_id()
        headers = {"x-amz-rid": request_id, "x-amz-request-id": request_id}
        try:
            self._authorize(request, instance_id)
            body = answer()
        except SandboxError as exc:  # AmcError included
            exc.headers = {**headers, **exc.headers}
            raise
        return Reply(body, headers=headers, content_type=content_type)

    def _authorize(self, request: Request, instance_id: str) -> None:
        client_id = authorized_client(request, self.sandbox.lwa, header="Authorization", status=401,
                                      code="UNAUTHORIZED")
        for header in (CLIENT_ID, ADVERTISER_ID, MARKETPLACE_ID):
            if not request.headers.get(header, "").strip():
                raise AmcError(400, "BAD_REQUEST", f"Missing required header: {header}")
        if request.headers[CLIENT_ID].strip() != client_id:
            raise AmcError(403, "FORBIDDEN", f"The {CLIENT_ID} header does not match the access token's client.")
        instance = self.state.instance(instance_id)
        if request.headers[ADVERTISER_ID].strip() != instance.advertiser_id:
            raise AmcError(403, "FORBIDDEN", f"Advertiser {request.headers[ADVERTISER_ID]} has no access to "
                           f"instance {instance_id}.")
        if request.headers[MARKETPLACE_ID].strip() != instance.marketplace_id:
            raise AmcError(403, "FORBIDDEN", f"Marketplace {request.headers[MARKETPLACE_ID]} does not match "
                           f"instance {instance_id}.")

    def _ensure_ticker(self) -> None:
        with self._ticker_lock:
            if self._ticker is None and not self._stopped.is_set():
                self._ticker = threading.Thread(target=self._tick, name="sandbox-amc-ticker", daemon=True)
                self._ticker.start()

    def _tick(self) -> None:
        while not self._stopped.wait(self.state.timings.tick_s):
            try:
                self.state.advance_all()
            except Exception:  # the ticker must outlive any one bad delivery
                log.exception("AMC sandbox ticker failed; carrying on")

    def _deliver(self, instance: Instance, execution: Execution, at: float) -> Delivery:
        """Generate the results, keep them for downloadUrls, and put them in the instance's bucket if it has one."""
        shape = {"workflowExecutionId": execution.execution_id, "workflowId": execution.workflow_id,
                 **execution.request}
        sql = execution.workflow.get("sqlQuery")
        results = data.generate(sql, execution.workflow, shape, rows=self.result_rows)
        base = f"amc/{instance.instance_id}/{execution.execution_id}"
        csv_name, metadata_name = f"{base}/{execution.workflow_id}.csv", f"{base}/metadata.json"
        self.sandbox.files.put_bytes(csv_name, results.csv, "text/csv")
        self.sandbox.files.put_bytes(metadata_name, results.metadata(shape, sql), "application/json")
        key = f"workflow={execution.workflow_id}/schedule=adhoc/{iso(at, millis=True)}-{execution.workflow_id}.csv"
        return Delivery([c.to_api() for c in results.columns], self._to_bucket(instance, key, results.csv),
                        [csv_name], [metadata_name])

    def _to_bucket(self, instance: Instance, key: str, body: bytes) -> str:
        """Write the results to the instance's bucket; ``N/A`` (as AMC says) when there is none to write to."""
        bucket = instance.results_bucket
        if not bucket or self.sandbox.s3 is None:
            return "N/A"
        try:
            self.sandbox.s3().put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/csv")
        except (ClientError, BotoCoreError) as exc:
            log.warning("AMC sandbox could not deliver results to the instance's bucket",
                        extra={"instance_id": instance.instance_id, "bucket": bucket, "error": str(exc)})
            return "N/A"
        return f"s3://{bucket}/{key}"


def _json(request: Request) -> Any:
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise AmcError(400, "BAD_REQUEST", "The request body must be a JSON object.")
    return body


def _request_id() -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(20))
