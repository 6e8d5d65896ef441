"""Typed errors of the Amazon API clients: callers catch what they can act on, not HTTP status codes."""

from __future__ import annotations


class AmazonApiError(Exception):
    """An Amazon API refused a call or could not be reached."""

    def __init__(self, api: str, operation: str, message: str, status: int | None = None, code: str | None = None,
                 request_id: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(f"{api} {operation}: {message}" + (f" (HTTP {status})" if status else ""))
        self.api, self.operation, self.status, self.code = api, operation, status, code
        self.detail, self.request_id, self.retry_after = message, request_id, retry_after


class InvalidRequest(AmazonApiError):
    """400/422: the request itself is wrong; retrying cannot help."""


class Unauthorized(AmazonApiError):
    """401/403: the token or credentials are not accepted."""


class NotFound(AmazonApiError):
    """404: no such resource."""


class Duplicate(AmazonApiError):
    """The resource already exists (Ads 425, AMC duplicate workflow)."""


class Throttled(AmazonApiError):
    """429: too many requests, after every retry the time budget allowed."""


class ServerError(AmazonApiError):
    """5xx, timeouts and connection failures, after every retry the time budget allowed."""


class OutOfTime(AmazonApiError):
    """The time budget (e.g. the Lambda's remaining time) ran out before the call could succeed."""


class RateLimited(OutOfTime):
    """The client's rate limit allows no call within the time budget; ``wait_s``: when it would. Nothing was sent,
    so the caller may simply try again later (a state machine retries it after a Wait)."""

    def __init__(self, api: str, operation: str, wait_s: float) -> None:
        super().__init__(api, operation, f"its rate limit allows the next call in {wait_s:.1f} s, past the budget")
        self.wait_s = wait_s


class AuthorizationFailed(AmazonApiError):
    """Login with Amazon refused the credentials (invalid_grant, invalid_client...)."""


class NoCredentials(AuthorizationFailed):
    """No credentials were ever stored for the credential set (its secret does not exist)."""


def for_status(status: int) -> type[AmazonApiError]:
    if status in (401, 403):
        return Unauthorized
    if status == 404:
        return NotFound
    if status == 425:
        return Duplicate
    if status == 429:
        return Throttled
    if status >= 500:
        return ServerError
    return InvalidRequest
