"""Fault injection: rules that make the sandbox answer an operation with an error, slowly, or with a forced
outcome, for a number of calls or a length of time. Set them from Python (``sandbox.faults.add(...)``) or over
HTTP (``POST /_sandbox/faults``).

An outcome is one the API itself can end the created thing with: each API declares them (:meth:`Faults.produces`),
and a rule asking for another is refused when it is added, rather than turned into something else."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class FaultRule:
    """What to do to calls of ``api``/``operation`` (``*`` matches any).

    ``status``: answer with this HTTP status and the API's own error body (429 with ``retry_after`` seconds in a
    ``Retry-After`` header when given). ``delay_s``: wait this long before answering (slow responses, timeouts).
    ``outcome``: what the created resource ends with, among those its API declares (Ads createReport: FAILED; SP
    createReport: DONE, FATAL, CANCELLED; AMC createWorkflowExecution: FAILED, REJECTED).
    ``times``: apply to this many calls (None: every call). ``seconds``: apply for this long (an outage).
    """

    api: str
    operation: str = "*"
    status: int | None = None
    retry_after: float | None = None
    delay_s: float = 0.0
    outcome: str | None = None
    message: str | None = None
    times: int | None = None
    seconds: float | None = None
    created: float = field(default_factory=time.monotonic)

    def matches(self, api: str, operation: str) -> bool:
        return self.api in (api, "*") and self.operation in (operation, "*") and self.active()

    def active(self) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        return self.seconds is None or time.monotonic() - self.created < self.seconds


class Faults:
    """The active rules; thread-safe, first matching rule wins."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._outcomes: dict[tuple[str, str], tuple[str, ...]] = {}  # (api, operation) -> what it can end with
        self._lock = threading.Lock()

    def produces(self, api: str, operation: str, outcomes: tuple[str, ...]) -> None:
        """Declare the outcomes a fault may force on what ``api``'s ``operation`` creates."""
        self._outcomes[(api, operation)] = outcomes

    def add(self, api: str, operation: str = "*", **options: Any) -> FaultRule:
        """Add a rule; ValueError naming ``outcome`` when the operation cannot end with it."""
        rule = FaultRule(api=api, operation=operation, **options)
        if rule.outcome is not None:
            self._check_outcome(api, operation, rule.outcome)
        with self._lock:
            self._rules.append(rule)
        return rule

    def outage(self, api: str, seconds: float, status: int = 503) -> FaultRule:
        """Every call to ``api`` fails with ``status`` for ``seconds``."""
        return self.add(api, status=status, seconds=seconds)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, api: str, operation: str) -> FaultRule | None:
        """The rule that applies to this call, if any, counting the call against it (outcome rules excluded)."""
        return self._take(api, operation, lambda rule: rule.outcome is None)

    def take_outcome(self, api: str, operation: str) -> str | None:
        """The outcome forced on the resource this call creates, if a rule says so."""
        rule = self._take(api, operation, lambda rule: rule.outcome is not None)
        return rule.outcome if rule else None

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(rule) for rule in self._rules if rule.active()]

    def _check_outcome(self, api: str, operation: str, outcome: str) -> None:
        allowed = self._outcomes.get((api, operation))
        if allowed is None:
            known = "; ".join(f"{a} {o}" for a, o in self._outcomes)
            raise ValueError(f"outcome: {api} {operation} creates nothing a fault can end (outcomes apply to: {known})")
        if outcome not in allowed:
            raise ValueError(f"outcome: {api} {operation} can end {' or '.join(allowed)}, not {outcome!r}")

    def _take(self, api: str, operation: str, kind: Any) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if kind(rule) and rule.matches(api, operation):
                    if rule.times is not None:
                        rule.times -= 1
                    return rule
        return None
