"""The workflow manager's concurrency gate, on the local cloud's DynamoDB: never more than the limit at once,
first come first served, each ticket given back once."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from local.cloud import LocalCloud
from shared import aws
from tests.support import app_module


@pytest.fixture
def gate(cloud: LocalCloud) -> Any:
    module = app_module("workflow/chalicelib/gate.py")
    return module.ConcurrencyGate(aws.client("dynamodb"), cloud.outputs["WorkflowGateTable"])


def _instance() -> str:
    return f"amc{uuid.uuid4().hex[:8]}"


def test_concurrent_tickets_are_numbered_without_gaps_and_kept_per_key(gate: Any) -> None:
    instance = _instance()
    keys = [f"request-{n}" for n in range(40)]
    with ThreadPoolExecutor(8) as pool:
        tickets = list(pool.map(lambda key: gate.ticket(instance, key), keys + keys))  # every key asked twice

    assert sorted(set(tickets)) == list(range(1, 41))
    assert tickets[:40] == tickets[40:]  # the same key keeps its ticket


def test_the_first_tickets_are_admitted_and_each_release_admits_the_next(gate: Any) -> None:
    instance = _instance()
    tickets = [gate.ticket(instance, f"r{n}") for n in range(12)]

    admitted = [gate.admitted(instance, t, limit=10) for t in tickets]
    released_once, released_again = gate.release(instance, "r0"), gate.release(instance, "r0")

    assert admitted == [True] * 10 + [False, False]
    assert (released_once, released_again) == (True, False)
    assert gate.admitted(instance, tickets[10], limit=10) and not gate.admitted(instance, tickets[11], limit=10)
    assert gate.release(instance, "never-drawn") is False


def test_fifty_executions_with_a_limit_of_ten_never_run_more_than_ten_at_once(gate: Any) -> None:
    instance, lock = _instance(), threading.Lock()
    running, peak, finished, started = [0], [0], [0], []

    def execution(n: int) -> None:
        ticket = gate.ticket(instance, f"e{n}")
        while not gate.admitted(instance, ticket, limit=10):
            time.sleep(0.05)
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            started.append((ticket, finished[0]))
        time.sleep(0.05)
        with lock:
            running[0] -= 1
            finished[0] += 1
        assert gate.release(instance, f"e{n}")

    with ThreadPoolExecutor(50) as pool:
        list(pool.map(execution, range(50)))

    assert peak[0] <= 10 and sorted(t for t, _ in started) == list(range(1, 51))
    assert all(ticket <= done + 10 for ticket, done in started)  # in order: ticket t waits for t - 10 to finish
