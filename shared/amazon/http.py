"""The HTTP layer every Amazon client uses: retries with exponential backoff and full jitter that honour
``Retry-After``, bounded by a time budget (a Lambda's remaining time); a token refresh on 401; typed errors.

Only idempotent calls are retried blindly. A creation that fails ambiguously (a timeout after the request was
sent, a 5xx) raises :class:`AmbiguousFailure`; :func:`create_once` then looks for what it may have created before
trying again, so a timeout never creates two. A 429 is always safe to retry: the request was refused unseen.
Nothing here logs a URL, header or body: they carry tokens and pre-signed signatures.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import requests

from shared import USER_AGENT
from shared.amazon.errors import AmazonApiError, OutOfTime, ServerError, for_status

log = logging.getLogger(__name__)
T = TypeVar("T")


class AmbiguousFailure(ServerError):
    """A non-idempotent call failed in a way that leaves unknown whether it took effect."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before attempt ``attempt + 1``: the server's ``Retry-After``, else full jitter."""
        if retry_after is not None:
            return min(retry_after, self.max_delay_s)
        return rng.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))


class Deadline:
    """A time budget; clients give up (:class:`OutOfTime`) rather than outlive it."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._ends = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self._ends - self._clock())

    def allows(self, wait_s: float) -> bool:
        return self.remaining() > wait_s + 1.0  # and still a second for the call itself


class Auth(Protocol):
    def headers(self) -> dict[str, str]: ...

    def invalidate(self) -> None: ...


class AmazonHttp:
    """One ``requests`` session per API; thread-safe for concurrent calls."""

    def __init__(self, api: str, policy: RetryPolicy | None = None, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
                 unauthorized: tuple[int, ...] = (401,)) -> None:
        self.api = api
        self.policy = policy or RetryPolicy()
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._unauthorized = unauthorized

    def call(self, operation: str, method: str, url: str, *, idempotent: bool, auth: Auth | None = None,
             deadline: Deadline | None = None, headers: Mapping[str, str] | None = None,
             stream: bool = False, **body: Any) -> requests.Response:
        """Send the request, retrying what is safe to retry; raise a typed :class:`AmazonApiError` otherwise."""
        return self.retrying(operation, lambda: self._attempt(operation, method, url, idempotent, auth, deadline,
                                                              headers, stream, body),
                             idempotent=idempotent, deadline=deadline, invalidate=auth.invalidate if auth else None)

    def retrying(self, operation: str, attempt: Callable[[], T | AmazonApiError], *, idempotent: bool,
                 deadline: Deadline | None, invalidate: Callable[[], None] | None) -> T:
        """Run ``attempt`` until it returns a result: after a refusal of the token (``invalidate``, then once
        more), and after failures :func:`retryable` allows, within the policy's attempts and the deadline."""
        refreshed = False
        attempts = 0
        while True:
            attempts += 1
            outcome = attempt()
            if not isinstance(outcome, AmazonApiError):
                return outcome
            if outcome.status in self._unauthorized and invalidate is not None and not refreshed:
                invalidate()  # the token expired or was revoked: one fresh token, then the same request
                refreshed = True
                continue
            if not retryable(outcome, idempotent) or attempts >= self.policy.max_attempts:
                raise outcome
            self.wait(operation, attempts, outcome, deadline)

    def read_timeout(self, deadline: Deadline | None) -> float:
        """The policy's read timeout, shortened to what is left of ``deadline`` (at least a second)."""
        if deadline is None:
            return self.policy.read_timeout_s
        return max(1.0, min(self.policy.read_timeout_s, deadline.remaining()))

    def answered(self, operation: str, error: AmazonApiError, idempotent: bool) -> AmazonApiError:
        """An error response as it counts: a 5xx to a call that is not idempotent may have done its work."""
        if error.status is not None and error.status >= 500 and not idempotent:
            return AmbiguousFailure(self.api, operation, error.detail, error.status, error.code, error.request_id,
                                    error.retry_after)
        return error

    def unanswered(self, operation: str, idempotent: bool, message: str) -> AmazonApiError:
        """A request sent without a complete answer: safe to send again only when idempotent."""
        return (ServerError if idempotent else AmbiguousFailure)(self.api, operation, message)

    def wait(self, operation: str, attempt: int, error: AmazonApiError, deadline: Deadline | None) -> None:
        """Sleep before the next attempt, or raise OutOfTime when the budget cannot cover it."""
        delay = self.policy.delay(attempt, error.retry_after, self._rng)
        if deadline is not None and not deadline.allows(delay):
            raise OutOfTime(self.api, operation, f"no time left to retry after: {error.detail}",
                            error.status, error.code) from error
        log.info("retrying Amazon call", extra={"api": self.api, "operation": operation, "status": error.status,
                                                "attempt": attempt, "delay_s": round(delay, 2)})
        self._sleep(delay)

    def _attempt(self, operation: str, method: str, url: str, idempotent: bool, auth: Auth | None,
                 deadline: Deadline | None, headers: Mapping[str, str] | None, stream: bool,
                 body: dict[str, Any]) -> requests.Response | AmazonApiError:
        all_headers = {**(auth.headers() if auth else {}), **(headers or {})}
        read_timeout = self.read_timeout(deadline)
        try:
            response = self.session.request(method, url, headers=all_headers, stream=stream,
                                            timeout=(self.policy.connect_timeout_s, read_timeout), **body)
        except requests.ConnectionError as exc:
            if isinstance(exc, requests.ConnectTimeout) or _never_sent(exc):
                return ServerError(self.api, operation, f"could not connect: {type(exc).__name__}")
            return self.unanswered(operation, idempotent, f"connection failed: {type(exc).__name__}")
        except requests.Timeout:
            return self.unanswered(operation, idempotent, f"no response within {read_timeout:.0f}s")
        if response.status_code < 400:
            return response
        return self.answered(operation, error_from(self.api, operation, response), idempotent)


def create_once(operation: str, http: AmazonHttp, create: Callable[[], T], find_existing: Callable[[], T | None],
                deadline: Deadline | None) -> T:
    """Run a creation at most once in effect: after an ambiguous failure, return what it created if it did."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return create()
        except AmbiguousFailure as failure:
            existing = find_existing()
            if existing is not None:
                log.info("creation had succeeded; using it", extra={"api": http.api, "operation": operation})
                return existing
            if attempt >= http.policy.max_attempts:
                raise
            http.wait(operation, attempt, failure, deadline)


def error_from(api: str, operation: str, response: requests.Response) -> AmazonApiError:
    """The typed error for a failed response, with the API's own code and message whatever its error shape."""
    code, message = _code_and_message(response)
    return for_status(response.status_code)(
        api, operation, message, response.status_code, code,
        request_id=response.headers.get("x-amzn-RequestId") or response.headers.get("x-amz-rid"),
        retry_after=_retry_after(response.headers.get("Retry-After")))


def _code_and_message(response: requests.Response) -> tuple[str | None, str]:
    try:
        body = response.json()
    except ValueError:
        return None, (response.text or response.reason or "")[:500]
    if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:  # SP-API
        first = body["errors"][0]
        return first.get("code"), " ".join(filter(None, (first.get("message"), first.get("details"))))
    if isinstance(body, dict) and "error" in body:  # Login with Amazon
        return body.get("error"), str(body.get("error_description", ""))
    if isinstance(body, dict):  # Ads ("details"), reporting v3 ("detail"), AMC ("message")
        text = body.get("detail") or body.get("details") or body.get("message") or ""
        return (str(body["code"]) if "code" in body else None), str(text)
    return None, str(body)[:500]


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time()) if when else None


def retryable(error: AmazonApiError, idempotent: bool) -> bool:
    """Whether a failed call may be sent again: a 429 always; a server error only when idempotent (or unsent)."""
    if error.status == 429:
        return True
    return isinstance(error, ServerError) and not isinstance(error, AmbiguousFailure) and (
        idempotent or error.status is None)


def _never_sent(exc: requests.ConnectionError) -> bool:
    """A refused connection: the request never reached the server, so even a creation can be retried."""
    return "refused" in str(exc).lower() or "NewConnectionError" in repr(exc)
