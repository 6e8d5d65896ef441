"""Selling Partner API Reports: the client (shared/amazon/sp.py) against the sandbox (local/sandbox/sp/), and both
against Amazon's model (tests/specs/reports_2021-06-30.json) and the Sales and Traffic schema.

The sandbox is shared by the whole session: every test that changes its timings, limits or faults goes through a
fixture that restores them, and tests that count reports use a report type of their own.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests

from local.cloud import LocalCloud
from local.sandbox import Sandbox
from local.sandbox.sp import data
from shared import aws
from shared.amazon import sp
from shared.amazon.errors import InvalidRequest, NotFound, OutOfTime, RateLimited
from shared.amazon.http import Deadline, RetryPolicy
from shared.amazon.lwa import TokenProvider
from shared.amazon.regions import Endpoints, Region
from shared.amazon.sp import ProcessingStatus, Report, SpReportsClient
from tests.support import own_tokens, sp_unthrottled, token_requests, wait_until

SPECS = Path(__file__).resolve().parent / "specs"  # Amazon's models, see specs/README.md
MODEL = json.loads((SPECS / "reports_2021-06-30.json").read_text())
SALES_AND_TRAFFIC_SCHEMA = json.loads((SPECS / "sellerSalesAndTrafficReport.json").read_text())
US, DE = "ATVPDKIKX0DER", "A1PA6795UKMFR9"


def conforms(definition: str, instance: Any) -> None:
    """Validate ``instance`` against a definition of the Reports model, its ``#/definitions`` refs resolved."""
    schema = {"$ref": f"#/definitions/{definition}", "definitions": MODEL["definitions"]}
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(instance)


@pytest.fixture
def sandbox(cloud: LocalCloud) -> Iterator[Sandbox]:
    """The sandbox with short timings and no rate limits to speak of (on both sides); restored afterwards."""
    with sp_unthrottled(cloud.sandbox, queued_s=0.15, processing_s=0.15):
        yield cloud.sandbox
    cloud.sandbox.faults.clear()


@pytest.fixture
def tokens(cloud: LocalCloud) -> TokenProvider:
    """An LWA app of its own: its reports, quotas and token requests are its own, whatever else the process does."""
    return own_tokens(cloud.sandbox)


@pytest.fixture
def client(sandbox: Sandbox, tokens: TokenProvider) -> SpReportsClient:
    return SpReportsClient(tokens, Endpoints.from_env(), Region.NA,
                           policy=RetryPolicy(base_delay_s=0.05, max_delay_s=0.5), settle_s=0.6)


def finished(client: SpReportsClient, report_id: str, region: Region = Region.NA) -> Report:
    def probe() -> Report | None:
        report = client.get_report(report_id, region=region)
        return report if report.finished else None

    return wait_until(probe, timeout_s=10, interval_s=0.05)


def own_type() -> str:
    """A report type no other test creates (the sandbox takes any): counts stay exact."""
    return f"GET_TEST_{uuid.uuid4().hex.upper()}"


def creates_of(sandbox: Sandbox, report_type: str, status: int | None = None) -> list[Any]:
    """The createReport requests the sandbox was sent for ``report_type`` (answered ``status``), in order."""
    return [r for r in sandbox.requests.where(api="sp", operation="createReport", status=status)
            if isinstance(r.body, dict) and r.body.get("reportType") == report_type]


def days_ago(days: int) -> datetime:
    return (datetime.now(UTC) - timedelta(days=days)).replace(microsecond=0)


# -- lifecycle and documents ---------------------------------------------------------------------------------------

def test_a_sales_and_traffic_report_runs_to_done_and_its_document_follows_the_schema(client: SpReportsClient,
                                                                                     sandbox: Sandbox) -> None:
    timings = sandbox.sp.timings
    timings.queued_s = timings.processing_s = 600  # each status lasts until it has been seen
    start = days_ago(20)
    report_id = client.create_report(data.SALES_AND_TRAFFIC, [US], data_start_time=start, data_end_time=days_ago(1),
                                     report_options={"dateGranularity": "WEEK", "asinGranularity": "SKU"})
    seen = [client.get_report(report_id).processing_status]
    timings.queued_s = 0
    seen.append(client.get_report(report_id).processing_status)
    timings.processing_s = 0
    report = finished(client, report_id)
    seen.append(report.processing_status)
    document = client.get_report_document(report.report_document_id or "")
    content = json.loads(client.read_document(document))

    assert report_id.isdigit() and seen == ["IN_QUEUE", "IN_PROGRESS", "DONE"]
    assert report.marketplace_ids == (US,) and report.data_start_time == start
    assert report.created_time <= report.processing_start_time <= report.processing_end_time  # type: ignore[operator]
    assert document.compression_algorithm == "GZIP" and "X-Amz-Signature=" in document.url
    jsonschema.validate(content, SALES_AND_TRAFFIC_SCHEMA, format_checker=jsonschema.FormatChecker())
    weeks = [datetime.fromisoformat(entry["date"]) for entry in content["salesAndTrafficByDate"]]
    assert weeks and all(week.isoweekday() == 7 for week in weeks)  # WEEK periods start on Sunday
    assert all("sku" in entry and "childAsin" in entry for entry in content["salesAndTrafficByAsin"])
    assert sum(e["salesByAsin"]["unitsOrdered"] for e in content["salesAndTrafficByAsin"]) == sum(
        e["salesByDate"]["unitsOrdered"] for e in content["salesAndTrafficByDate"])


def test_the_same_request_gives_the_same_document(client: SpReportsClient) -> None:
    def content() -> bytes:
        report = finished(client, client.create_report(data.SALES_AND_TRAFFIC, [DE], data_start_time=days_ago(9),
                                                       data_end_time=days_ago(2)), Region.EU)
        return client.read_document(client.get_report_document(report.report_document_id or "", region=Region.EU))

    first = content()
    assert first == content() and json.loads(first)["salesAndTrafficByDate"][0]["salesByDate"][
        "orderedProductSales"]["currencyCode"] == "EUR"


@pytest.mark.parametrize(("report_type", "first_columns"), [
    ("GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL", ["amazon-order-id", "merchant-order-id", "purchase-date"]),
    ("GET_MERCHANT_LISTINGS_ALL_DATA", ["item-name", "item-description", "listing-id"]),
])
def test_a_flat_file_is_tab_separated_with_a_header_row(client: SpReportsClient, report_type: str,
                                                        first_columns: list[str]) -> None:
    report = finished(client, client.create_report(report_type, [US], data_start_time=days_ago(3),
                                                   data_end_time=days_ago(1)))
    text = client.read_document(client.get_report_document(report.report_document_id or "")).decode()

    header, *lines = text.splitlines()
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
    assert header.split("\t")[:3] == first_columns and rows and len(rows) == len(lines)
    assert all(len(line.split("\t")) == len(header.split("\t")) for line in lines)
    assert any("\t\t" in line for line in lines) and any(line.endswith("\t") for line in lines)  # empty fields


def test_a_document_url_can_serve_content_encoding_gzip(client: SpReportsClient) -> None:
    report = finished(client, client.create_report("GET_MERCHANT_LISTINGS_ALL_DATA", [US]))
    plain = client.get_report_document(report.report_document_id or "")
    encoded = client.get_report_document(report.report_document_id or "", content_encoding_header=True)

    raw = requests.get(plain.url, stream=True, timeout=5).raw.read()
    response = requests.get(encoded.url, timeout=5)

    assert raw[:2] == b"\x1f\x8b" and response.headers["Content-Encoding"] == "gzip"
    assert response.content == gzip.decompress(raw) == client.read_document(encoded)


def test_a_fatal_report_has_a_document_saying_why(client: SpReportsClient, sandbox: Sandbox) -> None:
    sandbox.faults.add("sp", "createReport", outcome="FATAL", times=1)

    report = finished(client, client.create_report("GET_MERCHANT_LISTINGS_ALL_DATA", [US]))
    error = json.loads(client.read_document(client.get_report_document(report.report_document_id or "")))

    assert report.processing_status is ProcessingStatus.FATAL and error["errorDetails"]


def test_a_report_with_no_data_is_cancelled_without_a_document(client: SpReportsClient, sandbox: Sandbox) -> None:
    sandbox.faults.add("sp", "createReport", outcome="CANCELLED", times=1)
    by_fault = finished(client, client.create_report("GET_MERCHANT_LISTINGS_ALL_DATA", [US]))
    too_old = finished(client, client.create_report(data.SALES_AND_TRAFFIC, [US], data_start_time=days_ago(800),
                                                    data_end_time=days_ago(790)))

    for report in (by_fault, too_old):
        assert report.processing_status is ProcessingStatus.CANCELLED and report.report_document_id is None


def test_a_queued_report_can_be_cancelled_and_a_finished_one_cannot(client: SpReportsClient,
                                                                    sandbox: Sandbox) -> None:
    sandbox.sp.timings.queued_s = 30
    queued = client.create_report("GET_MERCHANT_LISTINGS_ALL_DATA", [US])
    client.cancel_report(queued)
    sandbox.sp.timings.queued_s = 0
    done = finished(client, client.create_report("GET_MERCHANT_LISTINGS_ALL_DATA", [US]))

    with pytest.raises(InvalidRequest) as refused:
        client.cancel_report(done.report_id)

    cancelled = client.get_report(queued)
    assert cancelled.processing_status is ProcessingStatus.CANCELLED and cancelled.processing_start_time is None
    assert refused.value.status == 400 and refused.value.code == "InvalidInput" and "DONE" in refused.value.detail


# -- listing -------------------------------------------------------------------------------------------------------

def test_get_reports_pages_newest_first_and_filters(client: SpReportsClient) -> None:
    report_type = own_type()
    created = [client.create_report(report_type, [US]) for _ in range(5)]
    finished(client, created[-1])

    first = client.get_reports([report_type], page_size=2)
    everything = list(client.iter_reports([report_type], page_size=2))
    done = client.get_reports([report_type], processing_statuses=["DONE"], page_size=100)
    elsewhere = client.get_reports([report_type], marketplace_ids=["A2EUQ1WTGCTBG2"])

    assert [r.report_id for r in first.reports] == created[:-3:-1] and first.next_token
    assert [r.report_id for r in everything] == created[::-1]
    assert [r.report_id for r in done.reports] == created[::-1] and not done.next_token
    assert elsewhere.reports == () and elsewhere.next_token is None


def test_get_reports_takes_next_token_alone(client: SpReportsClient, sandbox: Sandbox, tokens: TokenProvider) -> None:
    report_type = own_type()
    for _ in range(2):
        client.create_report(report_type, [US])
    token = client.get_reports([report_type], page_size=1).next_token
    url = f"{sandbox.endpoints['sp']}/na/reports/2021-06-30/reports"
    headers = {"x-amz-access-token": tokens.access_token()}

    with_more = requests.get(url, params={"nextToken": token, "pageSize": 1}, headers=headers, timeout=5)
    alone = requests.get(url, params={"nextToken": token}, headers=headers, timeout=5)
    neither = requests.get(url, params={"pageSize": 5}, headers=headers, timeout=5)

    assert with_more.status_code == neither.status_code == 400 and alone.status_code == 200
    error = with_more.json()["errors"][0]
    assert error["code"] == "InvalidInput" and "only parameter" in error["message"]
    assert len(alone.json()["reports"]) == 1 and "nextToken" not in alone.json()


# -- finding a report an earlier attempt created ------------------------------------------------------------------

def test_find_report_finds_a_created_report_at_once(sandbox: Sandbox, tokens: TokenProvider) -> None:
    slept: list[float] = []
    client = SpReportsClient(tokens, Endpoints.from_env(), Region.NA, sleep=slept.append, settle_s=5.0,
                             policy=RetryPolicy(base_delay_s=0.05, max_delay_s=0.5))
    report_type, since = own_type(), datetime.now(UTC) - sp.CLOCK_SKEW
    start, end = days_ago(3), days_ago(1)
    report_id = client.create_report(report_type, [US], data_start_time=start, data_end_time=end)
    newer = client.create_report(report_type, [US], data_start_time=days_ago(10), data_end_time=end)

    found = client.find_report(report_type, [US], data_start_time=start, data_end_time=end, created_since=since)
    any_times = client.find_report(report_type, [US], created_since=since, deadline=Deadline(30))

    assert found == report_id and any_times == newer  # the newest that matches
    assert slept == []  # no settle sleep: it answers at once


def test_find_report_is_none_when_nothing_matches(client: SpReportsClient) -> None:
    report_type, since = own_type(), datetime.now(UTC) - sp.CLOCK_SKEW
    start, end = days_ago(3), days_ago(1)
    client.create_report(report_type, [US], data_start_time=start, data_end_time=end)

    def find(report_type: str = report_type, marketplace: str = US, start: datetime = start,
             since: datetime = since) -> str | None:
        return client.find_report(report_type, [marketplace], data_start_time=start, data_end_time=end,
                                  created_since=since)

    assert find() is not None
    assert find(start=days_ago(4)) is None
    assert find(report_type=own_type()) is None
    assert find(marketplace=DE) is None  # and asked in Europe, where the marketplace is
    time.sleep(0.2)
    assert find(since=datetime.now(UTC)) is None  # created before


# -- regions and refusals ------------------------------------------------------------------------------------------

def test_the_region_comes_from_the_marketplaces(client: SpReportsClient, sandbox: Sandbox) -> None:
    report_id = client.create_report("GET_MERCHANT_LISTINGS_ALL_DATA", [DE])

    created = [r for r in sandbox.requests.where(api="sp", operation="createReport") if r.path.startswith("/sp/eu/")]
    with pytest.raises(NotFound):
        client.get_report(report_id)  # the client's default region is NA: the report lives in EU
    assert client.get_report(report_id, region=Region.EU).marketplace_ids == (DE,) and created
    with pytest.raises(ValueError, match="several regions"):
        client.create_report("GET_MERCHANT_LISTINGS_ALL_DATA", [US, DE])


def test_bad_requests_are_refused_with_the_sp_error_envelope(client: SpReportsClient) -> None:
    with pytest.raises(InvalidRequest) as two_marketplaces:
        client.create_report(data.SALES_AND_TRAFFIC, [US, "A2EUQ1WTGCTBG2"])
    with pytest.raises(InvalidRequest) as wrong_region:
        client.create_report("GET_MERCHANT_LISTINGS_ALL_DATA", [DE], region=Region.NA)
    with pytest.raises(NotFound) as unknown:
        client.get_report("1")

    assert two_marketplaces.value.code == "InvalidInput" and "one marketplace" in two_marketplaces.value.detail
    assert wrong_region.value.code == "InvalidInput" and DE in wrong_region.value.detail
    assert unknown.value.status == 404 and unknown.value.code == "NotFound"


def test_the_wire_follows_the_official_model(client: SpReportsClient, sandbox: Sandbox,
                                             tokens: TokenProvider) -> None:
    report_id = client.create_report(data.SALES_AND_TRAFFIC, [US], data_start_time=days_ago(5),
                                     data_end_time=days_ago(1), report_options={"dateGranularity": "DAY"})
    document_id = finished(client, report_id).report_document_id
    base = f"{sandbox.endpoints['sp']}/na/reports/2021-06-30"
    headers = {"x-amz-access-token": tokens.access_token()}
    get = lambda path, **params: requests.get(f"{base}{path}", params=params, headers=headers, timeout=5)  # noqa: E731

    sent = [r.body for r in sandbox.requests.where(api="sp", operation="createReport") if r.status == 202]
    created = requests.post(f"{base}/reports", json=sent[-1], headers=headers, timeout=5)
    answers = {"CreateReportResponse": created, "Report": get(f"/reports/{report_id}"),
               "GetReportsResponse": get("/reports", reportTypes=data.SALES_AND_TRAFFIC, pageSize=1),
               "ReportDocument": get(f"/documents/{document_id}")}
    refusals = [get("/reports/404"), get("/reports"), requests.get(f"{base}/reports/1", timeout=5)]

    conforms("CreateReportSpecification", sent[-1])
    for definition, answer in answers.items():
        conforms(definition, answer.json())
        assert answer.headers["x-amzn-RateLimit-Limit"] and answer.headers["x-amzn-RequestId"]
    assert [r.status_code for r in refusals] == [404, 400, 403]
    for refusal in refusals:
        conforms("ErrorList", refusal.json())
    assert refusals[2].json()["errors"][0] == {"code": "Unauthorized", "message": "Access to requested resource is "
                                               "denied.", "details": "The access token you provided is revoked, "
                                               "malformed or invalid."}


# -- rate limits, tokens, timeouts ---------------------------------------------------------------------------------

def test_the_sandbox_throttles_and_the_client_retries(sandbox: Sandbox, tokens: TokenProvider) -> None:
    def sleep(seconds: float) -> None:  # the client waits to retry a throttled call: the quota comes back meanwhile
        sandbox.sp.limits["getReport"] = (5.0, 1.0)
        time.sleep(seconds)

    client = SpReportsClient(tokens, Endpoints.from_env(), Region.NA, sleep=sleep,
                             policy=RetryPolicy(base_delay_s=0.05, max_delay_s=0.5))
    report_id = client.create_report("GET_MERCHANT_LISTINGS_ALL_DATA", [US])
    started = time.time()
    # One call, then none until the client waits to retry (its own limiter stays generous: it lets 429s happen).
    sandbox.sp.limits["getReport"] = (0.001, 1.0)

    reports = [client.get_report(report_id) for _ in range(4)]

    throttled = [r for r in sandbox.requests.where(api="sp", operation="getReport", status=429) if r.time >= started]
    assert {r.report_id for r in reports} == {report_id} and throttled


def test_a_throttled_call_gets_the_quota_error(sandbox: Sandbox, tokens: TokenProvider) -> None:
    sandbox.sp.limits["getReports"] = (0.001, 1.0)
    url = f"{sandbox.endpoints['sp']}/na/reports/2021-06-30/reports"
    call = lambda: requests.get(url, params={"reportTypes": own_type()}, timeout=5,  # noqa: E731
                                headers={"x-amz-access-token": tokens.access_token()})

    answers = [call(), call()]

    assert [a.status_code for a in answers] == [200, 429]
    assert answers[1].json() == {"errors": [{"code": "QuotaExceeded", "message": "You exceeded your quota for the "
                                             "requested resource.", "details": ""}]}
    assert [a.headers["x-amzn-RateLimit-Limit"] for a in answers] == ["0.001"] * 2


def test_a_throttle_with_retry_after_is_waited_out(sandbox: Sandbox, tokens: TokenProvider) -> None:
    slept: list[float] = []
    client = SpReportsClient(tokens, Endpoints.from_env(), Region.NA, sleep=slept.append)
    sandbox.faults.add("sp", "getReports", status=429, retry_after=0.25, times=2)

    page = client.get_reports([own_type()])

    assert page.reports == () and slept == [0.25, 0.25]


def test_the_client_side_limiter_keeps_concurrent_creations_under_the_quota(client: SpReportsClient,
                                                                            sandbox: Sandbox) -> None:
    client.get_reports([own_type()])  # the token and the connection are ready: the creations go out on time
    sandbox.sp.limits["createReport"] = sp.LIMITER.limits["createReport"] = (2.0, 2.0)
    report_type, started = own_type(), time.time()
    # The first alone: the sandbox's bucket starts with it as the client's does, however late the threads start.
    ids = [client.create_report(report_type, [US])]

    threads = [threading.Thread(target=lambda: ids.append(client.create_report(report_type, [US])))
               for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    calls = creates_of(sandbox, report_type)
    assert len(set(ids)) == 6 and [r.status for r in calls] == [202] * 6  # no 429 at all
    assert time.time() - started >= (6 - 2) / 2  # two at once, then one every half second (a little slower)


def test_a_token_expiring_mid_flow_is_refreshed_once(client: SpReportsClient, sandbox: Sandbox,
                                                     tokens: TokenProvider) -> None:
    report_id = client.create_report("GET_MERCHANT_LISTINGS_ALL_DATA", [US])
    refreshes = token_requests(sandbox, tokens.client_id)

    sandbox.lwa.expire_all()
    report = finished(client, report_id)
    document_id = report.report_document_id or ""
    client.get_report_document(document_id)

    assert token_requests(sandbox, tokens.client_id) == refreshes + 1
    assert len([r for r in sandbox.requests.where(api="sp", status=403)
                if r.path.endswith((f"/reports/{report_id}", f"/documents/{document_id}"))]) == 1


def test_a_timed_out_creation_creates_one_report(sandbox: Sandbox, tokens: TokenProvider) -> None:
    report_type = own_type()

    def settle(_seconds: float) -> None:  # the client's wait for its timed-out creation lasts until it was answered
        wait_until(lambda: creates_of(sandbox, report_type, status=202))

    client = SpReportsClient(tokens, Endpoints.from_env(), Region.NA, settle_s=1.0, sleep=settle,
                             policy=RetryPolicy(base_delay_s=0.05, read_timeout_s=0.4))
    sandbox.faults.add("sp", "createReport", delay_s=0.8, times=1)  # answered after the client gave up

    report_id = client.create_report(report_type, [US], data_start_time=days_ago(2), deadline=Deadline(30))

    assert [r.report_id for r in client.iter_reports([report_type])] == [report_id]


def test_the_limiter_gives_up_rather_than_outlive_the_deadline() -> None:
    limiter = sp.RateLimiter({"createReport": (0.0167, 1)}, sleep=lambda s: None)
    limiter.acquire("createReport", Deadline(5))

    with pytest.raises(OutOfTime):
        limiter.acquire("createReport", Deadline(5))
    assert limiter.acquire("createReport", Deadline(120)) > 50  # the next token is a minute away (90% of the rate)


def test_the_sdk_leaves_logging_alone(client: SpReportsClient) -> None:
    client.get_reports([own_type()])
    before = {name: list(logging.getLogger(name).handlers) for name in ("", "spapi", "urllib3")}
    for _ in range(20):
        client.get_reports([own_type()])  # each response builds SDK models

    assert {name: list(logging.getLogger(name).handlers) for name in before} == before
    assert not any(type(h) is logging.StreamHandler for h in logging.getLogger("urllib3").handlers)


def test_the_table_limiter_shares_one_budget_between_containers(cloud: LocalCloud) -> None:
    # Two limiters on one item, as two Lambda containers: the burst is shared, then turns come one interval apart.
    table, prefix = cloud.outputs["ReportRecordsTable"], f"ratelimit#test-{uuid.uuid4().hex[:8]}"
    limits = {"createReport": (2.0, 3.0)}  # one call every 0.5 s, three at once
    now = float(int(time.time()))  # the clock stands still: all at once, however slow the table's answers

    def container() -> sp.TableRateLimiter:
        return sp.TableRateLimiter(lambda: aws.table(table), {"service": "sp_reporting"}, prefix, limits,
                                   headroom=1.0, clock=lambda: now, sleep=lambda seconds: None)  # waits returned

    first, second = container(), container()
    taken = [first.acquire("createReport"), second.acquire("createReport"), first.acquire("createReport"),
             second.acquire("createReport"), first.acquire("createReport")]

    assert taken[:3] == [0.0, 0.0, 0.0]  # the burst, whoever takes it
    assert 0.3 < taken[3] <= 0.5 and 0.8 < taken[4] <= 1.0  # then one turn every 0.5 s, in order
    assert first.acquire("getReport") == 0.0  # an operation without a limit is not limited


def test_a_turn_past_the_deadline_is_rate_limited_and_given_back(cloud: LocalCloud) -> None:
    table, prefix = cloud.outputs["ReportRecordsTable"], f"ratelimit#test-{uuid.uuid4().hex[:8]}"
    now = float(int(time.time()))  # the clock stands still: the turns are where they were, however slow the table
    limiter = sp.TableRateLimiter(lambda: aws.table(table), {"service": "sp_reporting"}, prefix,
                                  {"createReport": (0.1, 1.0)}, headroom=1.0, clock=lambda: now, sleep=lambda s: None)

    assert limiter.acquire("createReport") == 0.0
    with pytest.raises(RateLimited) as limited:
        limiter.acquire("createReport", Deadline(5.0))
    assert 9.0 < limited.value.wait_s <= 10.0  # the next turn is ten seconds away: past the budget
    again = limiter.acquire("createReport")  # the refused turn was given back: this one is no later
    assert 9.0 < again <= 10.0
