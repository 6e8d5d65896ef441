"""Talking to a running platform the way other systems do: requests on a service's request queue, answers on
the status topic. Reached through ``.local/endpoints.json`` (the local cloud); reaching an AWS account comes with the
deploy."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from local.inbox import Inbox, Notification


class PlatformNotFound(RuntimeError):
    """No running platform to talk to (e.g. the local cloud is not up)."""


@dataclass(frozen=True)
class Platform:
    request_queues: dict[str, str]
    status_topic_arn: str
    session: Any
    endpoint_url: str | None = None
    buckets: dict[str, str] = field(default_factory=dict)  # raw, reports, stage
    outputs: dict[str, str] = field(default_factory=dict)  # the platform stack's outputs

    @classmethod
    def local(cls, endpoints_file: Path) -> Platform:
        if not endpoints_file.exists():
            raise PlatformNotFound(f"{endpoints_file} not found: start the local cloud with `amci local up`")
        endpoints = json.loads(endpoints_file.read_text())
        session = boto3.session.Session(aws_access_key_id=endpoints["credentials"]["aws_access_key_id"],
                                        aws_secret_access_key=endpoints["credentials"]["aws_secret_access_key"],
                                        region_name=endpoints["region"])
        return cls(endpoints["request_queues"], endpoints["status_topic_arn"], session, endpoints["aws_endpoint_url"],
                   endpoints["buckets"], endpoints.get("outputs", {}))

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)

    def resource(self, service: str) -> Any:
        return self.session.resource(service, endpoint_url=self.endpoint_url)

    def send(self, service: str, request: dict[str, Any]) -> str:
        """Put ``request`` on the service's queue; returns its ``requestId`` (given one if it had none)."""
        request = {"requestId": uuid.uuid4().hex, **request}
        self.client("sqs").send_message(QueueUrl=self.request_queues[service], MessageBody=json.dumps(request))
        return str(request["requestId"])

    def ask(self, service: str, request: dict[str, Any], timeout_s: float) -> Notification:
        """Send ``request`` and wait for its outcome on the status topic."""
        with self.inbox() as inbox:
            request_id = self.send(service, request)
            return inbox.wait_for(lambda n: n.body.get("request_id") == request_id, timeout_s=timeout_s)

    @contextmanager
    def inbox(self) -> Iterator[Inbox]:
        """A queue subscribed to the status topic for as long as the block runs."""
        sqs, sns = self.client("sqs"), self.client("sns")
        inbox = Inbox(sqs, sns, self.status_topic_arn, name=f"amci-cli-{uuid.uuid4().hex[:12]}")
        try:
            yield inbox
        finally:
            inbox.close(sns)
