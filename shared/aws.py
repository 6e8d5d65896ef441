"""boto3 clients, built lazily once per process and shared by threads.

Endpoints follow botocore's own overrides (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_<SERVICE>``), which is
how processes outside the local cloud reach its emulated account.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

from shared import USER_AGENT

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, user_agent_extra=USER_AGENT)
_clients: dict[tuple[str, str, str | None], Any] = {}
_lock = threading.Lock()


def client(service: str, region: str | None = None) -> Any:
    """The process-wide client for ``service`` (boto3 sessions are not thread-safe; clients are)."""
    return _cached("client", service, region)


def table(name: str) -> Any:
    """A DynamoDB ``Table`` (the resource API converts Python values to DynamoDB's typed attributes)."""
    return _cached("resource", "dynamodb", None).Table(name)


def _cached(kind: str, service: str, region: str | None) -> Any:
    key = (kind, service, region)
    with _lock:
        if key not in _clients:
            session = boto3.session.Session()
            factory = session.client if kind == "client" else session.resource
            _clients[key] = factory(service, region_name=region, config=_CONFIG)
        return _clients[key]


def reset_clients() -> None:
    """Forget cached clients, e.g. after the environment they were built from changed."""
    with _lock:
        _clients.clear()


def error_code(exc: Exception) -> str:
    """The AWS error code of a botocore ClientError (empty for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
