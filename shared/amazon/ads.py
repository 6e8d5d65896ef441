"""Amazon Ads: advertising profiles and reporting v3 (apis.md §2-3). Amazon publishes no SDK for it, so this is a
thin client on :class:`~shared.amazon.http.AmazonHttp` (retries, time budget, one token refresh on 401, typed
errors) with results as dataclasses.

Creating a report is safe to retry. Amazon answers 425 to a request identical to one still running, naming the
report in ``detail`` (``The Request is a duplicate of : <reportId>``): :meth:`AdsClient.create_report` then
returns that report. So a creation whose response was lost (a 5xx, a timeout) is simply sent again: if the first
took effect, the second gets 425 and the same report; never two. A 425 naming no report is waited out.

A report is polled with :meth:`AdsClient.get_report` until it is done (waiting belongs in a Step Functions Wait
state, not here); a COMPLETED report's ``url`` is a pre-signed GET valid for about an hour, each read issuing a
fresh one. :meth:`AdsClient.download_report` streams it, asking once for a fresh URL if the one it has expired;
``shared.amazon.transfer.copy_to_s3(report.url, ...)`` copies it to S3 instead.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, BinaryIO

import requests

from shared.amazon.errors import AmazonApiError, Duplicate, InvalidRequest, NotFound, Unauthorized
from shared.amazon.http import AmazonHttp, AmbiguousFailure, Deadline
from shared.amazon.lwa import BearerAuth, TokenProvider
from shared.amazon.regions import Endpoints, Region, region_of

log = logging.getLogger(__name__)

CREATE_REPORT_CONTENT_TYPE = "application/vnd.createasyncreportrequest.v3+json"
REPORT_FORMAT = "GZIP_JSON"
SCOPE_HEADER = "Amazon-Advertising-API-Scope"
_DUPLICATE_OF = re.compile(r"duplicate of\s*:?\s*([0-9A-Za-z][0-9A-Za-z-]*)", re.IGNORECASE)


class ReportStatus(StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class ReportType:
    """What reporting v3 allows for one report type: its ad product, the longest date range one report may cover,
    how many days back its data goes, and its groupBy values (None: not checked, as for DSP's many groupings)."""

    ad_product: str
    max_days: int
    retention_days: int
    group_by: frozenset[str] | None
    time_units: tuple[str, ...] = ("DAILY", "SUMMARY")


def _types() -> dict[str, ReportType]:
    """apis.md §3.2's table: maximum range, retention and groupBy per report type."""
    sp, sb, sd, st, dsp = ("SPONSORED_PRODUCTS", "SPONSORED_BRANDS", "SPONSORED_DISPLAY", "SPONSORED_TELEVISION",
                           "DEMAND_SIDE_PLATFORM")
    rows: list[tuple[str, str, int, int, set[str] | None]] = [
        ("spCampaigns", sp, 31, 95, {"campaign", "adGroup", "campaignPlacement"}),
        ("sbCampaigns", sb, 31, 60, {"campaign"}), ("sdCampaigns", sd, 31, 65, {"campaign", "matchedTarget"}),
        ("stCampaigns", st, 31, 95, {"campaign", "adGroup"}),
        ("dspCampaign", dsp, 31, 95, {"campaign", "ad", "creative"}),
        ("sbAdGroup", sb, 31, 60, {"adGroup"}), ("sdAdGroup", sd, 31, 65, {"adGroup", "matchedTarget"}),
        ("sbAds", sb, 31, 60, {"ads"}), ("spAdvertisedProduct", sp, 31, 95, {"advertiser"}),
        ("sdAdvertisedProduct", sd, 31, 65, {"advertiser"}), ("spPurchasedProduct", sp, 31, 95, {"asin"}),
        ("sbPurchasedProduct", sb, 731, 731, {"purchasedAsin"}), ("sdPurchasedProduct", sd, 31, 65, {"asin"}),
        ("spSearchTerm", sp, 31, 95, {"searchTerm"}), ("sbSearchTerm", sb, 31, 60, {"searchTerm"}),
        ("spTargeting", sp, 31, 95, {"targeting"}), ("sbTargeting", sb, 31, 60, {"targeting"}),
        ("sdTargeting", sd, 31, 65, {"targeting", "matchedTarget"}),
        ("stTargeting", st, 31, 95, {"campaign", "adGroup", "targeting"}),
        ("sbCampaignPlacement", sb, 31, 60, {"campaign"}), ("spGrossAndInvalids", sp, 365, 365, {"campaign"}),
        ("sbGrossAndInvalids", sb, 365, 365, {"campaign"}), ("sdGrossAndInvalids", sd, 365, 365, {"campaign"}),
        ("spAudiences", sp, 31, 95, {"campaign_bid_boost_segment"}),
        ("sbAudiences", sb, 31, 95, {"campaign_bid_boost_segment"}),
        *((name, dsp, 31, 95, None) for name in ("dspGeo", "dspInventory", "dspProduct", "dspTech",
                                                 "dspReachFrequency", "dspAudience")),
    ]
    types = {name: ReportType(product, days, kept, frozenset(groups) if groups else None)
             for name, product, days, kept, groups in rows}
    types["conversionPath"] = ReportType("ALL", 90, 95, frozenset({"brandConversionPath"}), ("SUMMARY",))
    types["dspAudioAndVideo"] = ReportType(dsp, 395, 395, frozenset({"campaign", "ad", "supplySource", "creative",
                                                                     "content"}), ("SUMMARY",))
    return types


REPORT_TYPES = _types()


class ReportNotReady(AmazonApiError):
    """The report has no file yet (PENDING or PROCESSING)."""


class ReportFailed(AmazonApiError):
    """Amazon could not generate the report (status FAILED); ``detail`` is its ``failureReason``."""


class ReportUrlExpired(Unauthorized):
    """The report's download URL was refused (expired), even after asking for a fresh one."""


@dataclass(frozen=True)
class AccountInfo:
    marketplace_string_id: str
    id: str
    type: str  # seller | vendor | agency
    name: str
    sub_type: str | None = None  # KDP_AUTHOR | AMAZON_ATTRIBUTION
    valid_payment_method: bool | None = None  # vendors only


@dataclass(frozen=True)
class Profile:
    """An advertising account in one marketplace; its id goes in the Scope header of reporting calls."""

    profile_id: int
    region: Region
    country_code: str
    currency_code: str
    timezone: str
    account_info: AccountInfo
    daily_budget: float | None = None

    @property
    def marketplace_id(self) -> str:
        return self.account_info.marketplace_string_id

    @classmethod
    def from_json(cls, body: Mapping[str, Any], region: Region) -> Profile:
        info = body.get("accountInfo") or {}
        return cls(int(body["profileId"]), region, body.get("countryCode", ""), body.get("currencyCode", ""),
                   body.get("timezone", ""),
                   AccountInfo(info.get("marketplaceStringId", ""), str(info.get("id", "")), info.get("type", ""),
                               info.get("name", ""), info.get("subType"), info.get("validPaymentMethod")),
                   body.get("dailyBudget"))


@dataclass(frozen=True)
class AdsReport:
    """A reporting v3 AsyncReport. ``status`` is a :class:`ReportStatus`, or the text of one this code does not
    know. ``url`` is a pre-signed URL: it is kept out of ``repr`` (and ``raw``), so logging a report is safe."""

    report_id: str
    status: ReportStatus | str
    profile_id: int
    region: Region
    name: str | None
    start_date: date
    end_date: date
    configuration: dict[str, Any]
    created_at: datetime | None
    updated_at: datetime | None
    generated_at: datetime | None = None
    file_size: int | None = None
    failure_reason: str | None = None
    url: str | None = field(default=None, repr=False)
    url_expires_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # the response, less ``url``

    @property
    def done(self) -> bool:
        """COMPLETED or FAILED: polling can stop."""
        return self.status in (ReportStatus.COMPLETED, ReportStatus.FAILED)

    @property
    def completed(self) -> bool:
        return self.status == ReportStatus.COMPLETED

    @property
    def failed(self) -> bool:
        return self.status == ReportStatus.FAILED

    @classmethod
    def from_json(cls, body: Mapping[str, Any], profile_id: int, region: Region) -> AdsReport:
        status = body.get("status", "")
        return cls(str(body["reportId"]), ReportStatus(status) if status in ReportStatus.__members__ else status,
                   profile_id, region, body.get("name"), date.fromisoformat(body["startDate"]),
                   date.fromisoformat(body["endDate"]), dict(body.get("configuration") or {}),
                   _datetime(body.get("createdAt")), _datetime(body.get("updatedAt")),
                   _datetime(body.get("generatedAt")), body.get("fileSize"), body.get("failureReason"),
                   body.get("url"), _datetime(body.get("urlExpiresAt")),
                   {key: value for key, value in body.items() if key != "url"})


class ReportDownload:
    """A report file being downloaded: the gzip'd JSON exactly as served (nothing is decompressed on the way).

    Use as a context manager; read with :meth:`iter_chunks` or :attr:`raw` (a file object, e.g. for
    ``s3.upload_fileobj``). ``size`` is the Content-Length, when the server sent one."""

    def __init__(self, report: AdsReport, response: requests.Response) -> None:
        self.report, self._response = report, response
        length = response.headers.get("Content-Length")
        self.size = int(length) if length and length.isdigit() else None
        self.content_type = response.headers.get("Content-Type")

    @property
    def raw(self) -> BinaryIO:
        self._response.raw.decode_content = False
        return self._response.raw  # type: ignore[no-any-return]

    def iter_chunks(self, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        yield from self._response.raw.stream(chunk_size, decode_content=False)

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> ReportDownload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AdsClient:
    """Profiles and reporting v3 in every region, for one credential set (``tokens``). Thread-safe.

    ``region`` arguments take a :class:`Region` or a name :func:`region_of` knows (``"NA"``, ``"Europe"``...).
    Every call takes an optional :class:`Deadline` (e.g. the Lambda's remaining time) and raises the typed errors
    of ``shared.amazon.errors`` (:class:`OutOfTime` when the budget runs out while waiting to retry).
    """

    def __init__(self, tokens: TokenProvider, endpoints: Endpoints | None = None,
                 http: AmazonHttp | None = None) -> None:
        self._tokens = tokens
        self._endpoints = endpoints or Endpoints.from_env()
        self.http = http or AmazonHttp("ads")

    # -- profiles ------------------------------------------------------------------------------------------

    def list_profiles(self, region: Region | str, *, profile_types: Iterable[str] | None = None,
                      api_program: str | None = None, access_level: str | None = None,
                      deadline: Deadline | None = None) -> list[Profile]:
        """The profiles the credentials can use in ``region`` (empty when none)."""
        region = _region(region)
        params = {key: value for key, value in (
            ("profileTypeFilter", ",".join(profile_types) if profile_types else None),
            ("apiProgram", api_program), ("accessLevel", access_level)) if value}
        response = self.http.call("listProfiles", "GET", f"{self._base(region)}/v2/profiles", idempotent=True,
                                  auth=self._auth(deadline), deadline=deadline, params=params)
        return [Profile.from_json(item, region) for item in _json(response, "listProfiles")]

    def list_all_profiles(self, *, deadline: Deadline | None = None, **filters: Any) -> list[Profile]:
        """The profiles of every region, NA, EU then FE."""
        return [p for region in Region for p in self.list_profiles(region, deadline=deadline, **filters)]

    # -- reports -------------------------------------------------------------------------------------------

    def create_report(self, profile_id: int | str, region: Region | str, request_body: Mapping[str, Any], *,
                      deadline: Deadline | None = None) -> AdsReport:
        """Request a report (a CreateAsyncReportRequest; ``format`` is forced to GZIP_JSON), or get the one an
        identical request started and that is still running. Retrying after an unclear failure is safe."""
        region, profile_id = _region(region), int(profile_id)
        body = _report_request(request_body)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.http.call(
                    "createReport", "POST", self._reports_url(region), idempotent=False, auth=self._auth(deadline),
                    deadline=deadline, headers=self._scoped(profile_id, CREATE_REPORT_CONTENT_TYPE), data=body)
                return AdsReport.from_json(_json(response, "createReport"), profile_id, region)
            except Duplicate as duplicate:
                existing = _duplicate_of(duplicate.detail)
                if existing:
                    found = self._existing(profile_id, region, existing, deadline)
                    if found is not None:
                        return found
                error: AmazonApiError = duplicate
            except AmbiguousFailure as failure:  # sent again: if it took effect, Amazon answers 425 naming it
                error = failure
            if attempt >= self.http.policy.max_attempts:
                raise error
            self.http.wait("createReport", attempt, error, deadline)

    def get_report(self, profile_id: int | str, region: Region | str, report_id: str, *,
                   deadline: Deadline | None = None) -> AdsReport:
        region, profile_id = _region(region), int(profile_id)
        response = self.http.call("getReport", "GET", f"{self._reports_url(region)}/{report_id}", idempotent=True,
                                  auth=self._auth(deadline), deadline=deadline, headers=self._scoped(profile_id))
        return AdsReport.from_json(_json(response, "getReport"), profile_id, region)

    def delete_report(self, profile_id: int | str, region: Region | str, report_id: str, *,
                      deadline: Deadline | None = None) -> None:
        """Cancel a report; Amazon allows it only while the report is PENDING (InvalidRequest otherwise)."""
        region, profile_id = _region(region), int(profile_id)
        self.http.call("deleteReport", "DELETE", f"{self._reports_url(region)}/{report_id}", idempotent=True,
                       auth=self._auth(deadline), deadline=deadline, headers=self._scoped(profile_id))

    def download_report(self, report: AdsReport, *, deadline: Deadline | None = None) -> ReportDownload:
        """Start downloading a COMPLETED report's file; an expired URL is replaced by a fresh one, once."""
        try:
            return self._open(report, deadline)
        except Unauthorized:  # S3's 403: the pre-signed URL expired
            log.info("report URL refused; asking for a fresh one", extra={"report_id": report.report_id})
        report = self.get_report(report.profile_id, report.region, report.report_id, deadline=deadline)
        try:
            return self._open(report, deadline)
        except Unauthorized as refused:
            raise ReportUrlExpired("ads", "downloadReport", refused.detail, refused.status, refused.code) from None

    # -- helpers -------------------------------------------------------------------------------------------

    def _open(self, report: AdsReport, deadline: Deadline | None) -> ReportDownload:
        _check_downloadable(report)
        response = self.http.call("downloadReport", "GET", str(report.url), idempotent=True, deadline=deadline,
                                  stream=True)
        return ReportDownload(report, response)

    def _existing(self, profile_id: int, region: Region, report_id: str,
                  deadline: Deadline | None) -> AdsReport | None:
        log.info("identical report request still running; using its report", extra={"report_id": report_id})
        try:
            return self.get_report(profile_id, region, report_id, deadline=deadline)
        except NotFound:  # deleted meanwhile: create again
            return None

    def _auth(self, deadline: Deadline | None) -> BearerAuth:
        return BearerAuth(self._tokens, deadline)

    def _base(self, region: Region) -> str:
        return self._endpoints.base("ads", region)

    def _reports_url(self, region: Region) -> str:
        return f"{self._base(region)}/reporting/reports"

    @staticmethod
    def _scoped(profile_id: int, content_type: str | None = None) -> dict[str, str]:
        headers = {SCOPE_HEADER: str(profile_id)}
        if content_type:
            headers["Content-Type"] = content_type
        return headers


def _report_request(request_body: Mapping[str, Any]) -> bytes:
    body = copy.deepcopy(dict(request_body))
    configuration = body.get("configuration")
    if not isinstance(configuration, dict):
        raise InvalidRequest("ads", "createReport", "the report request needs a configuration object")
    configuration["format"] = REPORT_FORMAT
    return json.dumps(body).encode()


def _check_downloadable(report: AdsReport) -> None:
    if report.failed:
        raise ReportFailed("ads", "downloadReport", report.failure_reason or "the report failed")
    if not report.completed or not report.url:
        raise ReportNotReady("ads", "downloadReport", f"report {report.report_id} is {report.status}")


def _duplicate_of(detail: str | None) -> str | None:
    match = _DUPLICATE_OF.search(detail or "")
    return match.group(1) if match else None


def _json(response: requests.Response, operation: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise AmazonApiError("ads", operation, "the response is not JSON", response.status_code) from None


def _region(region: Region | str) -> Region:
    return region if isinstance(region, Region) else region_of(region)


def _datetime(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
