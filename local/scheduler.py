"""Firing schedules, which moto never does: the apps' ``@app.schedule`` functions, and EventBridge Scheduler
schedules with SQS targets (the way the platform schedules requests), read from the emulated account.

Missed fire times are not made up for: after a pause, a schedule fires once and carries on from now, as
EventBridge does.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from shared.schedules import Schedule, ScheduleError, parse

log = logging.getLogger(__name__)
Fire = Callable[[datetime], None]
Source = Callable[[], dict[str, tuple[Schedule, Fire]]]
GRACE = timedelta(seconds=60)  # an at() schedule created slightly in the past still fires


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ScaledClock:
    """A clock that runs ``speed`` times faster than real time, so a ``rate(1 minute)`` fires in a test."""

    def __init__(self, speed: float, start: datetime | None = None) -> None:
        self.speed = speed
        self._start = start or datetime.now(UTC)
        self._real_start = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._real_start) * self.speed)


@dataclass
class Job:
    schedule: Schedule
    fire: Fire
    next_time: datetime | None


class Scheduler:
    """A thread that fires due jobs; jobs come from the apps (fixed) and from Scheduler schedules (re-read)."""

    def __init__(self, clock: Clock, stop: threading.Event, tick_s: float = 0.2, refresh_s: float = 1.0) -> None:
        self.clock = clock
        self.jobs: dict[str, Job] = {}
        self._stop = stop
        self._tick_s = tick_s
        self._refresh_s = refresh_s
        self._sources: list[tuple[str, Source]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)

    def add(self, key: str, schedule: Schedule, fire: Fire) -> None:
        with self._lock:
            self.jobs[key] = Job(schedule, fire, schedule.next_after(self.clock.now() - GRACE))

    def add_source(self, prefix: str, source: Source) -> None:
        """``source`` returns the jobs it wants now, keyed ``{prefix}...``; jobs it stops returning are dropped."""
        self._sources.append((prefix, source))

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def run_due(self) -> int:
        """Fire every job that is due; returns how many fired."""
        now = self.clock.now()
        with self._lock:
            due = [job for job in self.jobs.values() if job.next_time is not None and job.next_time <= now]
        for job in due:
            fire_time = job.next_time
            job.next_time = job.schedule.next_after(max(now, fire_time))
            try:
                job.fire(fire_time)
            except Exception:
                log.exception("scheduled target failed", extra={"fire_time": fire_time.isoformat()})
        return len(due)

    def _run(self) -> None:
        last_refresh = datetime.min.replace(tzinfo=UTC)
        while not self._stop.wait(self._tick_s):
            if (datetime.now(UTC) - last_refresh).total_seconds() >= self._refresh_s:
                self._refresh()
                last_refresh = datetime.now(UTC)
            self.run_due()

    def _refresh(self) -> None:
        for prefix, source in self._sources:
            try:
                wanted = source()
            except Exception:
                log.exception("could not read schedules", extra={"source": prefix})
                continue
            with self._lock:
                for key in [k for k in self.jobs if k.startswith(prefix) and k not in wanted]:
                    del self.jobs[key]
            for key, (schedule, fire) in wanted.items():
                if key not in self.jobs:
                    self.add(key, schedule, fire)


def scheduled_event(rule_arn: str, fire_time: datetime, region: str, account_id: str) -> dict[str, Any]:
    """The CloudWatch "Scheduled Event" a rule delivers to a function."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": account_id, "time": fire_time.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": region,
            "resources": [rule_arn], "detail": {}}


class SchedulerSchedules:
    """EventBridge Scheduler schedules of the emulated account, as jobs that send their input to SQS targets."""

    PREFIX = "scheduler:"

    def __init__(self, scheduler_client: Any, sqs: Any) -> None:
        self._scheduler = scheduler_client
        self._sqs = sqs
        self._warned: set[str] = set()

    def __call__(self) -> dict[str, tuple[Schedule, Fire]]:
        jobs = {}
        for summary in self._summaries():
            key = f"{self.PREFIX}{summary['GroupName']}/{summary['Name']}@{summary['LastModificationDate'].isoformat()}"
            if summary.get("State") != "ENABLED":
                continue
            detail = self._scheduler.get_schedule(GroupName=summary["GroupName"], Name=summary["Name"])
            job = self._job(detail)
            if job is not None:
                jobs[key] = job
        return jobs

    def _summaries(self) -> list[dict[str, Any]]:
        summaries, token = [], None
        while True:
            page = self._scheduler.list_schedules(**({"NextToken": token} if token else {}))
            summaries.extend(page.get("Schedules", []))
            token = page.get("NextToken")
            if not token:
                return summaries

    def _job(self, detail: dict[str, Any]) -> tuple[Schedule, Fire] | None:
        name, target = f"{detail['GroupName']}/{detail['Name']}", detail["Target"]
        if ":sqs:" not in target["Arn"]:
            self._warn(name, f"target {target['Arn']} is not an SQS queue; the local cloud only delivers to SQS")
            return None
        try:
            schedule = parse(detail["ScheduleExpression"], detail.get("ScheduleExpressionTimezone") or "UTC",
                             anchor=detail.get("StartDate") or detail.get("CreationDate"))
        except ScheduleError as exc:
            self._warn(name, str(exc))
            return None
        return _Bounded(schedule, detail.get("EndDate")), lambda fire_time: self._deliver(detail, fire_time)

    def _deliver(self, detail: dict[str, Any], fire_time: datetime) -> None:
        target = detail["Target"]
        queue_name = target["Arn"].rsplit(":", 1)[1]
        url = self._sqs.get_queue_url(QueueName=queue_name, QueueOwnerAWSAccountId=target["Arn"].split(":")[4])
        args: dict[str, Any] = {"QueueUrl": url["QueueUrl"],
                                "MessageBody": _with_context(target.get("Input") or json.dumps({}), detail, fire_time)}
        if "MessageGroupId" in target.get("SqsParameters", {}):
            args["MessageGroupId"] = target["SqsParameters"]["MessageGroupId"]
        self._sqs.send_message(**args)
        log.info("schedule fired", extra={"schedule": f"{detail['GroupName']}/{detail['Name']}"})
        if detail["ScheduleExpression"].startswith("at(") and detail.get("ActionAfterCompletion") == "DELETE":
            self._scheduler.delete_schedule(GroupName=detail["GroupName"], Name=detail["Name"])

    def _warn(self, name: str, message: str) -> None:
        if name not in self._warned:
            self._warned.add(name)
            log.warning("schedule not run locally", extra={"schedule": name, "reason": message})


def _with_context(text: str, detail: dict[str, Any], fire_time: datetime) -> str:
    """The input with EventBridge Scheduler's context attributes filled in, as Scheduler does for templated
    targets."""
    context = {"<aws.scheduler.schedule-arn>": detail.get("Arn", ""),
               "<aws.scheduler.scheduled-time>": fire_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "<aws.scheduler.execution-id>": str(uuid.uuid4()), "<aws.scheduler.attempt-number>": "1"}
    for placeholder, value in context.items():
        text = text.replace(placeholder, value)
    return text


@dataclass(frozen=True)
class _Bounded:
    schedule: Schedule
    end: datetime | None

    def next_after(self, moment: datetime) -> datetime | None:
        following = self.schedule.next_after(moment)
        return None if following is None or (self.end and following > self.end) else following
