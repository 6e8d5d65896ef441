"""Every request the sandbox answered, for tests to inspect (``sandbox.requests.where(api=..., operation=...)``).

Credentials are not kept: authorization headers and token-endpoint secrets are masked when recorded."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any

from shared.logs import redact


@dataclass(frozen=True)
class RecordedRequest:
    time: float
    api: str
    operation: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int


class RequestLog:
    def __init__(self) -> None:
        self._items: list[RecordedRequest] = []
        self._lock = threading.Lock()

    def append(self, request: RecordedRequest) -> None:
        request = replace(request, headers=redact(request.headers), body=redact(request.body))
        with self._lock:
            self._items.append(request)

    def where(self, api: str | None = None, operation: str | None = None,
              status: int | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._items if (api is None or r.api == api)
                    and (operation is None or r.operation == operation) and (status is None or r.status == status)]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
