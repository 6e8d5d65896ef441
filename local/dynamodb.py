"""DynamoDB calls made one at a time, as moto needs: its backend is not thread-safe (a transaction copies tables
that other threads are writing: "dictionary changed size during iteration"). DynamoDB itself serialises writes
per item; here every call is serialised, which keeps each one atomic as the service's would be."""

from __future__ import annotations

import threading
from typing import Any

from moto.dynamodb import responses


class SerialDynamoDb:
    def __init__(self) -> None:
        self._original = responses.DynamoHandler.call_action
        self._lock = threading.RLock()

    def install(self) -> None:
        original, lock = self._original, self._lock

        def call_action(handler: Any) -> Any:
            with lock:
                return original(handler)

        responses.DynamoHandler.call_action = call_action

    def uninstall(self) -> None:
        responses.DynamoHandler.call_action = self._original
