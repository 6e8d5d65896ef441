"""boto3 clients, built lazily once per process and shared by threads.

Endpoints follow botocore's own overrides (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_<SERVICE>``), which is
how processes outside the local cloud reach its emulated account.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore.config import Config

from shared import USER_AGENT

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, user_agent_extra=USER_AGENT)
_clients: dict[tuple[str, str | None], Any] = {}
_lock = threading.Lock()
_per_thread = threading.local()
_generation = 0  # bumped by reset_clients, so every thread rebuilds its resources


def client(service: str, region: str | None = None) -> Any:
    """The process-wide client for ``service`` (boto3 sessions are not thread-safe; clients are)."""
    return _cached(service, region)


def table(name: str) -> Any:
    """A DynamoDB ``Table`` for this thread (boto3 resources, unlike clients, must not be shared by threads)."""
    if getattr(_per_thread, "generation", None) != _generation:
        _per_thread.dynamodb = boto3.session.Session().resource("dynamodb", config=_CONFIG)
        _per_thread.generation = _generation
    return _per_thread.dynamodb.Table(name)


def _cached(service: str, region: str | None) -> Any:
    with _lock:
        if (service, region) not in _clients:
            _clients[service, region] = boto3.session.Session().client(service, region_name=region, config=_CONFIG)
        return _clients[service, region]


def reset_clients() -> None:
    """Forget cached clients, e.g. after the environment they were built from changed."""
    global _generation
    with _lock:
        _clients.clear()
        _generation += 1


def items(read: Callable[..., dict[str, Any]], **request: Any) -> Iterator[dict[str, Any]]:
    """Every item of a DynamoDB ``query`` or ``scan`` (``read``, e.g. ``table.query``), page by page as they are
    consumed."""
    for page in _pages(read, request):
        yield from page.get("Items", [])


def count(read: Callable[..., dict[str, Any]], **request: Any) -> int:
    """How many items a DynamoDB ``query`` or ``scan`` matches, without reading them."""
    return sum(int(page["Count"]) for page in _pages(read, {**request, "Select": "COUNT"}))


def _pages(read: Callable[..., dict[str, Any]], request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    while True:
        page = read(**request)
        yield page
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def error_code(exc: Exception) -> str:
    """The AWS error code of a botocore ClientError (empty for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
