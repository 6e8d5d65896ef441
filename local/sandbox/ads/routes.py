"""Amazon Ads over HTTP on each regional host (``/ads/{na|eu|fe}``, apis.md §2-3): ``GET /v2/profiles`` and
reporting v3, ``POST /reporting/reports`` and ``GET``/``DELETE /reporting/reports/{reportId}``. Report files are
downloaded from pre-signed URLs under ``/files``. ``GET``/``PUT /ads/_sandbox/settings`` read and change the
run-time knobs (``state.py``) from another process.

Every call needs ``Authorization: Bearer`` and ``Amazon-Advertising-API-ClientId`` (401 otherwise); reporting
also needs ``Amazon-Advertising-API-Scope`` naming a profile of the region. Profiles answer errors as
``{"code", "details"}``, reporting v3 as ``{"code", "detail"}``, as Amazon does.
"""

from __future__ import annotations

import functools
import itertools
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request

from local.sandbox.ads.state import (
    COMPLETED,
    FAILED,
    FAILURE_REASON,
    FAULT_OUTCOMES,
    AdsError,
    AdsState,
    Profile,
    Report,
    Timings,
)
from local.sandbox.auth import authorized_client
from local.sandbox.http import Reply, SandboxError
from shared.amazon.regions import MARKETPLACES

if TYPE_CHECKING:
    from local.sandbox import DemoAccount, Sandbox

CREATE_CONTENT_TYPE = "application/vnd.createasyncreportrequest.v3+json"
_REGION = "<any(na, eu, fe):region>"
_API_PROGRAMS = {"billing", "campaign", "paymentMethod", "store", "report", "account", "posts"}
_PROFILE_TYPES = {"seller", "vendor", "agency"}
# Currency and time zone of the marketplaces the sandbox's profiles use (apis.md §3.1)
_LOCALE = {"US": ("USD", "America/Los_Angeles"), "CA": ("CAD", "America/Los_Angeles"),
           "MX": ("MXN", "America/Los_Angeles"), "BR": ("BRL", "America/Sao_Paulo"), "UK": ("GBP", "Europe/London"),
           "DE": ("EUR", "Europe/Paris"), "FR": ("EUR", "Europe/Paris"), "IT": ("EUR", "Europe/Paris"),
           "ES": ("EUR", "Europe/Paris"), "JP": ("JPY", "Asia/Tokyo"), "AU": ("AUD", "Australia/Sydney")}


def _reporting(operation: Callable[..., Reply]) -> Callable[..., Reply]:
    """Reporting v3 answers errors as ``{"code", "detail"}`` (singular), unlike the rest of the Ads API."""

    @functools.wraps(operation)
    def answer(self: AdsApi, request: Request, **values: Any) -> Reply:
        try:
            return operation(self, request, **values)
        except SandboxError as exc:  # AdsError included
            if exc.body is None:
                exc.body = {"code": exc.code or str(exc.status), "detail": exc.message}
            raise
    return answer


class AdsApi:
    name = "ads"
    prefix = "/ads"
    routes = [(f"/{_REGION}/v2/profiles", "GET", "listProfiles"),
              (f"/{_REGION}/reporting/reports", "POST", "createReport"),
              (f"/{_REGION}/reporting/reports/<report_id>", "GET", "getReport"),
              (f"/{_REGION}/reporting/reports/<report_id>", "DELETE", "deleteReport"),
              ("/_sandbox/settings", "GET", "getSettings"), ("/_sandbox/settings", "PUT", "updateSettings")]

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.state = AdsState(sandbox.files)
        sandbox.faults.produces(self.name, "createReport", FAULT_OUTCOMES)
        for profile in demo_profiles(sandbox.account):
            self.state.add_profile(profile)
        self._profile_ids = itertools.count(int(sandbox.account.profile_id) + 100)

    def error_body(self, status: int, code: str | None, message: str) -> Any:
        return {"code": code or str(status), "details": message}

    # -- run-time knobs (state.py) ---------------------------------------------------------------------------

    @property
    def timings(self) -> Timings:
        return self.state.timings

    @property
    def rows_per_report(self) -> int | None:
        return self.state.rows_per_report

    @rows_per_report.setter
    def rows_per_report(self, rows: int | None) -> None:
        self.state.rows_per_report = rows

    @property
    def bytes_per_report(self) -> int | None:
        return self.state.bytes_per_report

    @bytes_per_report.setter
    def bytes_per_report(self, size: int | None) -> None:
        self.state.bytes_per_report = size

    def add_profile(self, region: str = "na", marketplace_id: str | None = None, **fields: Any) -> Profile:
        """A new profile (a seller in the region's first marketplace unless told otherwise), e.g. for a test."""
        marketplace_id = marketplace_id or {"na": "ATVPDKIKX0DER", "eu": "A1F83G8C2ARO7P",
                                            "fe": "A1VC38T7YXB528"}[region]
        profile_id = next(self._profile_ids)
        return self.state.add_profile(Profile(**{**_profile_fields(profile_id, region, marketplace_id,
                                                                   f"A{profile_id}", "seller"), **fields}))

    def remove_profile(self, profile_id: int) -> None:
        self.state.remove_profile(profile_id)

    def set_report_rows(self, profile_id: int, rows: int | None) -> Profile:
        """Make each report of one profile ``rows`` long (None: the global setting again)."""
        return self.state.set_report_rows(profile_id, rows)

    def lose_create_responses(self, times: int = 1, status: int = 502) -> None:
        self.state.lose_create_responses(times, status)

    # -- operations ------------------------------------------------------------------------------------------

    def list_profiles(self, request: Request, region: str) -> Reply:
        self._authorize(request)
        args = request.args
        for key, allowed in (("apiProgram", _API_PROGRAMS), ("accessLevel", {"edit", "view"}),
                             ("validPaymentMethodFilter", {"true", "false"})):
            if key in args and args[key] not in allowed:
                raise SandboxError(400, f"{key} must be one of {', '.join(sorted(allowed))}", "INVALID_ARGUMENT")
        types = {t.strip() for t in args.get("profileTypeFilter", "").split(",") if t.strip()}
        if types - _PROFILE_TYPES:
            raise SandboxError(400, f"profileTypeFilter must be a comma-separated list of "
                                    f"{', '.join(sorted(_PROFILE_TYPES))}", "INVALID_ARGUMENT")
        valid = args.get("validPaymentMethodFilter")
        found = self.state.list_profiles(region, types or None, None if valid is None else valid == "true")
        return Reply([p.as_json() for p in found], headers=_headers())

    @_reporting
    def create_report(self, request: Request, region: str) -> Reply:
        profile = self._scope(request, region)
        if request.mimetype != CREATE_CONTENT_TYPE:
            raise AdsError(415, f"Content-Type {request.mimetype or '(none)'} is not supported: send "
                                f"{CREATE_CONTENT_TYPE}")
        body = request.get_json(force=True, silent=True)
        if body is None:
            raise AdsError(400, "The request body is not valid JSON")
        report = self.state.create_report(profile, body,
                                          lambda: self.sandbox.faults.take_outcome(self.name, "createReport"))
        lost = self.state.take_lost_response()
        if lost is not None:  # the report exists, but the caller never hears of it
            raise AdsError(lost, HTTPStatus(lost).phrase)
        return Reply(self._report_json(report), headers=_headers("createasyncreportresponse"))

    @_reporting
    def get_report(self, request: Request, region: str, report_id: str) -> Reply:
        report = self.state.get_report(self._scope(request, region), report_id)
        return Reply(self._report_json(report), headers=_headers("getasyncreportresponse"))

    @_reporting
    def delete_report(self, request: Request, region: str, report_id: str) -> Reply:
        report = self.state.delete_report(self._scope(request, region), report_id)
        return Reply({"code": 200, "detail": "Report deleted", "reportId": report.report_id},
                     headers=_headers("deleteasyncreportresponse"))

    def get_settings(self, request: Request) -> Reply:
        return Reply(self.state.settings())

    def update_settings(self, request: Request) -> Reply:
        changes = request.get_json(force=True, silent=True)
        if not isinstance(changes, dict):
            raise SandboxError(400, f"expected a JSON object with any of {sorted(self.state.settings())}")
        return Reply(self.state.update_settings(changes))

    # -- helpers ---------------------------------------------------------------------------------------------

    def _authorize(self, request: Request) -> str:
        """The caller's LWA client id; its token and the ClientId header must both be good."""
        client_id = authorized_client(request, self.sandbox.lwa, header="Authorization", status=401,
                                      code="UNAUTHORIZED")
        header = request.headers.get("Amazon-Advertising-API-ClientId")
        if not header:
            raise SandboxError(401, "Amazon-Advertising-API-ClientId header is missing", "UNAUTHORIZED")
        if header != client_id:
            raise SandboxError(401, "Amazon-Advertising-API-ClientId does not match the access token",
                               "UNAUTHORIZED")
        return client_id

    def _scope(self, request: Request, region: str) -> Profile:
        self._authorize(request)
        return self.state.scope(region, request.headers.get("Amazon-Advertising-API-Scope"))

    def _report_json(self, report: Report) -> dict[str, Any]:
        """The AsyncReport, every nullable field present (null until it applies), as Amazon's responses show."""
        url = expires = None
        if report.status == COMPLETED and report.file_name:
            ttl = self.state.timings.url_expires_s
            url, expires = self.sandbox.files.url(report.file_name, ttl), int(time.time()) + ttl
        return {"configuration": dict(sorted(report.configuration.items())),
                "createdAt": _iso(report.created_at), "endDate": str(report.end_date),
                "failureReason": FAILURE_REASON if report.status == FAILED else None,
                "fileSize": report.file_size if report.status == COMPLETED else None,
                "generatedAt": _iso(report.generated_at), "name": report.name, "reportId": report.report_id,
                "startDate": str(report.start_date), "status": report.status, "updatedAt": _iso(report.updated_at),
                "url": url, "urlExpiresAt": _iso(expires, "microseconds")}


def demo_profiles(account: DemoAccount) -> list[Profile]:
    """The demo account's profiles: a vendor in NA (the account's marketplace), a seller in the UK and in Japan."""
    first = int(account.profile_id)
    return [Profile(**_profile_fields(first, "na", account.marketplace_id, account.advertiser_id, "vendor",
                                      name="Sandbox Demo Vendor")),
            Profile(**_profile_fields(first + 1, "eu", "A1F83G8C2ARO7P", "A2SANDBOXDEMOEU", "seller",
                                      name="Sandbox Demo Seller UK")),
            Profile(**_profile_fields(first + 2, "fe", "A1VC38T7YXB528", "A3SANDBOXDEMOFE", "seller",
                                      name="Sandbox Demo Seller JP"))]


def _profile_fields(profile_id: int, region: str, marketplace_id: str, account_id: str, account_type: str,
                    name: str | None = None) -> dict[str, Any]:
    country = MARKETPLACES[marketplace_id][0]
    currency, timezone = _LOCALE.get(country, ("USD", "America/Los_Angeles"))
    return {"profile_id": profile_id, "region": region, "country_code": country, "currency_code": currency,
            "timezone": timezone, "marketplace_id": marketplace_id, "account_id": account_id,
            "account_type": account_type, "account_name": name or f"Sandbox {account_type} {profile_id}",
            "daily_budget": 500.0 if account_type == "seller" else None,
            "valid_payment_method": True if account_type == "vendor" else None}


def _headers(vendor_type: str | None = None) -> dict[str, str]:
    """Amazon's request ids; reporting's vendor media type is carried as the gateway remaps it (apis.md §3.2)."""
    headers = {"x-amzn-RequestId": str(uuid.uuid4()), "x-amz-rid": uuid.uuid4().hex[:20].upper()}
    if vendor_type:
        headers["x-amzn-Remapped-x-amzn-Remapped-Content-Type"] = f"application/vnd.{vendor_type}.v3+json"
    return headers


def _iso(epoch: float | None, precision: str = "milliseconds") -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec=precision).replace("+00:00", "Z")
