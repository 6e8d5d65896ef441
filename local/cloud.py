"""The local cloud: the five services running against an emulated AWS account on one machine.

Pieces, in the order :meth:`LocalCloud.start` assembles them:

1. moto in-process (Step Functions executing ASL) and moto's HTTP endpoint on loopback for other processes;
2. the Lambda Invoke endpoint (``local/lambdas.py``) that Step Functions tasks reach;
3. the platform template provisioned into the account (``local/provision.py``);
4. the apps imported with their stage ``local`` environment, the stack's outputs recorded into it as the deploy
   records them into ``.chalice/config.json`` (``local/apps.py``);
5. event sources: an SQS poller per ``on_sqs_message`` (``local/sqs.py``), the scheduler for ``@app.schedule``
   and EventBridge Scheduler (``local/scheduler.py``); Glue job runs (``local/glue.py``) and Athena on DuckDB
   (``local/athena.py``); stacks created through the CloudFormation API made to apply what moto skips
   (``local/cloudformation.py``); DynamoDB, Lake Formation and Secrets Manager calls serialised, as moto needs
   (``local/serial.py``); Lake Formation's merged grants kept findable (``local/lakeformation.py``); crashes of
   functions and jobs at a chosen AWS call, for fault tests (``local/crashes.py``);
6. the Amazon API sandbox (``local/sandbox/``), which every function reaches through ``AMAZON_API_ENDPOINTS``,
   and whose demo credentials fill the default credential secret;
7. ``.local/endpoints.json`` for other processes.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalice.app import ScheduledEventConfig, SQSEventConfig

from amci.stages import SERVICES_DIR, output_variable
from local import environ
from local.apps import LoadedApp, load_app
from local.athena import AthenaOnDuckDB
from local.cloudformation import CloudFormationPatch
from local.crashes import Crashes
from local.glue import GlueJobRunner
from local.lakeformation import MergedGrants
from local.lambdas import InvokeEndpoint, Lambdas
from local.provision import INFRA, Stack, provision
from local.sandbox import Sandbox
from local.scheduler import Clock, Scheduler, SchedulerSchedules, SystemClock, scheduled_event
from local.serial import SerialCalls
from local.sqs import EventSource, SqsPoller
from shared import aws
from shared.amazon.regions import Endpoints
from shared.config import SERVICES, output_prefix
from shared.schedules import parse

log = logging.getLogger(__name__)
ROOT = SERVICES_DIR.parent
DEFAULT_PORT = int(os.environ.get("AMCI_LOCAL_PORT", "4747"))
STAGE = "local"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
# The sandbox finishes in seconds, not minutes; three hours of polling every 5 s stays within an execution's history.
LOCAL_PARAMETERS = {"ExecutionPollSeconds": 5, "ReportPollSeconds": 5, "ReportMaxHours": 3}
_MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "core": {"passthrough": {"services": ["lambda"]}}}
_AMAZON_APIS = ("lwa", "ads", "amc", "sp")
_NOISY_LOGGERS = ("werkzeug", "moto", "botocore", "urllib3", "moto.stepfunctions.parser")


@dataclass
class LocalCloud:
    """Start with :meth:`start` (or ``with LocalCloud() as cloud:``); everything runs in this process."""

    port: int = DEFAULT_PORT
    sandbox_port: int | None = None  # default: the port after ``port``; 0: any free port
    parameters: Mapping[str, Any] = field(default_factory=dict)
    services: Iterable[str] = SERVICES
    extra_apps: Iterable[Path] = ()
    glue_scripts: Iterable[Path] | None = None
    clock: Clock = field(default_factory=SystemClock)
    endpoints_file: Path | None = None
    verbose: bool = False  # let the emulator's and the web servers' own loggers through

    def __post_init__(self) -> None:
        self.lambdas = Lambdas()
        self.crashes = Crashes()
        self.apps: dict[str, LoadedApp] = {}
        self.pollers: list[SqsPoller] = []
        self.timings: dict[str, float] = {}
        self.stack: Stack | None = None
        self._stop = threading.Event()
        self._undo = ExitStack()

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> LocalCloud:
        """Start everything; on any failure, what was started is stopped again before the error propagates."""
        started = time.perf_counter()
        with ExitStack() as undo:
            self._start_emulator(undo)
            self._lap("emulator", started)
            self.stack = provision(INFRA / "platform.yaml", f"amci-{STAGE}", {
                "Stage": STAGE, "ArtifactBucket": f"amci-{STAGE}-artifacts", **LOCAL_PARAMETERS, **self.parameters},
                aws.client, REGION, ACCOUNT_ID)
            self._lap("provisioning", started)
            self._create_artifact_bucket()
            self._store_demo_credentials()
            self._load_apps()
            undo.callback(self._stop_event_sources)
            self._start_event_sources()
            self._lap("apps", started)
            if self.endpoints_file:
                self.endpoints_file.parent.mkdir(parents=True, exist_ok=True)
                self.endpoints_file.write_text(json.dumps(self.endpoints, indent=2) + "\n")
                undo.callback(self.endpoints_file.unlink, missing_ok=True)
            self._lap("ready", started)
            self._undo = undo.pop_all()
        return self

    def stop(self) -> None:
        self._undo.close()

    def _start_emulator(self, undo: ExitStack) -> None:
        from moto import mock_aws
        from moto.server import ThreadedMotoServer

        for name in _NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.DEBUG if self.verbose else logging.ERROR)
        saved, original = dict(os.environ), environ.install()
        undo.callback(_restore_environment, original, saved)
        self._isolate_environment()
        _require_free_port(self.port)
        sandbox_port = self._sandbox_port()  # worked out before a port 0 becomes the emulator's: 0 stays 0
        self.invoke_endpoint = InvokeEndpoint(self.lambdas)
        self.invoke_endpoint.start()
        undo.callback(self.invoke_endpoint.stop)
        os.environ["AWS_ENDPOINT_URL_LAMBDA"] = self.invoke_endpoint.url
        mock = mock_aws(config=_MOTO_CONFIG)
        mock.start()
        undo.callback(mock.stop)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=self.verbose)
        server.start()
        undo.callback(server.stop)
        self.port = server.get_host_and_port()[1]
        self.crashes.install()  # before the clients are built: each client takes the handlers installed then
        undo.callback(self.crashes.uninstall)
        aws.reset_clients()
        undo.callback(aws.reset_clients)
        _require_free_port(sandbox_port)
        self.sandbox = Sandbox(port=sandbox_port, s3=lambda: aws.client("s3")).start()
        undo.callback(self.sandbox.stop)
        os.environ[Endpoints.VARIABLE] = json.dumps({api: self.sandbox.endpoints[api] for api in _AMAZON_APIS})

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what other code uses --------------------------------------------------------------------------------

    @property
    def aws_endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def outputs(self) -> dict[str, str]:
        assert self.stack is not None, "the local cloud is not started"
        return self.stack.outputs

    def request_queue_url(self, service: str) -> str:
        return self.outputs[f"{output_prefix(service)}RequestQueueUrl"]

    def request_dlq_name(self, service: str) -> str:
        """The name of ``service``'s request dead-letter queue."""
        return self.outputs[f"{output_prefix(service)}RequestDlq"]

    @property
    def endpoints(self) -> dict[str, Any]:
        """What another process needs to use this cloud (written to ``.local/endpoints.json``)."""
        return {
            "aws_endpoint_url": self.aws_endpoint_url,
            "region": REGION,
            "account_id": ACCOUNT_ID,
            "stage": STAGE,
            "request_queues": {service: self.request_queue_url(service) for service in SERVICES},
            "status_topic_arn": self.outputs["StatusTopicArn"],
            "buckets": {name: self.outputs[f"{name.title()}Bucket"] for name in ("raw", "reports", "stage")},
            "lambda_endpoint_url": self.invoke_endpoint.url,
            "sandbox": self.sandbox.endpoints,
            "credentials": {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
            "outputs": dict(self.outputs),  # the platform stack's outputs, as a deploy records them
        }

    # -- assembly --------------------------------------------------------------------------------------------

    def _sandbox_port(self) -> int:
        if self.sandbox_port is not None:
            return self.sandbox_port
        return 0 if self.port == 0 else self.port + 1

    def _create_artifact_bucket(self) -> None:
        """The deploy's artifact bucket (state machine definitions, tenants' bucket-owner templates)."""
        aws.client("s3").create_bucket(Bucket=self.outputs["ArtifactBucket"])

    def _store_demo_credentials(self) -> None:
        """The default credential set is the sandbox's demo app, so every service can call Amazon at once."""
        demo = self.sandbox.credentials
        secret = {key: demo[key] for key in ("client_id", "client_secret", "refresh_token")}
        aws.client("secretsmanager").put_secret_value(SecretId=f"amci/{STAGE}/auth/default",
                                                      SecretString=json.dumps(secret))

    def _isolate_environment(self) -> None:
        """This process talks to the emulator in-process: drop endpoint overrides and real credentials."""
        for key in [k for k in os.environ if k.startswith(("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION"))]:
            del os.environ[key]
        os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AMCI_LOCAL": "1"})

    def deploy_app(self, project_dir: Path, start: bool = True) -> LoadedApp:
        """Load a Chalice app and wire its event sources, as ``chalice deploy`` would; also for apps added later.

        ``start=False`` leaves its pollers to :meth:`_start_event_sources`, so that no handler runs while the next
        app is still being imported (``local/apps.py`` swaps ``sys.path`` and ``sys.modules`` meanwhile).
        """
        recorded = {output_variable(name): value for name, value in self.outputs.items()}
        loaded = load_app(project_dir, STAGE, recorded)
        self.apps[loaded.service] = loaded
        for function in loaded.functions():
            missing = sorted(key for key, value in function.environment.items() if value == "")
            if missing:
                raise RuntimeError(f"{function.name}: {', '.join(missing)} empty in stage {STAGE} and no stack "
                                   "output fills them")
            self.lambdas.deploy(function)
        for source in loaded.app.event_sources:
            function_name = loaded.function(source.name).name
            if isinstance(source, SQSEventConfig):
                poller = self._poller(aws.client("sqs"), source, function_name)
                self.pollers.append(poller)
                if start:
                    poller.start()
            elif isinstance(source, ScheduledEventConfig):
                self._schedule(source, function_name)
            else:
                raise RuntimeError(f"{function_name}: {type(source).__name__} is not supported by the local "
                                   "cloud; S3 events reach apps through EventBridge and SQS (DESIGN.md §3.4)")
        return loaded

    def _load_apps(self) -> None:
        self.scheduler = Scheduler(self.clock, self._stop)
        for project_dir in [SERVICES_DIR / service for service in self.services] + [Path(p) for p in self.extra_apps]:
            self.deploy_app(project_dir, start=False)

    def _start_event_sources(self) -> None:
        self.scheduler.add_source(SchedulerSchedules.PREFIX,
                                  SchedulerSchedules(aws.client("scheduler"), aws.client("sqs")))
        scripts = self.glue_scripts if self.glue_scripts is not None else sorted(SERVICES_DIR.glob("*/glue/*.py"))
        self.glue = GlueJobRunner(scripts)
        self.glue.install()
        self.athena = AthenaOnDuckDB(aws.client("glue"), self.aws_endpoint_url, REGION)
        self.athena.install()
        self.cloudformation = CloudFormationPatch()
        self.cloudformation.install()
        self.serial_calls = SerialCalls()
        self.serial_calls.install()
        self.merged_grants = MergedGrants()
        self.merged_grants.install()
        for poller in self.pollers:
            poller.start()
        self.scheduler.start()

    def _stop_event_sources(self) -> None:
        self._stop.set()
        for poller in self.pollers:
            poller.join(timeout=5)
        self.scheduler.join(timeout=5)
        self.glue.uninstall()
        self.athena.uninstall()
        self.cloudformation.uninstall()
        self.serial_calls.uninstall()
        self.merged_grants.uninstall()

    def _poller(self, sqs: Any, source: SQSEventConfig, function_name: str) -> SqsPoller:
        queue_name = source.queue or source.queue_arn.rsplit(":", 1)[1]
        url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        mapping = EventSource(function_name, url, arn, source.batch_size, source.maximum_batching_window_in_seconds)
        return SqsPoller(sqs, mapping, self.lambdas.invoke, REGION, self._stop)

    def _schedule(self, source: ScheduledEventConfig, function_name: str) -> None:
        expression = source.schedule_expression
        expression = expression if isinstance(expression, str) else expression.to_string()
        rule_arn = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{function_name}-event"

        def fire(fire_time: Any) -> None:
            self.lambdas.invoke(function_name, scheduled_event(rule_arn, fire_time, REGION, ACCOUNT_ID))

        self.scheduler.add(f"app:{function_name}", parse(expression, anchor=self.clock.now()), fire)

    def _lap(self, phase: str, started: float) -> None:
        self.timings[phase] = round(time.perf_counter() - started, 3)


def _require_free_port(port: int) -> None:
    """Fail clearly on a busy port (moto's server would wait for it forever)."""
    if port == 0:
        return
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise RuntimeError(f"port {port} is in use (another `amci local up`?): stop it, or pass --port") from None


def _restore_environment(original: Any, saved: dict[str, str]) -> None:
    environ.uninstall(original)
    os.environ.clear()
    os.environ.update(saved)

