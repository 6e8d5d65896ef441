"""Amazon Ads: the sandbox's profiles and reporting v3 (local/sandbox/ads/) through the production client
(shared/amazon/ads.py): lifecycles, downloads, duplicates, lost responses, expiry of URLs and tokens, throttling,
validation. Each test gets a profile of its own, so no other test's report is ever a duplicate of its reports;
every sandbox setting a test changes is put back by its fixtures."""

from __future__ import annotations

import dataclasses
import gzip
import json
import tracemalloc
import uuid
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests

from local.cloud import LocalCloud
from local.sandbox import Sandbox
from local.sandbox.ads import data
from local.sandbox.ads.state import Profile as SandboxProfile
from local.sandbox.ads.state import Timings
from local.sandbox.faults import FaultRule
from shared.amazon.ads import (
    CREATE_REPORT_CONTENT_TYPE,
    AdsClient,
    AdsReport,
    ReportFailed,
    ReportStatus,
    ReportUrlExpired,
)
from shared.amazon.errors import InvalidRequest, NotFound, OutOfTime, Unauthorized
from shared.amazon.http import AmazonHttp, Deadline, RetryPolicy
from shared.amazon.lwa import TokenProvider
from shared.amazon.regions import Endpoints, Region
from tests.support import header, own_tokens, token_requests, wait_until

COLUMNS = ["adGroupId", "campaignId", "impressions", "clicks", "cost", "clickThroughRate", "purchases1d",
           "purchases7d", "purchases14d", "purchases30d", "date"]


class Sleeps(list[float]):
    """The client's sleeps between attempts, recorded instead of slept."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


# -- fixtures ----------------------------------------------------------------------------------------------------

@pytest.fixture
def sandbox(cloud: LocalCloud) -> Sandbox:
    return cloud.sandbox


@pytest.fixture
def profile(sandbox: Sandbox) -> Iterator[SandboxProfile]:
    created = sandbox.ads.add_profile("na")
    yield created
    sandbox.ads.remove_profile(created.profile_id)


@pytest.fixture
def timings(sandbox: Sandbox) -> Iterator[Callable[..., Timings]]:
    """``timings(pending_s=..., processing_s=..., url_expires_s=...)`` sets the sandbox's timings for the test."""
    saved = dataclasses.replace(sandbox.ads.timings)

    def change(**values: float) -> Timings:
        for key, value in values.items():
            setattr(sandbox.ads.timings, key, value)
        return sandbox.ads.timings
    yield change
    change(**dataclasses.asdict(saved))


@pytest.fixture
def fast(timings: Callable[..., Timings]) -> Timings:
    return timings(pending_s=0.1, processing_s=0.2)


@pytest.fixture
def faults(sandbox: Sandbox) -> Iterator[Callable[..., FaultRule]]:
    """``faults(operation, **options)`` adds a fault rule on the Ads API; whatever is left of it ends with the test."""
    added: list[FaultRule] = []

    def add(operation: str, **options: Any) -> FaultRule:
        rule = sandbox.faults.add("ads", operation, **{"times": 1, **options})
        added.append(rule)
        return rule
    yield add
    for rule in added:
        rule.times = 0


@pytest.fixture
def tokens(sandbox: Sandbox) -> TokenProvider:
    """An LWA app of its own: a token refresh here touches no other test, and its token requests are its own."""
    return own_tokens(sandbox)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def ads(tokens: TokenProvider, sleeps: Sleeps) -> AdsClient:
    policy = RetryPolicy(max_attempts=5, base_delay_s=0.05, max_delay_s=30)
    return AdsClient(tokens, Endpoints.from_env(), AmazonHttp("ads", policy, sleep=sleeps))


# -- helpers -----------------------------------------------------------------------------------------------------

def report_request(days: int = 7, **configuration: Any) -> dict[str, Any]:
    end = datetime.now(UTC).date() - timedelta(days=3)
    return {"name": "test report", "startDate": str(end - timedelta(days=days - 1)), "endDate": str(end),
            "configuration": {"adProduct": "SPONSORED_PRODUCTS", "groupBy": ["campaign", "adGroup"],
                              "columns": COLUMNS, "reportTypeId": "spCampaigns", "timeUnit": "DAILY",
                              "format": "GZIP_JSON", **configuration}}


def statuses(sandbox: Sandbox, operation: str, profile: SandboxProfile) -> list[int]:
    """The statuses the sandbox answered ``operation`` with for this profile, in order."""
    return [r.status for r in sent_for(sandbox, operation, profile)]


def sent_for(sandbox: Sandbox, operation: str, profile: SandboxProfile) -> list[Any]:
    """The requests for ``operation`` the sandbox was sent for this profile (its Scope header), in order."""
    return [r for r in sandbox.requests.where(api="ads", operation=operation)
            if header(r, "Amazon-Advertising-API-Scope") == str(profile.profile_id)]


def reports_of(sandbox: Sandbox, profile: SandboxProfile) -> list[str]:
    return [r.report_id for r in sandbox.ads.state.reports.values() if r.profile_id == profile.profile_id]


def finished(ads: AdsClient, report: AdsReport, seen: set[str] | None = None) -> AdsReport:
    def poll() -> AdsReport | None:
        current = ads.get_report(report.profile_id, report.region, report.report_id)
        if seen is not None:
            seen.add(current.status)
        return current if current.done else None
    return wait_until(poll, timeout_s=15, interval_s=0.05)


def download_rows(ads: AdsClient, report: AdsReport) -> tuple[bytes, list[dict[str, Any]]]:
    with ads.download_report(report) as download:
        body = b"".join(download.iter_chunks())
    return body, json.loads(gzip.decompress(body))


def raw_call(sandbox: Sandbox, tokens: TokenProvider, method: str, path: str, *, scope: str | None = None,
             content_type: str | None = CREATE_REPORT_CONTENT_TYPE, token: bool = True,
             body: Any = None) -> requests.Response:
    headers = {"Amazon-Advertising-API-ClientId": tokens.client_id}
    if token:
        headers["Authorization"] = f"Bearer {tokens.access_token()}"
    if scope:
        headers["Amazon-Advertising-API-Scope"] = scope
    if content_type:
        headers["Content-Type"] = content_type
    return requests.request(method, f"{sandbox.endpoints['ads']}/na{path}", headers=headers, timeout=10,
                            data=None if body is None else json.dumps(body))


# -- profiles ----------------------------------------------------------------------------------------------------

def test_each_region_lists_its_profiles_without_a_scope(ads: AdsClient, sandbox: Sandbox) -> None:
    demo_id = int(sandbox.account.profile_id)
    demo = next(p for p in ads.list_profiles("NA") if p.profile_id == demo_id)
    assert (demo.region, demo.marketplace_id, demo.country_code, demo.currency_code, demo.timezone) == (
        Region.NA, sandbox.account.marketplace_id, "US", "USD", "America/Los_Angeles")
    assert demo.account_info.type in ("seller", "vendor", "agency") and demo.account_info.id
    assert [(p.country_code, p.currency_code) for p in ads.list_profiles(Region.EU)] == [("UK", "GBP")]
    assert [(p.country_code, p.timezone) for p in ads.list_profiles("Far East")] == [("JP", "Asia/Tokyo")]
    assert {p.region for p in ads.list_all_profiles()} == set(Region)
    assert demo_id not in {p.profile_id for p in ads.list_profiles("NA", profile_types=["seller"])}

    listed = sandbox.requests.where(api="ads", operation="listProfiles")[-1]
    assert listed.status == 200 and header(listed, "Amazon-Advertising-API-Scope") is None


# -- the report lifecycle ----------------------------------------------------------------------------------------

def test_a_report_completes_and_downloads_with_exactly_the_requested_columns(
        ads: AdsClient, profile: SandboxProfile, timings: Callable[..., Timings]) -> None:
    timings(pending_s=0, processing_s=600)  # processing from the first look until it has been seen
    request = report_request()
    created = ads.create_report(profile.profile_id, "NA", request)
    assert created.status is ReportStatus.PENDING and created.url is None
    nullable = ("failureReason", "fileSize", "generatedAt", "urlExpiresAt")
    assert {key: created.raw[key] for key in nullable} == dict.fromkeys(nullable)  # present, as null
    assert created.configuration["filters"] is None and created.name == "test report"

    seen = {ads.get_report(profile.profile_id, "NA", created.report_id).status}
    timings(processing_s=0)
    done = finished(ads, created, seen)
    assert done.status is ReportStatus.COMPLETED and seen >= {ReportStatus.PROCESSING, ReportStatus.COMPLETED}
    assert done.generated_at is not None and done.url_expires_at is not None
    assert done.url_expires_at > datetime.now(UTC) + timedelta(minutes=59)
    assert "url=" not in repr(done) and "X-Amz-Signature" not in repr(done)

    body, rows = download_rows(ads, done)
    assert len(body) == done.file_size
    days = {str(date.fromisoformat(request["startDate"]) + timedelta(days=d)) for d in range(7)}
    assert rows and {row["date"] for row in rows} == days
    assert all(set(row) == set(COLUMNS) and len(row) == len(COLUMNS) for row in rows)
    assert all(type(row[key]) is int for row in rows for key in ("campaignId", "adGroupId", "impressions"))
    assert any(value is None for row in rows for value in row.values())
    assert download_rows(ads, finished(ads, done))[0] == body  # generated deterministically


def test_a_summary_report_has_the_range_in_each_row_and_the_size_asked_for(
        ads: AdsClient, sandbox: Sandbox, profile: SandboxProfile, fast: Timings) -> None:
    columns = ["campaignId", "adId", "advertisedAsin", "advertisedSku", "impressions", "cost", "startDate", "endDate"]
    request = report_request(reportTypeId="spAdvertisedProduct", groupBy=["advertiser"], columns=columns,
                             timeUnit="SUMMARY")
    sandbox.ads.set_report_rows(profile.profile_id, 5000)
    _, rows = download_rows(ads, finished(ads, ads.create_report(profile.profile_id, "NA", request)))
    assert len(rows) == 5000 and all(set(row) == set(columns) for row in rows)
    assert {(row["startDate"], row["endDate"]) for row in rows} == {(request["startDate"], request["endDate"])}
    assert len({row["adId"] for row in rows}) == 5000


def test_a_report_can_fail_with_a_reason(ads: AdsClient, profile: SandboxProfile, fast: Timings,
                                         faults: Callable[..., FaultRule]) -> None:
    faults("createReport", outcome="FAILED")
    done = finished(ads, ads.create_report(profile.profile_id, "NA", report_request()))
    assert done.status is ReportStatus.FAILED and done.failure_reason
    assert done.url is None and done.file_size is None
    with pytest.raises(ReportFailed, match="internal error"):
        ads.download_report(done)


def test_only_a_pending_report_can_be_deleted(ads: AdsClient, sandbox: Sandbox, profile: SandboxProfile,
                                              timings: Callable[..., Timings]) -> None:
    timings(pending_s=60, processing_s=60)
    pending = ads.create_report(profile.profile_id, "NA", report_request())
    ads.delete_report(profile.profile_id, "NA", pending.report_id)
    with pytest.raises(NotFound):
        ads.get_report(profile.profile_id, "NA", pending.report_id)
    again = ads.create_report(profile.profile_id, "NA", report_request())  # no longer a duplicate of anything
    assert again.report_id != pending.report_id

    timings(pending_s=0)
    assert ads.get_report(profile.profile_id, "NA", again.report_id).status is ReportStatus.PROCESSING
    with pytest.raises(InvalidRequest, match="only a PENDING report can be deleted"):
        ads.delete_report(profile.profile_id, "NA", again.report_id)
    assert statuses(sandbox, "deleteReport", profile) == [200, 400]


def test_an_unknown_report_is_not_found(ads: AdsClient, sandbox: Sandbox, tokens: TokenProvider,
                                        profile: SandboxProfile) -> None:
    response = raw_call(sandbox, tokens, "GET", "/reporting/reports/no-such-report", scope=str(profile.profile_id))
    assert (response.status_code, response.json()) == (404, {"code": "404", "detail": "Not Found"})
    with pytest.raises(NotFound):
        ads.get_report(profile.profile_id, "NA", str(uuid.uuid4()))


# -- duplicates and lost responses -------------------------------------------------------------------------------

def test_an_identical_request_gets_the_running_report(ads: AdsClient, sandbox: Sandbox, profile: SandboxProfile,
                                                      timings: Callable[..., Timings]) -> None:
    timings(pending_s=60)
    first = ads.create_report(profile.profile_id, "NA", report_request())
    second = ads.create_report(profile.profile_id, "NA", {**report_request(), "name": "another name"})
    assert second.report_id == first.report_id
    assert statuses(sandbox, "createReport", profile) == [200, 425]
    assert reports_of(sandbox, profile) == [first.report_id]


def test_a_creation_whose_response_was_lost_is_sent_again_and_makes_one_report(
        ads: AdsClient, sandbox: Sandbox, profile: SandboxProfile, timings: Callable[..., Timings]) -> None:
    timings(pending_s=60)
    sandbox.ads.lose_create_responses(times=1, status=502)  # created, but the caller hears 502
    try:
        report = ads.create_report(profile.profile_id, "NA", report_request())
    finally:
        while sandbox.ads.state.take_lost_response() is not None:
            pass
    assert statuses(sandbox, "createReport", profile) == [502, 425]
    assert reports_of(sandbox, profile) == [report.report_id]


def test_a_creation_refused_with_5xx_is_sent_again(ads: AdsClient, sandbox: Sandbox, profile: SandboxProfile,
                                                   faults: Callable[..., FaultRule]) -> None:
    faults("createReport", status=503)  # refused before it took effect
    report = ads.create_report(profile.profile_id, "NA", report_request())
    assert statuses(sandbox, "createReport", profile) == [503, 200]
    assert reports_of(sandbox, profile) == [report.report_id]


def test_a_duplicate_answer_naming_no_report_is_waited_out(ads: AdsClient, sandbox: Sandbox, sleeps: Sleeps,
                                                           profile: SandboxProfile,
                                                           faults: Callable[..., FaultRule]) -> None:
    faults("createReport", status=425)
    report = ads.create_report(profile.profile_id, "NA", report_request())
    assert statuses(sandbox, "createReport", profile) == [425, 200]
    assert len(sleeps) == 1 and reports_of(sandbox, profile) == [report.report_id]


# -- expiry of URLs and tokens -----------------------------------------------------------------------------------

def test_an_expired_download_url_is_refused_and_the_client_gets_a_fresh_one(
        ads: AdsClient, sandbox: Sandbox, profile: SandboxProfile, timings: Callable[..., Timings]) -> None:
    timings(pending_s=0, processing_s=0, url_expires_s=0)
    stale = finished(ads, ads.create_report(profile.profile_id, "NA", report_request()))
    refused = requests.get(str(stale.url), timeout=10)
    assert refused.status_code == 403 and b"<Code>AccessDenied</Code>" in refused.content
    with pytest.raises(ReportUrlExpired):
        ads.download_report(stale)  # the fresh URL has expired too

    timings(url_expires_s=3600)
    _, rows = download_rows(ads, stale)
    assert rows
    downloads = [r.status for r in sandbox.requests.where(api="files", operation="download")
                 if stale.report_id in r.path]
    assert downloads == [403, 403, 403, 403, 200]


def test_an_access_token_expiring_mid_flow_is_refreshed_once(ads: AdsClient, sandbox: Sandbox, tokens: TokenProvider,
                                                             profile: SandboxProfile) -> None:
    created = ads.create_report(profile.profile_id, "NA", report_request())
    refreshes = token_requests(sandbox, tokens.client_id)
    sandbox.lwa.expire_all()
    assert ads.get_report(profile.profile_id, "NA", created.report_id).report_id == created.report_id
    assert token_requests(sandbox, tokens.client_id) == refreshes + 1
    assert statuses(sandbox, "getReport", profile) == [401, 200]


# -- throttling and time budgets ---------------------------------------------------------------------------------

def test_throttling_is_retried_with_and_without_retry_after(ads: AdsClient, sandbox: Sandbox, sleeps: Sleeps,
                                                            profile: SandboxProfile,
                                                            faults: Callable[..., FaultRule]) -> None:
    faults("createReport", status=429)  # report creation's 429s carry no Retry-After (apis.md §2.4)
    created = ads.create_report(profile.profile_id, "NA", report_request())
    assert statuses(sandbox, "createReport", profile) == [429, 200]
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.05  # exponential backoff with full jitter

    faults("getReport", status=429, retry_after=7)
    ads.get_report(profile.profile_id, "NA", created.report_id)
    assert statuses(sandbox, "getReport", profile) == [429, 200]
    assert sleeps[1:] == [7]  # the server's Retry-After


def test_a_retry_the_deadline_cannot_afford_is_not_waited_for(ads: AdsClient, sandbox: Sandbox, sleeps: Sleeps,
                                                              profile: SandboxProfile,
                                                              faults: Callable[..., FaultRule]) -> None:
    faults("getReport", status=429, retry_after=20)
    with pytest.raises(OutOfTime):
        ads.get_report(profile.profile_id, "NA", str(uuid.uuid4()), deadline=Deadline(5))
    assert sleeps == [] and statuses(sandbox, "getReport", profile) == [429]


# -- validation --------------------------------------------------------------------------------------------------

def test_a_report_request_needs_the_vendor_content_type_a_scope_and_a_token(
        sandbox: Sandbox, tokens: TokenProvider, profile: SandboxProfile) -> None:
    scope = str(profile.profile_id)
    response = raw_call(sandbox, tokens, "POST", "/reporting/reports", scope=scope, content_type="application/json",
                        body=report_request())
    assert response.status_code == 415 and CREATE_REPORT_CONTENT_TYPE in response.json()["detail"]
    response = raw_call(sandbox, tokens, "POST", "/reporting/reports", body=report_request())
    assert (response.status_code, response.json()["detail"]) == (401, "Scope header is missing")
    response = raw_call(sandbox, tokens, "POST", "/reporting/reports", scope="123", body=report_request())
    assert response.status_code == 401
    response = raw_call(sandbox, tokens, "POST", "/reporting/reports", scope=scope, token=False,
                        body=report_request())
    assert (response.status_code, response.json()["code"]) == (401, "UNAUTHORIZED")
    response = raw_call(sandbox, tokens, "GET", "/v2/profiles", token=False, content_type=None)
    assert response.status_code == 401 and "details" in response.json()  # v2's error shape
    assert reports_of(sandbox, profile) == []


@pytest.mark.parametrize(("change", "words"), [
    ({"groupBy": []}, "groupBy must be a non-empty list"),
    ({"columns": []}, "columns must be a non-empty list"),
    ({"timeUnit": "WEEKLY"}, "timeUnit 'WEEKLY' is not valid"),
    ({"groupBy": ["searchTerm"]}, "groupBy searchTerm is not valid for reportTypeId spCampaigns"),
    ({"reportTypeId": "spNothing"}, "not a valid report type"),
    ({"adProduct": "SPONSORED_BRANDS"}, "expected SPONSORED_PRODUCTS"),
    ({"timeUnit": "SUMMARY"}, "columns date cannot be used with timeUnit SUMMARY"),
    ({"days": 32}, "32 days exceeds the maximum of 31 days"),
    ({"startDate": "2020-01-01", "endDate": "2020-01-07"}, "older than the 95 days"),
    ({"endDate": "July 10"}, "endDate is required in the format YYYY-MM-DD"),
])
def test_invalid_report_requests_are_answered_400_with_what_is_wrong(
        sandbox: Sandbox, tokens: TokenProvider, profile: SandboxProfile, change: dict[str, Any], words: str) -> None:
    change = dict(change)
    request = report_request(days=change.pop("days", 7))
    request.update({key: change.pop(key) for key in ("startDate", "endDate") if key in change})
    request["configuration"].update(change)
    response = raw_call(sandbox, tokens, "POST", "/reporting/reports", scope=str(profile.profile_id), body=request)
    assert response.status_code == 400 and response.json()["code"] == "400"
    assert words in response.json()["detail"]


def test_the_client_always_asks_for_gzip_json_and_reports_bad_requests(ads: AdsClient, sandbox: Sandbox,
                                                                        profile: SandboxProfile) -> None:
    request = report_request(format="CSV")
    ads.create_report(profile.profile_id, "NA", request)
    assert request["configuration"]["format"] == "CSV"  # the caller's request is left as it was
    sent = sent_for(sandbox, "createReport", profile)
    assert sent[-1].body["configuration"]["format"] == "GZIP_JSON"
    assert header(sent[-1], "Content-Type") == CREATE_REPORT_CONTENT_TYPE
    with pytest.raises(InvalidRequest, match="groupBy must be a non-empty list") as refused:
        ads.create_report(profile.profile_id, "NA", report_request(groupBy=[]))
    assert refused.value.status == 400
    with pytest.raises(Unauthorized):
        ads.create_report(12345, "NA", report_request())


# -- run-time settings and the generated files -------------------------------------------------------------------

def test_settings_change_over_http(ads: AdsClient, sandbox: Sandbox, profile: SandboxProfile, fast: Timings) -> None:
    url = f"{sandbox.endpoints['ads']}/_sandbox/settings"
    assert requests.put(url, json={"rows_per_report": -1}, timeout=10).status_code == 400
    assert requests.put(url, json={"rows_per_report": 7}, timeout=10).json()["rows_per_report"] == 7
    try:
        _, rows = download_rows(ads, finished(ads, ads.create_report(profile.profile_id, "NA", report_request())))
    finally:
        requests.put(url, json={"rows_per_report": None}, timeout=10)
    assert len(rows) == 7 and sandbox.ads.rows_per_report is None


def test_report_files_stream_in_constant_memory_and_are_sized_by_bytes() -> None:
    spec = data.ReportSpec(tuple(COLUMNS), "DAILY", date(2024, 1, 1), date(2024, 1, 31), rows=0,
                           group_by=("campaign", "adGroup"), seed=7)
    spec = dataclasses.replace(spec, rows=data.rows_for_bytes(spec, 8_000_000))
    tracemalloc.start()
    try:
        inflate, size, largest = zlib.decompressobj(31), 0, 0
        for chunk in data.chunks(spec):
            largest = max(largest, len(chunk))
            size += len(inflate.decompress(chunk))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 7_200_000 < size < 8_800_000 and inflate.eof
    assert peak < 8_000_000 and largest < 1_000_000
