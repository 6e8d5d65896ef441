"""Calls to some of moto's services made one at a time, as their backends need: they are not thread-safe.

DynamoDB: a transaction copies tables that other threads are writing ("dictionary changed size during
iteration"); the service itself serialises writes per item. Secrets Manager: a ``put_secret_value`` checks its
``ClientRequestToken`` and adds the version in two steps, so two writers of the same token could both succeed
where the service lets one through (the credential store's optimistic updates rely on that). Lake Formation: a
grant iterates the account's permission set while another grant adds to it ("Set changed size during iteration",
seen with twenty tenants onboarding at once). Serialising every call of these services keeps each one atomic, as
the service's would be.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.dynamodb.responses import DynamoHandler
from moto.lakeformation.responses import LakeFormationResponse
from moto.secretsmanager.responses import SecretsManagerResponse

_SERIALISED = (DynamoHandler, LakeFormationResponse, SecretsManagerResponse)


class SerialCalls:
    def __init__(self) -> None:
        self._originals = {handler: handler.call_action for handler in _SERIALISED}

    def install(self) -> None:
        for handler, original in self._originals.items():
            handler.call_action = _serialised(original, threading.RLock())

    def uninstall(self) -> None:
        for handler, original in self._originals.items():
            handler.call_action = original


def _serialised(original: Any, lock: threading.RLock) -> Any:
    def call_action(handler: Any) -> Any:
        with lock:
            return original(handler)

    return call_action
