"""``amci local up`` as a user runs it: in the foreground, endpoints written for other processes, clean Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from click.testing import Result

from amci.inbox import Inbox
from local.cloud import LocalCloud
from local.sandbox.faults import Faults
from shared import aws
from shared.config import SERVICES
from tests.support import answer, customer_details, onboard, queue_idle, send, wait_until

AMCI = Path(sys.executable).with_name("amci")
OUTCOME = {"requestId", "service", "status", "summary", "details"}  # what --json prints of every request


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalUp:
    """One ``amci local up`` process for this module's tests, stopped with Ctrl-C at the end."""

    process: subprocess.Popen
    port: int
    endpoints: dict
    endpoints_file: Path
    output: str = ""


@pytest.fixture(scope="module")
def local_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalUp]:
    port = _free_port()
    endpoints_file = tmp_path_factory.mktemp("local-up") / "endpoints.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = subprocess.Popen([str(AMCI), "local", "up", "--port", str(port), "--endpoints", str(endpoints_file)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        # Generous: on a busy 2-core machine (the other test worker running 50 executions) start-up is slow.
        endpoints = wait_until(lambda: process.poll() is not None or _endpoints_for(endpoints_file, port), 180)
        assert process.poll() is None, process.communicate()[0]
        yield LocalUp(process, port, endpoints, endpoints_file)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=30)


def test_local_up_serves_other_processes(local_up: LocalUp) -> None:
    endpoints = local_up.endpoints
    client = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                   region_name=endpoints["region"])
    sqs = client.client("sqs", endpoint_url=endpoints["aws_endpoint_url"])
    sns = client.client("sns", endpoint_url=endpoints["aws_endpoint_url"])
    inbox = sqs.create_queue(QueueName=f"cli-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=endpoints["status_topic_arn"], Protocol="sqs", Endpoint=inbox_arn)
    sqs.send_message(QueueUrl=endpoints["request_queues"]["ads_reporting"],
                     MessageBody=json.dumps({"requestType": "diagnose", "requestId": "from-cli-test"}))

    notes = wait_until(lambda: sqs.receive_message(QueueUrl=inbox, WaitTimeSeconds=1).get("Messages"),
                       timeout_s=60)
    status = json.loads(json.loads(notes[0]["Body"])["Message"])
    assert (status["service"], status["status"], status["request_id"]) == ("ads_reporting", "SUCCEEDED",
                                                                           "from-cli-test")
    assert set(endpoints["sandbox"]["credentials"]) == {"client_id", "client_secret", "refresh_token",
                                                        "amc_instance_id", "advertiser_id", "marketplace_id",
                                                        "profile_id", "sp_application_id", "selling_partner_id"}


def _amci(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The installed ``amci``, in the environment ``env`` (default: this process's), tables as wide as they need."""
    return subprocess.run([str(AMCI), *args], capture_output=True, text=True, timeout=180, check=False,
                          env={**(os.environ if env is None else env), "COLUMNS": "200"})


def test_tenant_commands_onboard_change_show_list_and_offboard(amci: Callable[..., Result], tmp_path: Path) -> None:
    # Two tenants, one added for people and one for scripts (--json); the updated one is then offboarded.
    changed, other = (f"cli-{uuid.uuid4().hex[:6]}" for _ in range(2))
    files = {name: _tenant_file(tmp_path, name) for name in (changed, other)}
    renamed = tmp_path / "renamed.json"
    renamed.write_text(json.dumps({**json.loads(files[changed].read_text())["customer_details"],
                                   "customer_name": "CLI Tenant Renamed"}))  # bare customer_details work too

    added = amci("tenant", "add", str(files[changed]))
    added_json = amci("tenant", "add", str(files[other]), "--json")
    updated = amci("tenant", "update", str(renamed), "--json")
    shown = amci("tenant", "get", changed, "--json")
    listed = amci("tenant", "list")
    listed_json = amci("tenant", "list", "--json")
    offboarded = amci("tenant", "offboard", changed, "--json")
    offboarded_text = amci("tenant", "offboard", changed)  # again: nothing left to remove
    missing = amci("tenant", "get", "no-such-tenant")
    offboard_missing = amci("tenant", "offboard", "no-such-tenant")
    not_json = amci("tenant", "add", __file__)

    assert added.exit_code == 0 and f"SUCCEEDED tenant {changed} onboarded" in added.output, added.output
    for result in (added_json, updated, listed_json, offboarded):
        assert result.exit_code == 0 and set(json.loads(result.output)) == OUTCOME, result.output
        assert json.loads(result.output)["service"] == "tenant"
    assert json.loads(added_json.output)["summary"].startswith(f"tenant {other} onboarded")
    assert json.loads(shown.output)["details"]["tenant"]["status"] == "ACTIVE"
    assert json.loads(shown.output)["details"]["tenant"]["customerName"] == "CLI Tenant Renamed"
    assert listed.exit_code == 0 and changed in listed.output and "NEW_BUCKET" in listed.output
    assert {changed, other} <= {t["customerId"] for t in json.loads(listed_json.output)["details"]["tenants"]}
    assert "offboarded" in json.loads(offboarded.output)["summary"]
    assert offboarded_text.exit_code == 0 and "offboarded" in offboarded_text.output, offboarded_text.output
    for refused in (missing, offboard_missing):
        assert refused.exit_code == 1 and "customer_id: expected an onboarded tenant" in refused.output, refused.output
    assert not_json.exit_code == 2 and "is not JSON" in not_json.output


def _tenant_file(folder: Path, customer_id: str) -> Path:
    """A tenant's details file, as the AWS Solution writes them (``{"customer_details": ...}``)."""
    path = folder / f"{customer_id}.json"
    path.write_text(json.dumps({"customer_details": customer_details(customer_id, customer_name="CLI Tenant")}))
    return path


def test_lake_commands_query_and_redrive(amci: Callable[..., Result]) -> None:
    shown = amci("lake", "query", "SELECT 1 AS one, 'x' AS letter")
    as_json = amci("lake", "query", "SELECT 1 AS one, NULL AS nothing", "--json")
    failed = amci("lake", "query", "SELECT * FROM no_such_table")
    redriven = amci("lake", "redrive", "--stage", "a", "--json")
    wrong_stage = amci("lake", "redrive", "--stage", "c")

    assert shown.exit_code == 0 and "letter" in shown.output and "1 rows" in shown.output, shown.output
    assert as_json.exit_code == 0 and json.loads(as_json.output) == [{"one": "1", "nothing": None}]
    assert failed.exit_code == 1 and "The query failed" in failed.output and "no_such_table" in failed.output
    assert redriven.exit_code == 0 and json.loads(redriven.output)["details"] == {"stage": "a", "redriven": 0}
    assert wrong_stage.exit_code == 2 and "'c' is not one of 'a', 'b'" in wrong_stage.output


def test_lake_commands_list_register_and_show_status(amci: Callable[..., Result], tmp_path: Path) -> None:
    team = f"cli{uuid.uuid4().hex[:6]}"
    dataset = tmp_path / "dataset.json"
    dataset.write_text(json.dumps({"team": team, "dataset": "weather", "stageA": "lake_transforms.weather:stage_a"}))

    registered = amci("lake", "register", f"@{dataset}", "--json")
    refused = amci("lake", "register", '{"team": "ops", "dataset": "none", "stageA": "lake_transforms.nowhere:a"}')
    not_json = amci("lake", "register", "{oops")
    listed = amci("lake", "datasets")
    listed_json = amci("lake", "datasets", "--json")
    shown = amci("lake", "status")
    shown_json = amci("lake", "status", "--json")

    assert registered.exit_code == 0 and set(json.loads(registered.output)) == OUTCOME, registered.output
    assert json.loads(registered.output)["status"] == "SUCCEEDED"
    assert refused.exit_code == 1 and "stageA: expected an entry point" in refused.output, refused.output
    assert not_json.exit_code == 2 and "DATASET" in not_json.output and "not JSON" in not_json.output
    assert listed.exit_code == 0 and f"{team}-weather" in listed.output, listed.output
    assert listed_json.exit_code == 0 and set(json.loads(listed_json.output)) == OUTCOME
    assert {"adtech-amc", f"{team}-weather"} <= {d["dataset"] for d in json.loads(listed_json.output)["details"][
        "datasets"]}
    assert shown.exit_code == 0 and f"{team}-weather" in shown.output and "none yet" in shown.output, shown.output
    by_dataset = {d["dataset"]: d for d in json.loads(shown_json.output)}
    assert by_dataset[f"{team}-weather"] == {"dataset": f"{team}-weather", "waiting": 0, "inRun": 0,
                                             "latestRun": None}
    assert all(set(d) == {"dataset", "waiting", "inRun", "latestRun"} for d in by_dataset.values())


@pytest.mark.parametrize("command", [("tenant", "list"), ("tenant", "offboard", "acme"), ("auth", "list"),
                                     ("sp", "reports"), ("redrive", "workflow"), ("lake", "datasets"),
                                     ("lake", "status"), ("status",)])
def test_commands_without_a_platform_at_the_endpoint_exit_2_saying_what_to_do(
        amci: Callable[..., Result], endpoints_file: Path, tmp_path: Path, command: tuple[str, ...]) -> None:
    dead = _endpoints_copy(endpoints_file, tmp_path / "endpoints.json", f"http://127.0.0.1:{_free_port()}")

    result = amci("--endpoints", str(dead), *command, "--json")

    assert result.exit_code == 2 and result.stdout == "", result.output
    assert "is `amci local up` running?" in result.stderr and "Traceback" not in result.stderr, result.output


def test_redrive_sends_requests_that_failed_back_and_keeps_rejected_ones(
        cloud: LocalCloud, inbox: Inbox, faults: Faults, amci: Callable[..., Result]) -> None:
    customer = onboard(cloud, inbox, "rd")
    outage = faults.add("amc", "createWorkflow", status=503, retry_after=0.1, times=1_000_000)
    failed = send(cloud, "workflow", {"customerId": customer, "workflowRequest": {
        "requestType": "createWorkflow", "workflowDefinition": {"workflowId": "redriven", "sqlQuery": "SELECT 1"}}})
    rejected = send(cloud, "workflow", {"customerId": customer, "workflowRequest": {"requestType": "renameWorkflow"}})
    errored, refused = answer(inbox, failed, 120), answer(inbox, rejected)
    wait_until(lambda: queue_idle(cloud.request_queue_url("workflow")))  # the failed request moved to the DLQ
    outage.times = 0  # the outage is over

    redriven = amci("redrive", "workflow", "--json")
    succeeded = inbox.wait_for(lambda n: n.body.get("request_id") == failed and n.attributes["status"] != "ERROR", 60)
    shown = amci("redrive", "workflow")

    assert (errored.attributes["status"], refused.attributes["status"]) == ("ERROR", "REJECTED")
    assert succeeded.attributes["status"] == "SUCCEEDED", succeeded.body
    assert redriven.exit_code == 0, redriven.output
    done = json.loads(redriven.output)
    assert done["redriven"] >= 1 and failed not in {m["requestId"] for m in done["kept"]}
    assert {"requestId": rejected, "reason": refused.body["summary"]} in done["kept"]
    assert shown.exit_code == 0 and "requests sent back" in shown.output and rejected in shown.output


def test_any_request_is_sent_and_answered(amci: Callable[..., Result], tmp_path: Path) -> None:
    body = tmp_path / "list.json"
    body.write_text(json.dumps({"requestType": "listDatasets"}))
    listed = amci("request", "datalake", f"@{body}")
    as_json = amci("request", "ads_reporting", '{"requestType": "listSchedules"}', "--json")
    rejected = amci("request", "workflow", '{"requestType": "listExecutions"}')
    not_json = amci("request", "tenant", "{not json")

    assert listed.exit_code == 0 and "datasets (" in listed.output and "adtech-amc" in listed.output, listed.output
    assert as_json.exit_code == 0 and json.loads(as_json.output)["details"] == {"schedules": []}
    assert rejected.exit_code == 1 and "customerId: expected a value" in rejected.output
    assert not_json.exit_code == 2 and "not JSON" in not_json.output


@pytest.mark.parametrize("service", SERVICES)
def test_diagnose_checks_a_service_end_to_end(amci: Callable[..., Result], service: str) -> None:
    checked = amci("diagnose", service, "--repeat", "2", "--interval", "0", "--json")

    assert checked.exit_code == 0 and set(json.loads(checked.output)) == OUTCOME, checked.output
    outcome = json.loads(checked.output)
    assert (outcome["service"], outcome["status"]) == (service, "SUCCEEDED")
    assert outcome["details"]["remaining"] == 0 and outcome["details"]["checked"] > 0  # twice, every resource


def test_diagnose_usage_errors_exit_2(amci: Callable[..., Result]) -> None:
    unknown = amci("diagnose", "billing")
    too_many = amci("diagnose", "tenant", "--repeat", "6")

    assert unknown.exit_code == 2 and "'billing' is not one of" in unknown.output
    assert too_many.exit_code == 2 and "--repeat" in too_many.output and "1<=x<=5" in too_many.output


def test_status_shows_queues_work_and_failures(local_up: LocalUp) -> None:
    at = ("--endpoints", str(local_up.endpoints_file))  # the installed command, as a user runs it
    client = boto3.client("sqs", endpoint_url=local_up.endpoints["aws_endpoint_url"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    dlq = client.get_queue_url(QueueName=local_up.endpoints["outputs"]["DatalakeStageBDlq"])["QueueUrl"]
    before = _amci(*at, "status", "--json")
    client.send_message(QueueUrl=dlq, MessageBody=json.dumps({"reason": "a test's dead letter"}))
    after = _amci(*at, "status", "--json")
    shown = _amci(*at, "status")

    found = json.loads(before.stdout)
    assert set(found) == {"queues", "executions", "reports", "failures", "recent", "troubled"}, before.stdout
    assert {q["queue"] for q in found["queues"]} >= {"amci-local-workflow-requests", "amci-local-datalake-stage-b-dlq",
                                                    local_up.endpoints["outputs"]["DatalakeEventsQueue"]}
    assert before.returncode == 0 and not found["troubled"]  # a fresh platform: nothing failed, no dead letter
    waiting = {name: {q["queue"]: q["waiting"] for q in json.loads(run.stdout)["queues"]} for name, run in (
        ("before", before), ("after", after))}
    assert (waiting["before"]["amci-local-datalake-stage-b-dlq"], waiting["after"]["amci-local-datalake-stage-b-dlq"]
            ) == (0, 1)
    assert after.returncode == 1  # something waits in a dead-letter queue
    assert shown.returncode == 1 and "Queues" in shown.stdout and "Latest failures" in shown.stdout
    client.purge_queue(QueueUrl=dlq)


def test_commands_say_what_to_do_without_a_running_platform(amci: Callable[..., Result], tmp_path: Path) -> None:
    result = amci("--endpoints", str(tmp_path / "none.json"), "tenant", "list")

    assert result.exit_code == 2 and "start the local cloud with `amci local up`" in result.output


class FakeAws(ThreadingHTTPServer):
    """An AWS endpoint whose Athena queries never finish and which refuses everything else: expired credentials.
    ``targets`` records what was asked (the X-Amz-Target of each request)."""

    targets: list[str]


class _FakeAwsHandler(BaseHTTPRequestHandler):
    server: FakeAws

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.headers.get("X-Amz-Target", "")
        self.server.targets.append(target)
        status, body = {
            "AmazonAthena.StartQueryExecution": (200, {"QueryExecutionId": "never-done"}),
            "AmazonAthena.GetQueryExecution": (200, {"QueryExecution": {"QueryExecutionId": "never-done",
                                                                        "Status": {"State": "RUNNING"}}}),
        }.get(target, (400, {"__type": "ExpiredToken", "message": "The security token included in the request is "
                                                                   "expired"}))
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_: object) -> None:
        pass  # quiet


@pytest.fixture
def fake_aws() -> Iterator[FakeAws]:
    server = FakeAws(("127.0.0.1", 0), _FakeAwsHandler)
    server.targets = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _endpoints_copy(endpoints_file: Path, to: Path, aws_endpoint_url: str | None = None,
                    **outputs: str) -> Path:
    """The local cloud's endpoints file with another AWS endpoint and/or other stack outputs."""
    endpoints = json.loads(endpoints_file.read_text())
    endpoints["aws_endpoint_url"] = aws_endpoint_url or endpoints["aws_endpoint_url"]
    endpoints["outputs"].update(outputs)
    to.write_text(json.dumps(endpoints))
    return to


@pytest.mark.parametrize(("case", "command", "advice", "asked"), [
    ("dead port", ("tenant", "list"), "is `amci local up` running? An endpoints file left by one that stopped", ""),
    ("missing queue", ("tenant", "list"), "AWS refused SendMessage", ""),
    ("expired", ("tenant", "list"), "The AWS credentials have expired (ExpiredToken)", "AmazonSQS.CreateQueue"),
    ("query never done", ("lake", "query", "SELECT 1", "--timeout", "1"), "No answer in time",
     "AmazonAthena.GetQueryExecution"),
])
def test_platform_errors_exit_2_with_advice_on_stderr_and_nothing_on_stdout(
        amci: Callable[..., Result], endpoints_file: Path, tmp_path: Path, fake_aws: FakeAws, case: str,
        command: tuple[str, ...], advice: str, asked: str) -> None:
    at = {"dead port": {"aws_endpoint_url": f"http://127.0.0.1:{_free_port()}"},
          "missing queue": {"TenantRequestQueueUrl": "http://127.0.0.1/123456789012/amci-local-no-such-queue"},
          "expired": {"aws_endpoint_url": f"http://127.0.0.1:{fake_aws.server_port}"},
          "query never done": {"aws_endpoint_url": f"http://127.0.0.1:{fake_aws.server_port}"}}[case]
    endpoints = _endpoints_copy(endpoints_file, tmp_path / "endpoints.json", **at)

    result = amci("--endpoints", str(endpoints), *command, "--json")

    assert result.exit_code == 2, result.output
    assert advice in result.stderr and result.stdout == "", result.output
    assert asked in fake_aws.targets if asked else not fake_aws.targets


def test_aws_credential_errors_say_to_check_the_profile(tmp_path: Path) -> None:
    config = tmp_path / "aws-config"
    config.write_text("[profile other]\nregion = us-east-1\n")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, "AWS_CONFIG_FILE": str(config),
           "AWS_SHARED_CREDENTIALS_FILE": str(config), "AWS_EC2_METADATA_DISABLED": "true"}

    no_profile = _amci("--stage", "prod", "--profile", "nosuch", "tenant", "list", "--json", env=env)
    no_credentials = _amci("--stage", "prod", "--profile", "other", "tenant", "list", "--json", env=env)

    for result in (no_profile, no_credentials):
        assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr, result.stderr
    assert "The config profile (nosuch) could not be found: check --profile" in no_profile.stderr
    assert "No AWS credentials: pass --profile" in no_credentials.stderr


def test_a_deployed_stage_is_reached_through_its_stack_outputs(cloud: LocalCloud, amci: Callable[..., Result],
                                                               tmp_path: Path) -> None:
    # A stack "amci-<stage>" whose outputs are the local platform's: what `amci deploy` leaves in an AWS account.
    stage = f"cli{uuid.uuid4().hex[:6]}"
    outputs = {name: {"Value": value} for name, value in cloud.outputs.items()}
    aws.client("cloudformation").create_stack(StackName=f"amci-{stage}", TemplateBody=json.dumps({
        "Resources": {"Marker": {"Type": "AWS::S3::Bucket"}}, "Outputs": outputs}))
    config = tmp_path / "aws-config"
    config.write_text("[profile operator]\nregion = us-east-1\n"
                      "aws_access_key_id = testing\naws_secret_access_key = testing\n")

    listed = amci("--stage", stage, "--profile", "operator", "request", "datalake", '{"requestType": "listDatasets"}',
                  "--json", env={"AWS_CONFIG_FILE": str(config)})
    missing = amci("--stage", "nosuchstage", "--region", "us-east-1", "tenant", "list")

    assert listed.exit_code == 0, listed.output
    assert {d["dataset"] for d in json.loads(listed.output)["details"]["datasets"]} >= {"adtech-amc"}
    assert missing.exit_code == 2 and "no stack amci-nosuchstage in us-east-1" in missing.output


def test_ctrl_c_stops_local_up_cleanly(local_up: LocalUp) -> None:
    # The module's last test: stop the process now and check how it went.
    local_up.process.send_signal(signal.SIGINT)
    local_up.output, _ = local_up.process.communicate(timeout=90)  # a hang guard, generous for a busy machine

    assert local_up.process.returncode == 0, local_up.output
    assert "Local cloud stopped." in local_up.output
    assert f"AWS_ENDPOINT_URL=http://127.0.0.1:{local_up.port}" in local_up.output
    assert "diagnose" not in local_up.output  # quiet by default: no per-request lines
    assert not local_up.endpoints_file.exists()


def _endpoints_for(endpoints_file: Path, port: int) -> dict | None:
    if not endpoints_file.exists():
        return None
    endpoints = json.loads(endpoints_file.read_text())
    return endpoints if endpoints["aws_endpoint_url"].endswith(f":{port}") else None


def test_stage_record_outputs_fills_each_apps_stage_from_the_stack(tmp_path: Path) -> None:
    from amci.stages import SERVICES_DIR, ensure_stage, record_outputs, stack_outputs

    services = tmp_path / "services"
    for config in SERVICES_DIR.glob("*/.chalice/config.json"):
        target = services / config.relative_to(SERVICES_DIR)
        target.parent.mkdir(parents=True)
        target.write_text(config.read_text())
    described = {"Stacks": [{"Outputs": [
        {"OutputKey": "StatusTopicArn", "OutputValue": "arn:aws:sns:eu-west-1:111122223333:amci-prod-status"},
        {"OutputKey": "TenantRequestQueue", "OutputValue": "amci-prod-tenant-requests"},
        {"OutputKey": "RawBucket", "OutputValue": "amci-prod-raw-111122223333-eu-west-1"}]}]}

    changed = record_outputs("tenant", "prod", stack_outputs(described), services)
    unchanged = record_outputs("tenant", "prod", stack_outputs(described), services)

    assert changed == {"STATUS_TOPIC_ARN": "arn:aws:sns:eu-west-1:111122223333:amci-prod-status",
                       "TENANT_REQUEST_QUEUE": "amci-prod-tenant-requests"}  # RAW_BUCKET: not a tenant variable
    assert unchanged == {}
    prod = json.loads((services / "tenant/.chalice/config.json").read_text())["stages"]["prod"]
    assert prod["environment_variables"]["TENANT_REQUEST_QUEUE"] == "amci-prod-tenant-requests"

    made, again = ensure_stage("tenant", "qa", services), ensure_stage("tenant", "qa", services)  # a new stage
    record_outputs("tenant", "qa", {"TenantRequestQueue": "amci-qa-tenant-requests"}, services)
    qa = json.loads((services / "tenant/.chalice/config.json").read_text())["stages"]["qa"]["environment_variables"]
    assert (made, again) == (True, False)
    assert qa["STAGE"] == "qa" and qa["TENANT_REQUEST_QUEUE"] == "amci-qa-tenant-requests"
    assert set(qa) == set(prod["environment_variables"])

