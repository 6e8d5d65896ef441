"""Crashes: a function or Glue job of the local cloud dies right after an AWS call of its own took effect.

A Lambda that times out or runs out of memory, or a Glue worker that is lost, stops between two calls: what it
wrote stays written, what it meant to record next never is. ``cloud.crashes.add("amci-datalake-local-on_stage_a",
"S3.PutObject")`` lets that call succeed and then ends the invocation. The crash is a ``BaseException``, so no
``except Exception`` in the code under test can swallow it; at the runtime's boundary (``local/lambdas.py``,
``local/glue.py``) it becomes the invocation's (``FunctionCrashed``) or the job run's failure, and the event source
retries as on AWS. Unlike a killed process, ``finally`` blocks on the way out still run.

Calls are matched by botocore's ``after-call`` event, for calls that succeeded, made on the thread running the
function (a worker thread of its own, such as s3transfer's for ``upload_file``, is not seen), by every client made
after :meth:`Crashes.install` (the cloud installs it before it builds its clients).
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore import handlers

_running: contextvars.ContextVar[str | None] = contextvars.ContextVar("amci_local_running", default=None)


class Crash(BaseException):
    """The process running a function or job died (not an ``Exception``: nothing inside may survive it)."""


class FunctionCrashed(RuntimeError):
    """What the runtime reports for an invocation that crashed (Lambda's ``Runtime.ExitError``)."""


@dataclass
class CrashRule:
    """Crash ``runtime`` (a function's or Glue job's name) after its successful call of ``operation``
    (``Service.Operation`` as botocore names it, e.g. ``SFN.StartExecution``) once ``after`` such calls went through,
    ``times`` times."""

    runtime: str
    operation: str
    after: int = 0
    times: int = 1
    seen: int = 0
    crashed: int = 0

    def hit(self, runtime: str, operation: str) -> bool:
        if runtime != self.runtime or operation != self.operation or self.crashed >= self.times:
            return False
        self.seen += 1
        if self.seen <= self.after:
            return False
        self.crashed += 1
        return True


class Crashes:
    """The crash rules of the local cloud; thread-safe."""

    def __init__(self) -> None:
        self.rules: list[CrashRule] = []
        self._lock = threading.Lock()

    def add(self, runtime: str, operation: str, after: int = 0, times: int = 1) -> CrashRule:
        rule = CrashRule(runtime, operation, after, times)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def install(self) -> None:
        if ("after-call", self._after_call) not in handlers.BUILTIN_HANDLERS:
            handlers.BUILTIN_HANDLERS.append(("after-call", self._after_call))

    def uninstall(self) -> None:
        self.clear()
        with contextlib.suppress(ValueError):
            handlers.BUILTIN_HANDLERS.remove(("after-call", self._after_call))

    def _after_call(self, model: Any, http_response: Any, **_: Any) -> None:
        runtime = _running.get()
        if runtime is None or http_response.status_code >= 300:  # botocore raises for these after this event
            return
        operation = f"{model.service_model.service_id.replace(' ', '')}.{model.name}"
        with self._lock:
            rule = next((r for r in self.rules if r.hit(runtime, operation)), None)
        if rule is not None:
            raise Crash(f"{runtime} crashed after {operation} (local cloud crash rule)")


@contextlib.contextmanager
def running(runtime: str) -> Iterator[None]:
    """Mark the block as ``runtime``'s (a function or job name), so crash rules can find it."""
    token = _running.set(runtime)
    try:
        yield
    finally:
        _running.reset(token)
