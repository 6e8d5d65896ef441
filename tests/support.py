"""Helpers the tests share."""

from __future__ import annotations

import importlib.util
import json
import logging
import random
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from amci.inbox import Inbox, Notification
from amci.stages import SERVICES_DIR
from local.cloud import LocalCloud
from local.sandbox import Sandbox
from local.sandbox.amc.state import AmcTimings
from shared import aws, lake
from shared.amazon import sp
from shared.amazon.http import AmazonHttp
from shared.amazon.lwa import CredentialStore, TokenProvider
from shared.amazon.regions import Endpoints
from shared.logs import JsonFormatter

T = TypeVar("T")
WHEELHOUSE = SERVICES_DIR.parent / ".venv" / "wheelhouse"  # filled by make: packaging runs offline
LAMBDA_ZIP_LIMIT = 50 * 1024 * 1024  # a zip uploaded directly (not from S3)
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024  # the function and its layers, unzipped
AMC_ACCOUNT = "111122223333"  # the AWS account AMC delivers results from, in every test tenant
FAST = AmcTimings(pending_s=0.3, running_s=1.0, publishing_s=0.3, tick_s=0.1)  # AMC executions in ~2 s
# What a secret looks like once written: Login with Amazon tokens and client secrets, bearer headers, pre-signed
# URL signatures, secret-named JSON fields with a value. Their masked forms ("Atz*|***", "Bearer ***") do not match.
SECRETS = re.compile(r"Atz[ar]\|[\w-]{8,}|amzn1\.oa2-cs\.v1\.[\w-]+|Bearer [\w.|-]{8,}|"
                     r"X-Amz-(?:Signature|Security-Token)=[\w%/+-]{8,}|"
                     r"\\*\"(?:client_secret|refresh_token|access_token)\\*\": \\*\"(?!\*\*\*)[^\"\\]+", re.I)


class LogWatch(logging.Handler):
    """Keeps every log line, formatted as the platform writes it (``shared.logs.JsonFormatter``), to search them
    for secrets (``tests/conftest.py`` watches every test)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[tuple[str, str]] = []  # (logger, line)

    def emit(self, record: logging.LogRecord) -> None:  # called by handle(), under the handler's lock
        self.lines.append((record.name, self.format(record)))

    def leaks(self) -> list[tuple[str, str]]:
        """The lines logged since the last call that give a secret away (logger, line with the secret masked)."""
        with self.lock:  # type: ignore[union-attr]  # not None: Handler.__init__ creates it
            taken, self.lines = self.lines, []
        return [(logger, SECRETS.sub("<SECRET>", line)[:300]) for logger, line in taken if SECRETS.search(line)]


LOG_WATCH = LogWatch()


def app_module(path: str) -> Any:
    """A module of an app loaded from its file (``"datalake/glue/convert.py"``): every app has a ``chalicelib``
    package, so none can be imported by that name here. Registered first, as dataclasses need."""
    name = "amci_test_" + path.removesuffix(".py").replace("/", "_")
    spec = importlib.util.spec_from_file_location(name, SERVICES_DIR / path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def wait_until(probe: Callable[[], T], timeout_s: float = 30, interval_s: float = 0.2) -> T:
    """Call ``probe`` until it returns something truthy; fail with the last value after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s (last value: {value!r})")
        time.sleep(interval_s)


def queue_idle(url: str) -> bool:
    """No message waiting in the queue and none being handled."""
    attributes = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return all(value == "0" for value in attributes.values())


def send(cloud: LocalCloud, service: str, body: dict[str, Any]) -> str:
    """Put a request on ``service``'s request queue; returns its request id (one is added when missing)."""
    request_id = body.setdefault("requestId", uuid.uuid4().hex[:16])
    aws.client("sqs").send_message(QueueUrl=cloud.request_queue_url(service), MessageBody=json.dumps(body))
    return request_id


def answer(inbox: Inbox, request_id: str, timeout_s: float = 60) -> Notification:
    """The notification answering request ``request_id``, waiting for it."""
    return inbox.wait_for(lambda n: n.body.get("request_id") == request_id, timeout_s)


def answers(inbox: Inbox, request_ids: list[str], timeout_s: float, explain: Callable[[], Any] = str
            ) -> dict[str, Notification]:
    """The first notification answering each request, waiting for all of them; a timeout names the unanswered
    ones and adds ``explain()`` (e.g. what the dead-letter queues hold)."""
    deadline, wanted = time.monotonic() + timeout_s, set(request_ids)
    while True:
        found: dict[str, Notification] = {}
        for note in inbox.received:
            if note.body.get("request_id") in wanted:
                found.setdefault(note.body["request_id"], note)
        if not (missing := [r for r in request_ids if r not in found]):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no notification within {timeout_s}s for {missing}; {explain()}")
        inbox.drain(wait_s=1)


def dead_letters(cloud: LocalCloud, *services: str) -> dict[str, list[str]]:
    """What each service's request DLQ holds, left in place: the explanation of a request that went unanswered."""
    sqs, held = aws.client("sqs"), {}
    for service in services:
        url = sqs.get_queue_url(QueueName=cloud.request_dlq_name(service))["QueueUrl"]
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                       MessageAttributeNames=["All"]).get("Messages", [])
        held[service] = [f"{m['Body'][:300]} {m.get('MessageAttributes', {})}" for m in messages]
    return held


def ask(cloud: LocalCloud, inbox: Inbox, service: str, body: dict[str, Any], timeout_s: float = 60) -> Notification:
    """Send a request and wait for its notification."""
    return answer(inbox, send(cloud, service, body), timeout_s)


def customer_details(customer_id: str, **changes: Any) -> dict[str, Any]:
    """A tenant's ``customer_details`` on the sandbox's demo AMC instance, with a new bucket of its name; ``changes``
    replace fields (those of ``amc`` one by one)."""
    amc = {"aws_orange_account_id": AMC_ACCOUNT, "bucket_name": f"amc-{customer_id}-results",
           "instance_id": "amcdemo0001", "amazon_ads_advertiser_id": "ENTITY1DEMO",
           "amazon_ads_marketplace_id": "ATVPDKIKX0DER", **changes.pop("amc", {})}
    return {"customer_id": customer_id, "customer_name": f"Customer {customer_id}", "bucket_exists": "false",
            "amc": amc, **changes}


def onboard(cloud: LocalCloud, inbox: Inbox, prefix: str, instance_id: str | None = None, **details: Any) -> str:
    """A tenant onboarded through the tenant service, on ``instance_id`` (the sandbox's demo instance by default,
    else one registered in the sandbox that delivers into the tenant's new bucket)."""
    customer_id = f"{prefix}{uuid.uuid4().hex[:8]}"
    demo, bucket = cloud.sandbox.credentials, f"amc-{customer_id}-results"
    if instance_id is not None:
        cloud.sandbox.amc.register_instance(instance_id, demo["advertiser_id"], demo["marketplace_id"], bucket)
    note = ask(cloud, inbox, "tenant", {"customer_details": customer_details(
        customer_id, customer_name=f"{prefix} tests", **details, amc={
            "instance_id": instance_id or demo["amc_instance_id"], "amazon_ads_advertiser_id": demo["advertiser_id"],
            "amazon_ads_marketplace_id": demo["marketplace_id"]})})
    assert note.attributes["status"] == "SUCCEEDED", note.body
    return customer_id


def amc_tenant(cloud: LocalCloud, inbox: Inbox, **details: Any) -> tuple[str, str]:
    """A tenant on its own sandbox instance (so counts are its own), with a saved workflow ``top``."""
    instance = f"amc{uuid.uuid4().hex[:8]}"
    customer = onboard(cloud, inbox, "ex", instance, **details)
    note = ask(cloud, inbox, "workflow", {"customerId": customer, "workflowRequest": {
        "requestType": "createWorkflow", "workflowDefinition": {
            "workflowId": "top", "sqlQuery": "SELECT campaign, SUM(impressions) AS impressions FROM t GROUP BY 1"}}})
    assert note.attributes["status"] == "SUCCEEDED", note.body
    return customer, instance


def execution_request(customer: str, **fields: Any) -> dict[str, Any]:
    """An execution request as the AWS Solution's notebooks send it."""
    return {"customerId": customer, "requestType": "createExecution", "createExecutionRequest": {
        "workflowId": "top", "timeWindowType": "EXPLICIT", "timeWindowStart": "today(-2)",
        "timeWindowEnd": "TODAY(-1)", "timeWindowTimeZone": "America/New_York", "ignoreDataGaps": True,
        "workflowExecutionTimeoutSeconds": 86400, "parameterValues": {"report_date": "TODAY(-1)"}, **fields}}


def execution_outcome(inbox: Inbox, request_id: str, timeout_s: float = 90) -> Notification:
    return inbox.wait_for(lambda n: n.body.get("request_id") == request_id
                          and n.attributes["requestType"] == "createExecution", timeout_s)


def amc_calls(cloud: LocalCloud, instance: str, operation: str | None = None, status: int | None = None) -> list[Any]:
    """The sandbox's AMC requests for ``instance`` (its request log)."""
    return [r for r in cloud.sandbox.requests.where(api="amc", operation=operation, status=status)
            if f"/amc/reporting/{instance}/" in f"{r.path}/"]


def amc_creates(cloud: LocalCloud, instance: str) -> list[Any]:
    """The AMC executions the sandbox created on ``instance``."""
    return amc_calls(cloud, instance, "createWorkflowExecution", 200)


def execution_runs(cloud: LocalCloud, customer: str) -> list[str]:
    """The names of the runs the workflow executions state machine started for ``customer``: one per execution
    request, however often it was delivered (a run is started before its message is deleted)."""
    pages = aws.client("stepfunctions").get_paginator("list_executions").paginate(
        stateMachineArn=cloud.outputs["WorkflowExecutionsStateMachineArn"])
    return [run["name"] for page in pages for run in page["executions"] if customer in run["name"]]


def ads_calls(cloud: LocalCloud, profile_id: str, operation: str | None = None, since: float = 0,
              status: int | None = None) -> list[Any]:
    """The sandbox's Amazon Ads requests for the profile (its Scope header), from ``since`` (epoch seconds)."""
    return [r for r in cloud.sandbox.requests.where(api="ads", operation=operation, status=status) if r.time >= since
            and header(r, "Amazon-Advertising-API-Scope") == profile_id]


def header(request: Any, name: str) -> str | None:
    """A recorded request's header, whatever its case."""
    return {k.lower(): v for k, v in request.headers.items()}.get(name.lower())


def sp_creates(cloud: LocalCloud, start: str, status: int | None = None) -> list[Any]:
    """The sandbox's SP createReport requests for reports starting on ``start`` (a day), answered ``status``."""
    return [r for r in cloud.sandbox.requests.where(api="sp", operation="createReport", status=status)
            if isinstance(r.body, dict) and str(r.body.get("dataStartTime", "")).startswith(start)]


def ads_creates(cloud: LocalCloud, profile_id: str) -> list[Any]:
    """The Amazon Ads reports the sandbox created for ``profile_id`` (its request log)."""
    return [r for r in ads_calls(cloud, profile_id, "createReport") if r.status < 300]


@contextmanager
def amc_timings(box: Sandbox, **changes: float) -> Iterator[None]:
    """The sandbox's AMC timings changed for the executions created in the block (AMC fixes an execution's at its
    creation); the previous ones come back afterwards."""
    saved = box.amc.timings
    box.amc.timings = replace(saved, **changes)
    try:
        yield
    finally:
        box.amc.timings = saved


def outage_until(faults: Any, api: str, met: Callable[[], T], timeout_s: float = 30) -> T:
    """Every call to ``api`` fails 503 until ``met`` finds the failed call the test waits for; then the outage
    ends (however slow the machine, the call meets it)."""
    outage = faults.add(api, status=503)
    try:
        return wait_until(met, timeout_s)
    finally:
        outage.times = 0


@contextmanager
def queued_at_amc(box: Sandbox, instance_id: str) -> Iterator[None]:
    """The instance's new executions wait in AMC's queue (live, not running) for the block: a test waits there for
    the ones it expects live at once, however slow the machine, then lets them run."""
    instance = box.amc.state.instances[instance_id]
    limit, instance.concurrency_limit = instance.concurrency_limit, 0
    try:
        yield
    finally:
        instance.concurrency_limit = limit


@contextmanager
def sp_unthrottled(box: Sandbox, queued_s: float, processing_s: float) -> Iterator[None]:
    """The sandbox's SP reports ready after these timings, with rate limits (the sandbox's and the clients') no
    test reaches, for the block; restored afterwards."""
    timings, limits, client_limits = replace(box.sp.timings), dict(box.sp.limits), dict(sp.LIMITER.limits)
    box.sp.timings.queued_s, box.sp.timings.processing_s = queued_s, processing_s
    for current in (box.sp.limits, sp.LIMITER.limits):
        current.update(dict.fromkeys(current, (1000.0, 1000.0)))
    try:
        yield
    finally:
        box.sp.timings.__dict__.update(asdict(timings))
        for current, saved in ((box.sp.limits, limits), (sp.LIMITER.limits, client_limits)):
            current.clear()
            current.update(saved)


_DAYS_TAKEN: set[int] = set()


def own_day() -> int:
    """A number of days ago (40 to 699) no other test of this process has taken, so the sandbox's requests for a
    report starting that day are the caller's."""
    taken = random.Random(uuid.uuid4().int).choice(sorted(set(range(40, 700)) - _DAYS_TAKEN))
    _DAYS_TAKEN.add(taken)
    return taken


def day(days_ago: int) -> str:
    """The ISO date ``days_ago`` days before today (UTC)."""
    return (datetime.now(UTC).date() - timedelta(days=days_ago)).isoformat()


def sql(cloud: LocalCloud, statement: str, database: str | None = None) -> list[dict[str, Any]]:
    """Rows of ``statement`` over the lake, as ``amci lake query`` gets them."""
    return lake.query(aws.client("athena"), statement, database=database,
                      output=f"s3://{cloud.outputs['StageBucket']}/athena/").as_dicts()


def pipeline_items(cloud: LocalCloud, dataset: str) -> list[dict[str, Any]]:
    """The lake pipeline's records of ``dataset`` (objects, pending and processed files, runs)."""
    return list(aws.items(aws.table(cloud.outputs["DatalakePipelineTable"]).query,
                          KeyConditionExpression="dataset = :d", ExpressionAttributeValues={":d": dataset},
                          ConsistentRead=True))


def demo_tokens(cloud: LocalCloud) -> TokenProvider:
    """Tokens for the sandbox's demo app, from a credential secret of the caller's own."""
    secret = f"amci/test/demo-{uuid.uuid4().hex[:12]}"
    demo = cloud.sandbox.credentials
    aws.client("secretsmanager").create_secret(Name=secret, SecretString=json.dumps(
        {key: demo[key] for key in ("client_id", "client_secret", "refresh_token")}))
    return TokenProvider(CredentialStore(aws.client("secretsmanager"), secret), AmazonHttp("lwa"), Endpoints.from_env())


def own_credentials(box: Sandbox, secret: str) -> str:
    """Store as ``secret`` the credentials of a Login with Amazon app of the caller's own, known to the sandbox;
    returns its client id, by which its token requests are told from other work's (:func:`token_requests`)."""
    suffix = uuid.uuid4().hex[:12]
    client_id, client_secret = f"amzn1.application-oa2-client.test{suffix}", f"secret-{suffix}"
    box.lwa.register_client(client_id, client_secret, {"https://amazon.com"})
    aws.client("secretsmanager").create_secret(Name=secret, SecretString=json.dumps({
        "client_id": client_id, "client_secret": client_secret, "refresh_token": box.lwa.add_refresh_token(client_id)}))
    return client_id


def own_tokens(box: Sandbox) -> TokenProvider:
    """Tokens for a Login with Amazon app of the caller's own (:func:`own_credentials`)."""
    secret = f"amci/test/app-{uuid.uuid4().hex[:12]}"
    own_credentials(box, secret)
    return TokenProvider(CredentialStore(aws.client("secretsmanager"), secret), AmazonHttp("lwa"), Endpoints.from_env())


def token_requests(box: Sandbox, client_id: str, status: int | None = None) -> int:
    """How many token requests Login with Amazon was sent for ``client_id`` (answered ``status``)."""
    return sum(1 for r in box.requests.where(api="lwa", operation="token", status=status)
               if isinstance(r.body, dict) and r.body.get("client_id") == client_id)


def second_credentials(cloud: LocalCloud) -> tuple[str, str]:
    """A credential set of the caller's own besides the default one, stored as an ``authId``: (the authId, its
    client id)."""
    auth_id = f"second-{uuid.uuid4().hex[:8]}"
    return auth_id, own_credentials(cloud.sandbox, f"amci/local/auth/{auth_id}")


def revoked_credentials() -> str:
    """An ``authId`` whose refresh token Login with Amazon no longer accepts (the default app's, revoked)."""
    secrets, auth_id = aws.client("secretsmanager"), f"revoked-{uuid.uuid4().hex[:8]}"
    secrets.create_secret(Name=f"amci/local/auth/{auth_id}", SecretString=json.dumps({
        **json.loads(secrets.get_secret_value(SecretId="amci/local/auth/default")["SecretString"]),
        "refresh_token": "Atzr|revoked", "access_token": ""}))
    return auth_id


def manage_schedule(cloud: LocalCloud, inbox: Inbox, service: str, name: str, report: dict[str, Any]) -> None:
    """Take report schedule ``name`` of ``service`` (the caller made it) through updateSchedule (to ``report``),
    listSchedules, disableSchedule, enableSchedule and deleteSchedule, checking each step's answer and the
    EventBridge Scheduler schedule behind it (named ``ads-<name>`` or ``sp-<name>`` in the platform's group)."""
    updated = ask(cloud, inbox, service, {
        "requestType": "updateSchedule", "scheduleName": name, "scheduleExpression": "cron(0 6 * * ? *)",
        "timezone": "Europe/Paris", "reportRequest": report})
    assert updated.attributes["status"] == "SUCCEEDED", updated.body["summary"]
    assert updated.body["details"]["written"] == "updated"
    listed = ask(cloud, inbox, service, {"requestType": "listSchedules"})
    mine = [s for s in listed.body["details"]["schedules"] if s["scheduleName"] == name]
    assert [(s["scheduleExpression"], s["timezone"], s["tableName"]) for s in mine] == [
        ("cron(0 6 * * ? *)", "Europe/Paris", updated.body["details"]["tableName"])]
    group, scheduler = cloud.outputs["PlatformScheduleGroup"], aws.client("scheduler")
    deployed = f"{service.removesuffix('_reporting')}-{name}"
    for state in ("disable", "enable"):
        changed = ask(cloud, inbox, service, {"requestType": f"{state}Schedule", "scheduleName": name})
        assert changed.attributes["status"] == "SUCCEEDED", changed.body["summary"]
        schedule = scheduler.get_schedule(Name=deployed, GroupName=group)
        assert schedule["State"] == f"{state.upper()}D" and schedule["ScheduleExpressionTimezone"] == "Europe/Paris"
    deleted = ask(cloud, inbox, service, {"requestType": "deleteSchedule", "scheduleName": name})
    assert deleted.attributes["status"] == "SUCCEEDED", deleted.body["summary"]
    listed = ask(cloud, inbox, service, {"requestType": "listSchedules"})
    assert name not in {s["scheduleName"] for s in listed.body["details"]["schedules"]}
    assert scheduler.list_schedules(GroupName=group, NamePrefix=deployed)["Schedules"] == []


@contextmanager
def offline_packaging() -> Iterator[pytest.MonkeyPatch]:
    """pip, as Chalice runs it to package an app, installs from the wheelhouse only (tests run offline)."""
    assert WHEELHOUSE.is_dir(), f"{WHEELHOUSE} is missing: run `make test`, which fills it"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PIP_NO_INDEX", "1")
        env.setenv("PIP_FIND_LINKS", str(WHEELHOUSE))
        yield env


def analyst_grants(cloud: LocalCloud, database: str, table: str) -> list[str]:
    """What Lake Formation lets the analyst role do with the table itself (a grant on all of its database's tables
    aside). Filtered here: moto's filter by table name fails on a database that also has such a grant."""
    found = aws.client("lakeformation").list_permissions()["PrincipalResourcePermissions"]
    return sorted({p for grant in found for p in grant["Permissions"]
                   if grant["Principal"]["DataLakePrincipalIdentifier"] == cloud.outputs["AnalystRoleArn"]
                   and grant["Resource"].get("Table", {}).get("DatabaseName") == database
                   and grant["Resource"]["Table"].get("Name") == table})
