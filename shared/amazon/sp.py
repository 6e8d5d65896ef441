"""Selling Partner API, Reports 2021-06-30: create, follow, list and cancel reports, and fetch their documents.

Built on Amazon's SDK (``amzn-sp-api``), which sends the requests; this module adds what the SDK leaves out:

- tokens from our :class:`~shared.amazon.lwa.TokenProvider` (one refresh and a retry when SP-API answers 403);
- retries with backoff and jitter that honour ``Retry-After``, within a :class:`~shared.amazon.http.Deadline`;
  typed errors (``shared.amazon.errors``) instead of the SDK's ``ApiException``;
- client-side rate limiting: a token bucket per operation, shared by every client in the process
  (:data:`LIMITER`), or by every process through DynamoDB (:class:`TableRateLimiter`, for Lambda's many
  containers), at the documented rates unless configured otherwise, so that many concurrent calls queue here
  instead of drawing a storm of 429s; a turn past the deadline is :class:`RateLimited`, to come back later;
- :meth:`SpReportsClient.create_report` made safe to retry: after an ambiguous failure (a timeout, a 5xx) it looks
  for the report among the recent ones (``getReports`` with ``createdSince``) before creating another;
- :meth:`SpReportsClient.find_report`: the report an earlier attempt (a run that crashed after creating it) may
  have created, so that a resumed run follows it instead of requesting another;
- typed results and paging; the region of a call from its marketplaces when none is given;

The SDK is imported on first use, so services that never call SP-API do not pay for it, and tamed: its package
calls ``logging.basicConfig`` at import and its ``Configuration()`` adds a stderr handler to the ``spapi`` and
``urllib3`` loggers each time it is built (every deserialised model builds one); both are undone (see
:func:`_sdk`). urllib3's own retries are switched off: a hidden retry would escape the time budget.

Waiting for a report belongs in a Step Functions Wait state, not here: :meth:`SpReportsClient.get_report` answers
at once. Large documents are copied to S3 with :func:`shared.amazon.transfer.copy_to_s3`;
:meth:`SpReportsClient.read_document` is for small ones (a FATAL report's error document).
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from types import SimpleNamespace
from typing import Any, Protocol, TypeVar

from shared import USER_AGENT
from shared.amazon.errors import AmazonApiError, RateLimited, ServerError
from shared.amazon.http import AmazonHttp, Deadline, RetryPolicy, create_once, error_from
from shared.amazon.lwa import TokenProvider
from shared.amazon.regions import Endpoints, Region, marketplace_region

log = logging.getLogger(__name__)
API = "sp"
T = TypeVar("T")

# Each operation's usage plan: (rate in requests per second, burst), from the model's "Usage Plan" tables.
DOCUMENTED_LIMITS: Mapping[str, tuple[float, float]] = {
    "createReport": (0.0167, 15), "getReport": (2.0, 15), "getReports": (0.0222, 10),
    "cancelReport": (0.0222, 10), "getReportDocument": (0.0167, 15), "getReportSchedules": (0.0222, 10),
    "createReportSchedule": (0.0222, 10), "getReportSchedule": (0.0222, 10), "cancelReportSchedule": (0.0222, 10),
}
HEADROOM = 0.9  # the client keeps 90% of the rate and burst: jitter in transit must not turn a full bucket into a 429
CLOCK_SKEW = timedelta(minutes=2)  # how far our clock may run ahead of Amazon's when looking for a created report
SETTLE_S = 2.0  # after an ambiguous creation, how long the request may still be in progress on Amazon's side
POOL_SIZE = 100  # connections kept per host: concurrent callers beyond it would each open and drop one (and warn)


class ProcessingStatus(StrEnum):
    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    DONE = "DONE"
    CANCELLED = "CANCELLED"  # cancelled before processing, or automatically when there is no data
    FATAL = "FATAL"  # aborted; the report's document, if any, says why


FINISHED = frozenset({ProcessingStatus.DONE, ProcessingStatus.CANCELLED, ProcessingStatus.FATAL})


@dataclass(frozen=True)
class Report:
    report_id: str
    report_type: str
    processing_status: ProcessingStatus
    created_time: datetime
    marketplace_ids: tuple[str, ...] = ()
    data_start_time: datetime | None = None
    data_end_time: datetime | None = None
    processing_start_time: datetime | None = None
    processing_end_time: datetime | None = None
    report_document_id: str | None = None
    report_schedule_id: str | None = None

    @property
    def finished(self) -> bool:
        return self.processing_status in FINISHED


@dataclass(frozen=True)
class ReportDocument:
    report_document_id: str
    url: str  # pre-signed, valid for 5 minutes
    compression_algorithm: str | None = None  # "GZIP", or None when the file is not compressed


@dataclass(frozen=True)
class ReportPage:
    reports: tuple[Report, ...]
    next_token: str | None = None


@dataclass(frozen=True)
class ReportSpecification:
    """What ``createReport`` is asked for (the model's ``CreateReportSpecification``)."""

    report_type: str
    marketplace_ids: tuple[str, ...]
    data_start_time: datetime | None = None
    data_end_time: datetime | None = None
    report_options: Mapping[str, str] = field(default_factory=dict)

    def matches(self, report: Report) -> bool:
        """Whether ``report`` is what this specification creates (as far as a Report shows: not the options); never
        a report of one of Amazon's own schedules."""
        return (report.report_type == self.report_type and report.report_schedule_id is None
                and set(report.marketplace_ids) == set(self.marketplace_ids)
                and _same_time(self.data_start_time, report.data_start_time)
                and _same_time(self.data_end_time, report.data_end_time))




# -- client-side rate limiting ------------------------------------------------------------------------------------

def kept_burst(burst: float, headroom: float) -> float:
    """The burst the client allows itself: its share of Amazon's, one call at least."""
    return max(1.0, burst * headroom)


class TokenBucket:
    """``rate`` tokens a second up to ``burst``; a call takes one. Not thread-safe: its owner locks."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.updated = float(burst), now

    def reserve(self, now: float, max_wait: float = math.inf) -> float | None:
        """Take a token: the seconds until it is there (0: now), or None, taking nothing, if that exceeds
        ``max_wait``. Reserved tokens may be owed (negative), so waiting callers are served in order."""
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = now
        wait = max(0.0, (1 - self.tokens) / self.rate) if self.rate > 0 else (0.0 if self.tokens >= 1 else math.inf)
        if wait > max_wait:
            return None
        self.tokens -= 1
        return wait

    def wait(self, now: float) -> float:
        """Seconds until a token would be there, taking nothing."""
        tokens = min(self.burst, self.tokens + max(0.0, now - self.updated) * self.rate)
        return max(0.0, (1 - tokens) / self.rate) if self.rate > 0 else math.inf


class Limiter(Protocol):
    """Waits for an operation's turn under its rate limit (RateLimited when the turn is past the deadline)."""

    def acquire(self, operation: str, deadline: Deadline | None = None) -> float: ...


class RateLimiter:
    """A token bucket per operation, thread-safe. ``limits`` may be changed at any time (``limits["createReport"]
    = (rate, burst)``); a changed limit starts a full bucket. An operation without a limit is not limited."""

    def __init__(self, limits: Mapping[str, tuple[float, float]] = DOCUMENTED_LIMITS, headroom: float = HEADROOM,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.limits = dict(limits)
        self.headroom = headroom
        self._clock, self._sleep = clock, sleep
        self._buckets: dict[str, tuple[tuple[float, float], TokenBucket]] = {}
        self._lock = threading.Lock()

    def acquire(self, operation: str, deadline: Deadline | None = None) -> float:
        """Wait for a token of ``operation``; the seconds waited. OutOfTime if the deadline comes first."""
        with self._lock:
            limit = self.limits.get(operation)
            if limit is None:
                return 0.0
            bucket = self._bucket(operation, limit)
            max_wait = max(0.0, deadline.remaining() - 1.0) if deadline is not None else math.inf
            wait = bucket.reserve(self._clock(), max_wait)
        if wait is None:
            raise RateLimited(API, operation, bucket.wait(self._clock()))
        if wait > 0:
            self._sleep(wait)
        return wait

    def _bucket(self, operation: str, limit: tuple[float, float]) -> TokenBucket:
        found = self._buckets.get(operation)
        if found is None or found[0] != limit:
            found = (limit, TokenBucket(limit[0] * self.headroom, kept_burst(limit[1], self.headroom), self._clock()))
            self._buckets[operation] = found
        return found[1]


LIMITER = RateLimiter()  # every client in the process shares it, as they share the selling partner's quota


class TableRateLimiter:
    """The same limits shared by every process (every Lambda container) through one DynamoDB item per operation,
    by the generic cell rate algorithm: the item holds the theoretical arrival time ``tat`` of the next call, and
    each call moves it on by one interval with a single conditional update, so concurrent callers never overwrite
    each other and never loop. Calls within the burst go at once; the others wait their turn, or, when that is
    past the deadline, get RateLimited (their place given back) to come back later.

    ``table`` gives the DynamoDB Table (per thread); ``key`` is the item key's fixed part (its partition), and
    ``prefix`` starts the sort key ``recordId`` (``<prefix>#<operation>``). ``limits`` are read at each call (by
    default the process's: :data:`LIMITER`'s, so configuring one configures both)."""

    def __init__(self, table: Callable[[], Any], key: Mapping[str, str], prefix: str,
                 limits: Mapping[str, tuple[float, float]] | None = None, headroom: float = HEADROOM,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self._table, self._key, self._prefix = table, dict(key), prefix
        self.limits = LIMITER.limits if limits is None else limits
        self.headroom, self._clock, self._sleep = headroom, clock, sleep

    def acquire(self, operation: str, deadline: Deadline | None = None) -> float:
        """Wait for ``operation``'s turn; the seconds waited. RateLimited if the turn comes after the deadline."""
        limit = self.limits.get(operation)
        if limit is None:
            return 0.0
        interval = 1 / (limit[0] * self.headroom)
        tolerance = (kept_burst(limit[1], self.headroom) - 1) * interval  # how far ahead of time a call may go
        key = {**self._key, "recordId": f"{self._prefix}#{operation}"}
        wait = max(0.0, self._take_turn(key, interval) - tolerance - self._clock())
        if deadline is not None and wait > deadline.remaining() - 1.0:
            self._table().update_item(Key=key, UpdateExpression="ADD tat :back",
                                      ExpressionAttributeValues={":back": -_decimal(interval)})
            raise RateLimited(API, operation, wait)
        if wait > 0:
            self._sleep(wait)
        return wait

    def _take_turn(self, key: dict[str, str], interval: float) -> float:
        """Move ``tat`` on by one interval; the turn taken (the previous ``tat``, or now when it had passed)."""
        table = self._table()
        failed = table.meta.client.exceptions.ConditionalCheckFailedException
        while True:  # at most twice in a row: each branch's condition is the other's negation at the same now
            now = self._clock()
            try:  # idle: the turn is now
                table.update_item(Key=key, UpdateExpression="SET tat = :next",
                                  ConditionExpression="attribute_not_exists(tat) OR tat < :now",
                                  ExpressionAttributeValues={":next": _decimal(now + interval), ":now": _decimal(now)})
                return now
            except failed:
                pass
            try:  # busy: the turn is the next free one
                updated = table.update_item(Key=key, UpdateExpression="SET tat = tat + :interval",
                                            ConditionExpression="tat >= :now", ReturnValues="UPDATED_NEW",
                                            ExpressionAttributeValues={":interval": _decimal(interval),
                                                                       ":now": _decimal(now)})
                return float(updated["Attributes"]["tat"]) - interval
            except failed:
                continue


def _decimal(value: float) -> Decimal:
    return Decimal(repr(round(value, 6)))


# -- the client ---------------------------------------------------------------------------------------------------

class SpReportsClient:
    """Reports 2021-06-30 for one credential set; thread-safe.

    ``region`` is the default for calls that name no marketplace (``get_report``, ``cancel_report``...); calls
    with marketplaces use their region. Errors raised: ``shared.amazon.errors`` (``InvalidRequest``,
    ``Unauthorized``, ``NotFound``, ``Throttled``, ``ServerError``, ``OutOfTime``...), and ``AuthorizationFailed``
    when Login with Amazon refuses the credentials.
    """

    def __init__(self, tokens: TokenProvider, endpoints: Endpoints | None = None, region: Region | None = None, *,
                 policy: RetryPolicy | None = None, limiter: Limiter | None = None,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
                 settle_s: float = SETTLE_S) -> None:
        self.tokens = tokens
        self.endpoints = endpoints or Endpoints.from_env()
        self.region = region
        # Retries, create_once and downloads; SP-API refuses an expired token with 403 as well as 401.
        self.http = AmazonHttp(API, policy, sleep=sleep, rng=rng, unauthorized=(401, 403))
        self.limiter = limiter or LIMITER
        self.settle_s = settle_s
        self._sleep = sleep
        self._token_source = _TokenSource(tokens)
        self._apis: dict[Region, Any] = {}
        self._lock = threading.Lock()

    # -- operations ---------------------------------------------------------------------------------------------

    def create_report(self, report_type: str, marketplace_ids: Sequence[str], *,
                      data_start_time: datetime | None = None, data_end_time: datetime | None = None,
                      report_options: Mapping[str, str] | None = None, region: Region | None = None,
                      deadline: Deadline | None = None) -> str:
        """Request a report; its id. Never creates two: see the module's documentation."""
        spec = ReportSpecification(report_type, tuple(marketplace_ids), data_start_time, data_end_time,
                                   dict(report_options or {}))
        region = self._region(region, spec.marketplace_ids)
        since = datetime.now(UTC) - CLOCK_SKEW
        return create_once("createReport", self.http, lambda: self._create(spec, region, deadline),
                           lambda: self._find_created(spec, region, since, deadline), deadline)

    def get_report(self, report_id: str, *, region: Region | None = None, deadline: Deadline | None = None) -> Report:
        return _report(self._call("getReport", self._region(region), deadline,
                                  lambda api, timeout: api.get_report(report_id, _request_timeout=timeout)))

    def get_reports(self, report_types: Sequence[str] | None = None, *,
                    processing_statuses: Sequence[str] | None = None, marketplace_ids: Sequence[str] | None = None,
                    page_size: int | None = None, created_since: datetime | None = None,
                    created_until: datetime | None = None, next_token: str | None = None,
                    region: Region | None = None, deadline: Deadline | None = None) -> ReportPage:
        """One page of reports, newest first. With ``next_token``, pass nothing else but the region (SP-API
        refuses other filters with it); else ``report_types`` is required."""
        if next_token is not None:
            query: dict[str, Any] = {"next_token": next_token}
        elif report_types:
            query = {"report_types": list(report_types), "processing_statuses": _listed(processing_statuses),
                     "marketplace_ids": _listed(marketplace_ids), "page_size": page_size,
                     "created_since": created_since, "created_until": created_until}
            query = {key: value for key, value in query.items() if value is not None}
        else:
            raise ValueError("getReports needs report_types, or the next_token of a previous page")
        region = self._region(region, marketplace_ids or ())
        page = self._call("getReports", region, deadline,
                          lambda api, timeout: api.get_reports(**query, _request_timeout=timeout))
        return ReportPage(tuple(_report(r) for r in page.reports or ()), page.next_token)

    def iter_reports(self, report_types: Sequence[str], *, region: Region | None = None,
                     deadline: Deadline | None = None, **filters: Any) -> Iterator[Report]:
        """Every report matching the filters of :meth:`get_reports`, page after page."""
        region = self._region(region, filters.get("marketplace_ids") or ())
        page = self.get_reports(report_types, region=region, deadline=deadline, **filters)
        yield from page.reports
        while page.next_token:
            page = self.get_reports(next_token=page.next_token, region=region, deadline=deadline)
            yield from page.reports

    def cancel_report(self, report_id: str, *, region: Region | None = None,
                      deadline: Deadline | None = None) -> None:
        """Cancel a report still IN_QUEUE (SP-API refuses others: InvalidRequest)."""
        self._call("cancelReport", self._region(region), deadline,
                   lambda api, timeout: api.cancel_report(report_id, _request_timeout=timeout))

    def get_report_document(self, report_document_id: str, *, region: Region | None = None,
                            content_encoding_header: bool = False,
                            deadline: Deadline | None = None) -> ReportDocument:
        """Where to download a document. ``content_encoding_header``: the URL serves ``Content-Encoding: gzip``
        so that HTTP clients decompress on the fly."""
        extra = {"enable_content_encoding_url_header": True} if content_encoding_header else {}
        document = self._call("getReportDocument", self._region(region), deadline,
                              lambda api, timeout: api.get_report_document(report_document_id, **extra,
                                                                           _request_timeout=timeout))
        return ReportDocument(document.report_document_id, document.url, document.compression_algorithm)

    def read_document(self, document: ReportDocument, deadline: Deadline | None = None) -> bytes:
        """A small document's content, decompressed (copy large ones with ``transfer.copy_to_s3``)."""
        response = self.http.call("downloadReportDocument", "GET", document.url, idempotent=True, deadline=deadline)
        data = response.content  # already decoded if the URL was asked to serve Content-Encoding: gzip
        return gzip.decompress(data) if document.compression_algorithm == "GZIP" and data[:2] == b"\x1f\x8b" else data

    # -- creation made safe -------------------------------------------------------------------------------------

    def _create(self, spec: ReportSpecification, region: Region, deadline: Deadline | None) -> str:
        def create(api: Any, timeout: tuple[float, float]) -> Any:
            body = _sdk().CreateReportSpecification(
                report_type=spec.report_type, marketplace_ids=list(spec.marketplace_ids),
                data_start_time=spec.data_start_time, data_end_time=spec.data_end_time,
                report_options=dict(spec.report_options) or None)
            return api.create_report(body, _request_timeout=timeout)

        return str(self._call("createReport", region, deadline, create, idempotent=False).report_id)

    def find_report(self, report_type: str, marketplace_ids: Sequence[str], *,
                    data_start_time: datetime | None = None, data_end_time: datetime | None = None,
                    created_since: datetime, region: Region | None = None,
                    deadline: Deadline | None = None) -> str | None:
        """The id of the newest report created since ``created_since`` whose type, marketplaces and data times
        match (whatever its status; times not given match any), else None: what an earlier attempt at the same
        request may have created. Answers at once: it does not wait for a creation still in progress."""
        spec = ReportSpecification(report_type, tuple(marketplace_ids), data_start_time, data_end_time)
        for report in self.iter_reports([spec.report_type], region=self._region(region, spec.marketplace_ids),
                                        deadline=deadline, marketplace_ids=list(spec.marketplace_ids),
                                        created_since=created_since, page_size=100):
            if spec.matches(report):
                return report.report_id
        return None

    def _find_created(self, spec: ReportSpecification, region: Region, since: datetime,
                      deadline: Deadline | None) -> str | None:
        """The report an ambiguous createReport made, if it made one: looked for after ``settle_s`` (the request
        may still be in progress on Amazon's side), among the reports created since just before the first attempt
        whose type, marketplaces and times match (another identical request's report would do as well)."""
        if deadline is None or deadline.allows(self.settle_s):
            self._sleep(self.settle_s)
        return self.find_report(spec.report_type, spec.marketplace_ids, data_start_time=spec.data_start_time,
                                data_end_time=spec.data_end_time, created_since=since, region=region,
                                deadline=deadline)

    # -- one call, with rate limit, token, retries --------------------------------------------------------------

    def _call(self, operation: str, region: Region, deadline: Deadline | None,
              invoke: Callable[[Any, tuple[float, float]], T], idempotent: bool = True) -> T:
        def attempt() -> T | AmazonApiError:
            api = self._api(region)
            self.tokens.access_token(deadline)  # a refresh is slow: not between the rate-limit token and the call
            self.limiter.acquire(operation, deadline)
            return self._attempt(operation, api, deadline, invoke, idempotent)

        return self.http.retrying(operation, attempt, idempotent=idempotent, deadline=deadline,
                                  invalidate=self.tokens.invalidate)

    def _attempt(self, operation: str, api: Any, deadline: Deadline | None,
                 invoke: Callable[[Any, tuple[float, float]], T], idempotent: bool) -> T | AmazonApiError:
        sdk = _sdk()
        self._token_source.local.deadline = deadline
        try:
            return invoke(api, (self.http.policy.connect_timeout_s, self.http.read_timeout(deadline)))
        except sdk.ApiException as exc:
            if not exc.status:  # raised before a response: TLS failure, or a request the SDK could not build
                return self.http.unanswered(operation, idempotent, f"no response: {exc.reason}")
            error = error_from(API, operation, _ErrorResponse(exc))  # type: ignore[arg-type]
        except sdk.ConnectTimeoutError as exc:  # includes refused connections: the request never left
            return ServerError(API, operation, f"could not connect: {type(exc).__name__}")
        except sdk.HTTPError as exc:  # sent, but no complete answer (read timeout, connection reset)
            return self.http.unanswered(operation, idempotent, f"no response: {type(exc).__name__}")
        finally:
            self._token_source.local.deadline = None
        return self.http.answered(operation, error, idempotent)

    def _api(self, region: Region) -> Any:
        """The SDK's ReportsApi for ``region``, built once."""
        with self._lock:
            api = self._apis.get(region)
            if api is None:
                api = self._apis[region] = _reports_api(self.endpoints.base(API, region), self._token_source)
            return api

    def _region(self, region: Region | None, marketplace_ids: Sequence[str] = ()) -> Region:
        if region is not None:
            return region
        regions = {marketplace_region(m) for m in marketplace_ids}
        if len(regions) > 1:
            raise ValueError(f"marketplaces {sorted(marketplace_ids)} are in several regions "
                             f"({', '.join(sorted(regions))}): call each region separately")
        if regions:
            return regions.pop()
        if self.region is None:
            raise ValueError("no region: pass region= or marketplace ids, or give the client a default region")
        return self.region


class _TokenSource:
    """The SDK's ``access_token_cache``: our token provider, within the calling thread's time budget."""

    def __init__(self, tokens: TokenProvider) -> None:
        self._tokens = tokens
        self.local = threading.local()

    def get_lwa_access_token(self) -> str:
        return self._tokens.access_token(getattr(self.local, "deadline", None))


class _ErrorResponse:
    """An ``ApiException`` read as the ``requests.Response`` that :func:`shared.amazon.http.error_from` reads."""

    def __init__(self, exc: Any) -> None:
        self.status_code = int(exc.status)
        self.headers = exc.headers if exc.headers is not None else {}
        self.text = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body or "")
        self.reason = exc.reason

    def json(self) -> Any:
        return json.loads(self.text)


def _report(model: Any) -> Report:
    return Report(
        report_id=model.report_id, report_type=model.report_type,
        processing_status=ProcessingStatus(model.processing_status), created_time=_when(model.created_time),
        marketplace_ids=tuple(model.marketplace_ids or ()), data_start_time=_when(model.data_start_time),
        data_end_time=_when(model.data_end_time), processing_start_time=_when(model.processing_start_time),
        processing_end_time=_when(model.processing_end_time), report_document_id=model.report_document_id,
        report_schedule_id=model.report_schedule_id)


def _when(value: Any) -> Any:
    """A time from the SDK (a datetime when python-dateutil is installed, else the string) as a UTC datetime."""
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def _same_time(asked: datetime | None, got: datetime | None) -> bool:
    """Unasked times match anything (Amazon fills in now); asked ones match to the second."""
    if asked is None:
        return True
    return got is not None and abs((_when(asked) - got).total_seconds()) < 1


def _listed(values: Sequence[str] | None) -> list[str] | None:
    return list(values) if values else None


# -- Amazon's SDK, imported on first use --------------------------------------------------------------------------

_sdk_lock = threading.Lock()
_sdk_namespace: SimpleNamespace | None = None


def _sdk() -> SimpleNamespace:
    global _sdk_namespace
    with _sdk_lock:
        if _sdk_namespace is None:
            _sdk_namespace = _import_sdk()
        return _sdk_namespace


def _import_sdk() -> SimpleNamespace:
    """Import the SDK and undo what it does to logging: ``logging.basicConfig`` at import (a root handler and
    level where there was none), and a stderr handler added to two loggers by every ``Configuration()``."""
    root = logging.getLogger()
    root_handlers, root_level = list(root.handlers), root.level
    import spapi
    import urllib3
    from spapi.api.reports_v2021_06_30.reports_api import ReportsApi
    from spapi.models.reports_v2021_06_30 import CreateReportSpecification

    root.handlers[:] = root_handlers
    root.setLevel(root_level)
    loggers = [(logger, list(logger.handlers), logger.level)
               for logger in (logging.getLogger("spapi"), logging.getLogger("urllib3"))]
    default = spapi.Configuration()
    default.access_token_cache = None
    for logger, handlers, level in loggers:
        logger.handlers[:] = handlers
        logger.setLevel(level)
    spapi.Configuration.set_default(default)  # later ones copy it: no constructor, no handler
    return SimpleNamespace(Configuration=spapi.Configuration, ApiClient=spapi.ApiClient,
                           ApiException=spapi.ApiException, ReportsApi=ReportsApi,
                           CreateReportSpecification=CreateReportSpecification,
                           ConnectTimeoutError=urllib3.exceptions.ConnectTimeoutError,
                           HTTPError=urllib3.exceptions.HTTPError)


def _reports_api(host: str, token_source: _TokenSource) -> Any:
    sdk = _sdk()
    configuration = sdk.Configuration()
    configuration.host = host
    configuration.connection_pool_maxsize = POOL_SIZE
    configuration.access_token_cache = None  # given after: ApiClient() would fetch a token while being built
    client = sdk.ApiClient(configuration)
    configuration.access_token_cache = token_source
    client.user_agent = f"{USER_AGENT} {client.user_agent}"
    client.rest_client.pool_manager.connection_pool_kw["retries"] = False  # retries are ours: backoff, budget
    return sdk.ReportsApi(client)
