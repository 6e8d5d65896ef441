"""Talking to a running platform the way other systems do: requests on a service's request queue, answers on
the status topic, records read from its tables. Everything is found from the platform stack's outputs: the local
cloud writes them to ``.local/endpoints.json``; on AWS they are read from stack ``amci-<stage>`` with a profile and
region of the caller's choosing. Amazon's APIs are Amazon's own hosts, or for the local cloud its sandbox's."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3

from amci.inbox import Inbox, Notification
from shared.amazon.regions import HOSTS, Endpoints
from shared.aws import error_code
from shared.config import SERVICES, output_prefix

ENDPOINTS_FILE = Path(__file__).resolve().parent.parent / ".local" / "endpoints.json"  # where `amci local up` writes


def local_endpoints_file(path: str | Path | None = None) -> Path:
    """The local cloud's endpoints file: ``path``, else ``$AMCI_ENDPOINTS``, else ``.local/endpoints.json``."""
    return Path(path or os.environ.get("AMCI_ENDPOINTS") or ENDPOINTS_FILE)


class PlatformNotFound(RuntimeError):
    """No running platform to talk to (the local cloud is not up, or no stack of that stage)."""


def stack_name(stage: str) -> str:
    return f"amci-{stage}"


@dataclass(frozen=True)
class Platform:
    session: Any
    outputs: dict[str, str]  # the platform stack's outputs
    endpoint_url: str | None = None  # the local cloud's single AWS endpoint
    amazon: dict[str, str] = field(default_factory=dict)  # Amazon hosts replaced (the local cloud's sandbox)

    @classmethod
    def local(cls, endpoints_file: str | Path | None = None) -> Platform:
        """The local cloud whose endpoints ``amci local up`` wrote to ``endpoints_file`` (see
        :func:`local_endpoints_file`)."""
        endpoints_file = local_endpoints_file(endpoints_file)
        if not endpoints_file.exists():
            raise PlatformNotFound(f"{endpoints_file} not found: start the local cloud with `amci local up` "
                                   "(or name a deployed stage with --stage)")
        return cls.from_endpoints(json.loads(endpoints_file.read_text()))

    @classmethod
    def from_endpoints(cls, endpoints: dict[str, Any]) -> Platform:
        """The local cloud described by ``endpoints`` (what ``endpoints.json`` holds)."""
        session = boto3.session.Session(aws_access_key_id=endpoints["credentials"]["aws_access_key_id"],
                                        aws_secret_access_key=endpoints["credentials"]["aws_secret_access_key"],
                                        region_name=endpoints["region"])
        sandbox = {api: url for api, url in endpoints.get("sandbox", {}).items() if api in HOSTS}
        return cls(session, endpoints["outputs"], endpoints["aws_endpoint_url"], sandbox)

    @classmethod
    def aws(cls, stage: str, profile: str | None = None, region: str | None = None) -> Platform:
        """The platform deployed as stage ``stage`` in the account and region of ``profile``/``region`` (or the
        environment's)."""
        session = boto3.session.Session(profile_name=profile, region_name=region)
        cloudformation = session.client("cloudformation")
        try:
            stack = cloudformation.describe_stacks(StackName=stack_name(stage))["Stacks"][0]
        except cloudformation.exceptions.ClientError as exc:
            if error_code(exc) != "ValidationError":  # what describe_stacks says of a stack that does not exist
                raise
            raise PlatformNotFound(f"no stack {stack_name(stage)} in {session.region_name}: deploy it with "
                                   f"`amci deploy --stage {stage}`, or check --profile/--region ({exc})") from None
        return cls(session, {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])})

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)

    def resource(self, service: str) -> Any:
        return self.session.resource(service, endpoint_url=self.endpoint_url)

    @property
    def amazon_endpoints(self) -> Endpoints:
        """Where Amazon's APIs and consent pages are for this platform."""
        return Endpoints(self.amazon)

    def table(self, output: str) -> Any:
        """The DynamoDB table named by stack output ``output`` (e.g. ``WorkflowRecordsTable``)."""
        return self.resource("dynamodb").Table(self.outputs[output])

    @cached_property
    def request_queues(self) -> dict[str, str]:
        """Each service's request queue URL."""
        return {service: self.outputs[f"{output_prefix(service)}RequestQueueUrl"] for service in SERVICES}

    def request_dlq_url(self, service: str) -> str:
        """The URL of ``service``'s request dead-letter queue."""
        name = self.outputs[f"{output_prefix(service)}RequestDlq"]
        return self.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]

    @property
    def buckets(self) -> dict[str, str]:
        return {name: self.outputs[f"{name.title()}Bucket"] for name in ("raw", "reports", "stage")}

    def send(self, service: str, request: dict[str, Any]) -> str:
        """Put ``request`` on the service's queue; returns its ``requestId`` (given one if it had none)."""
        request = {"requestId": uuid.uuid4().hex, **request}
        self.client("sqs").send_message(QueueUrl=self.request_queues[service], MessageBody=json.dumps(request))
        return str(request["requestId"])

    def ask(self, service: str, request: dict[str, Any], timeout_s: float,
            waiting: Callable[[float], None] | None = None) -> Notification:
        """Send ``request`` and wait for its outcome on the status topic; ``waiting(seconds so far)`` is called
        every couple of seconds meanwhile (progress)."""
        with self.inbox() as inbox:
            request_id = self.send(service, request)
            return wait_for(inbox, lambda n: n.body.get("request_id") == request_id, timeout_s, waiting)

    @contextmanager
    def inbox(self) -> Iterator[Inbox]:
        """A queue subscribed to the status topic for as long as the block runs."""
        sqs, sns = self.client("sqs"), self.client("sns")
        inbox = Inbox(sqs, sns, self.outputs["StatusTopicArn"], name=f"amci-cli-{uuid.uuid4().hex[:12]}")
        try:
            yield inbox
        finally:
            inbox.close(sns)


def wait_for(inbox: Inbox, matches: Callable[[Notification], bool], timeout_s: float,
             waiting: Callable[[float], None] | None = None) -> Notification:
    """The first notification that ``matches``, calling ``waiting(seconds so far)`` between looks."""
    started = time.monotonic()
    while True:
        elapsed = time.monotonic() - started
        try:
            return inbox.wait_for(matches, timeout_s=min(2.0, max(timeout_s - elapsed, 0)))
        except TimeoutError:
            if time.monotonic() - started >= timeout_s:
                raise
        if waiting is not None:
            waiting(time.monotonic() - started)
