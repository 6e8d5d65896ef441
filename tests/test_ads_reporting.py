"""The Amazon Ads reporting service, end to end on the local cloud against the sandbox's Amazon Ads: request ->
report -> file in the reports bucket; faults, duplicates, schedules, profiles and backfills."""

from __future__ import annotations

import gzip
import json
import re
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from amci.inbox import Inbox
from local.cloud import LocalCloud
from local.sandbox.faults import Faults
from shared import aws
from tests.support import (
    ads_calls,
    answer,
    ask,
    header,
    manage_schedule,
    outage_until,
    queue_idle,
    revoked_credentials,
    second_credentials,
    send,
    wait_until,
)

COLUMNS = ["campaignId", "campaignName", "impressions", "clicks", "cost", "sales14d"]


pytestmark = pytest.mark.usefixtures("fast_ads")


def profile(cloud: LocalCloud, region: str = "na") -> str:
    """A profile of its own for the test, so the sandbox's requests are the test's."""
    return str(cloud.sandbox.ads.add_profile(region).profile_id)


def report_request(profile_id: str, **fields: Any) -> dict[str, Any]:
    """The AWS Solution's payload (upstream.md §4.1), relative dates and all."""
    return {"profileId": profile_id, "region": "North America", "requestBody": {
        "startDate": "TODAY(-2)", "endDate": "TODAY(-1)", "configuration": {
            "adProduct": "SPONSORED_PRODUCTS", "groupBy": ["campaign"], "columns": COLUMNS,
            "reportTypeId": "spCampaigns", "timeUnit": "SUMMARY", "format": "JSON"}}, **fields}


def creates(cloud: LocalCloud, profile_id: str) -> list[Any]:
    return ads_calls(cloud, profile_id, "createReport")


def reports_made(cloud: LocalCloud, profile_id: str) -> list[Any]:
    """The reports the sandbox made for the profile (a lost response or a 425 makes none)."""
    return [r for r in cloud.sandbox.ads.state.reports.values() if r.profile_id == int(profile_id)]


def stored(uri: str) -> tuple[bytes, dict[str, Any]]:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    found = aws.client("s3").get_object(Bucket=bucket, Key=key)
    return found["Body"].read(), found


def test_a_report_lands_in_the_reports_bucket_with_its_metadata(cloud: LocalCloud, inbox: Inbox) -> None:
    profile_id = profile(cloud)
    note = ask(cloud, inbox, "ads_reporting", report_request(profile_id, tableName="campaigns"), timeout_s=60)

    assert note.attributes["status"] == "SUCCEEDED", note.body["summary"]
    details = note.body["details"]
    day = (datetime.now(UTC).date() - timedelta(days=2)).isoformat()
    assert details["s3Uri"] == (f"s3://{cloud.outputs['ReportsBucket']}/adtech/ads_report/campaigns/"
                                f"report_date={day}/report-{details['reportId']}.json.gz")
    data, found = stored(details["s3Uri"])
    rows = json.loads(gzip.decompress(data))
    assert rows and set(rows[0]) == set(COLUMNS)
    assert details["size"] == len(data) == found["ContentLength"]
    metadata = found["Metadata"]
    assert metadata["profile-id"] == profile_id and metadata["report-type"] == "spCampaigns"
    assert metadata["report-id"] == details["reportId"] and metadata["table-name"] == "campaigns"
    assert metadata["start-date"] == day and datetime.fromisoformat(metadata["requested-at"]).tzinfo is not None
    assert found["ServerSideEncryption"] == "aws:kms"
    sent = creates(cloud, profile_id)[0].body
    assert sent["configuration"]["format"] == "GZIP_JSON"  # forced
    assert sent["startDate"] == day  # resolved when handled


def test_the_table_name_defaults_to_profile_and_report_type(cloud: LocalCloud, inbox: Inbox) -> None:
    profile_id = profile(cloud)
    note = ask(cloud, inbox, "ads_reporting", report_request(profile_id), timeout_s=60)

    assert note.attributes["status"] == "SUCCEEDED", note.body["summary"]
    assert f"/adtech/ads_report/{profile_id}-spCampaigns/report_date=" in note.body["details"]["s3Uri"]


def test_a_duplicated_request_makes_one_report(cloud: LocalCloud, inbox: Inbox) -> None:
    profile_id = profile(cloud)
    request = {**report_request(profile_id), "requestId": f"dup-{uuid.uuid4().hex[:8]}"}

    for _ in range(3):
        send(cloud, "ads_reporting", dict(request))
    note = answer(inbox, request["requestId"], timeout_s=60)

    assert note.attributes["status"] == "SUCCEEDED", note.body["summary"]
    assert len(creates(cloud, profile_id)) == 1 and len(reports_made(cloud, profile_id)) == 1
    wait_until(lambda: queue_idle(cloud.request_queue_url("ads_reporting")), 30)
    assert len([n for n in inbox.drain() if n.body.get("request_id") == request["requestId"]]) == 1


def test_a_failed_report_is_notified_with_amazons_reason(cloud: LocalCloud, inbox: Inbox, faults: Faults) -> None:
    faults.add("ads", "createReport", outcome="FAILED", times=1)
    note = ask(cloud, inbox, "ads_reporting", report_request(profile(cloud)), timeout_s=60)

    assert note.attributes["status"] == "FAILED"
    assert "Report generation failed" in note.body["summary"]
    assert note.body["details"]["apiStatus"] == "FAILED" and note.body["details"]["s3Uri"] is None


def test_a_fault_outcome_amazon_ads_cannot_produce_is_refused(cloud: LocalCloud, faults: Faults) -> None:
    expected = "outcome: ads createReport can end FAILED, not 'CANCELLED'"  # Amazon's reports COMPLETE or FAIL
    with pytest.raises(ValueError, match=re.escape(expected)):
        faults.add("ads", "createReport", outcome="CANCELLED")
    with pytest.raises(ValueError, match="outcome: ads getReport creates nothing a fault can end"):
        faults.add("ads", "getReport", outcome="FAILED")
    refused = requests.post(f"{cloud.sandbox.endpoints['admin']}/faults", timeout=10,
                            json={"api": "ads", "operation": "createReport", "outcome": "CANCELLED"})

    assert refused.status_code == 400 and refused.json()["message"] == expected
    assert faults.describe() == []  # none was added


def test_throttling_server_errors_and_lost_responses_still_make_one_report(
        cloud: LocalCloud, inbox: Inbox, faults: Faults) -> None:
    profile_id, fast = profile(cloud), cloud.sandbox.ads.timings
    faults.add("ads", "createReport", status=429, retry_after=0.2, times=2)
    faults.add("ads", "getReport", status=503, times=3)
    cloud.sandbox.ads.lose_create_responses(1)  # the first creation that gets through answers 502
    # Amazon's 425 names a duplicate while it is running: the report stays pending (as real ones do, for minutes)
    # until the retry has come, however busy the machine.
    cloud.sandbox.ads.state.timings = replace(fast, pending_s=600)
    try:
        request_id = send(cloud, "ads_reporting", report_request(profile_id))
        wait_until(lambda: ads_calls(cloud, profile_id, "createReport", status=425), 60)
        cloud.sandbox.ads.state.timings = replace(fast, pending_s=0)  # then it goes on
        note = answer(inbox, request_id, timeout_s=90)
    finally:
        cloud.sandbox.ads.state.timings = fast

    assert note.attributes["status"] == "SUCCEEDED", note.body["summary"]
    assert [r.status for r in creates(cloud, profile_id)][:4] == [429, 429, 502, 425]  # 425: the lost one named
    assert len(reports_made(cloud, profile_id)) == 1  # and reused


def test_expired_tokens_and_an_outage_while_waiting(cloud: LocalCloud, inbox: Inbox, faults: Faults) -> None:
    profile_id, fast = profile(cloud), cloud.sandbox.ads.timings
    cloud.sandbox.ads.state.timings = replace(fast, processing_s=600)  # not ready until the outage has been met
    try:
        request_id = send(cloud, "ads_reporting", report_request(profile_id))
        wait_until(lambda: ads_calls(cloud, profile_id, "getReport"), 30)
        expired_at = time.time()
        cloud.sandbox.lwa.expire_all()
        outage_until(faults, "ads", lambda: ads_calls(cloud, profile_id, "getReport", since=expired_at, status=503))
        cloud.sandbox.ads.state.timings = replace(fast, processing_s=0)  # ready as soon as the outage is over
        note = answer(inbox, request_id, timeout_s=90)
    finally:
        cloud.sandbox.ads.state.timings = fast

    assert note.attributes["status"] == "SUCCEEDED", note.body["summary"]
    since = [r.status for r in ads_calls(cloud, profile_id, since=expired_at)]
    assert 503 in since and 401 in since  # the outage was met, then the expired token refused
    refreshed = cloud.sandbox.requests.where(api="lwa", operation="token", status=200)
    assert any(r.time >= expired_at for r in refreshed)


@pytest.mark.parametrize(("region", "named"), [("fe", "FE"), ("eu", "Europe")])
def test_a_report_is_asked_of_the_profiles_region(cloud: LocalCloud, inbox: Inbox, region: str, named: str) -> None:
    profile_id = profile(cloud, region)
    note = ask(cloud, inbox, "ads_reporting", report_request(profile_id, region=named), timeout_s=60)

    assert note.attributes["status"] == "SUCCEEDED", note.body["summary"]
    assert {r.path.split("/")[2] for r in ads_calls(cloud, profile_id)} == {region}  # /ads/<region>/...
    assert stored(note.body["details"]["s3Uri"])[1]["Metadata"]["region"] == region.upper()


def test_a_profile_asked_of_another_region_is_rejected_with_amazons_answer(cloud: LocalCloud, inbox: Inbox) -> None:
    profile_id = profile(cloud, "eu")
    note = ask(cloud, inbox, "ads_reporting", report_request(profile_id, region="NA"), timeout_s=60)

    assert note.attributes["status"] == "REJECTED", note.body["summary"]
    assert "ADS refused the report" in note.body["summary"]
    # Once, then once more with a fresh token: asking again changes nothing.
    assert [r.status for r in creates(cloud, profile_id)] == [401, 401]


def test_the_auth_id_is_honoured(cloud: LocalCloud, inbox: Inbox) -> None:
    profile_id, (auth_id, client_id) = profile(cloud), second_credentials(cloud)
    note = ask(cloud, inbox, "ads_reporting", report_request(profile_id, authId=auth_id), timeout_s=60)

    assert note.attributes["status"] == "SUCCEEDED", note.body["summary"]
    # Every call made with the second credential set's app (its token and ClientId go together), not the default.
    assert {header(r, "Amazon-Advertising-API-ClientId") for r in ads_calls(cloud, profile_id)} == {client_id}


def test_an_invalid_request_is_rejected_naming_the_field(cloud: LocalCloud, inbox: Inbox) -> None:
    bad = report_request(profile(cloud), region="Mars")
    note = ask(cloud, inbox, "ads_reporting", bad)
    assert note.attributes["status"] == "REJECTED"
    assert "region: expected one of North America, Europe or APAC" in note.body["summary"]

    too_long = report_request(profile(cloud))
    too_long["requestBody"] = {**too_long["requestBody"], "startDate": "TODAY(-40)"}
    note = ask(cloud, inbox, "ads_reporting", too_long)
    assert note.attributes["status"] == "REJECTED"
    assert "requestBody.endDate: expected at most 31 days after startDate for spCampaigns" in note.body["summary"]


def test_amazon_refusing_the_report_is_a_rejection_with_its_message(cloud: LocalCloud, inbox: Inbox) -> None:
    request = report_request(profile(cloud))
    request["requestBody"]["configuration"]["groupBy"] = ["searchTerm"]  # not a grouping of spCampaigns
    note = ask(cloud, inbox, "ads_reporting", request, timeout_s=60)

    assert note.attributes["status"] == "REJECTED"
    assert "ADS refused the report" in note.body["summary"] and "groupBy" in note.body["summary"]


def test_profiles_are_listed_across_regions(cloud: LocalCloud, inbox: Inbox) -> None:
    eu, fe = cloud.sandbox.ads.add_profile("eu"), cloud.sandbox.ads.add_profile("fe")
    note = ask(cloud, inbox, "ads_reporting", {"region": ["North America", "Europe", "APAC"], "authId": None})

    assert note.attributes["status"] == "SUCCEEDED", note.body["summary"]
    profiles = note.body["details"]["profiles"]
    assert set(profiles) == {"NA", "EU", "FE"}
    assert all(isinstance(found, list) for found in profiles.values()), profiles  # each region answered a list
    assert eu.profile_id in {p["profile_id"] for p in profiles["EU"]}
    assert fe.profile_id in {p["profile_id"] for p in profiles["FE"]}
    assert int(cloud.sandbox.account.profile_id) in {p["profile_id"] for p in profiles["NA"]}


def test_a_backfill_of_ninety_days_is_split_within_the_report_types_range(cloud: LocalCloud, inbox: Inbox) -> None:
    profile_id = profile(cloud)
    today = datetime.now(UTC).date()  # the service's today, whatever the machine's time zone
    first, last = today - timedelta(days=90), today - timedelta(days=1)
    body = report_request(profile_id)["requestBody"]
    note = ask(cloud, inbox, "ads_reporting", {
        **report_request(profile_id), "requestType": "backfillReports", "startDate": first.isoformat(),
        "endDate": "TODAY(-1)", "requestBody": {k: v for k, v in body.items() if k not in ("startDate", "endDate")}})
    assert note.attributes["status"] == "SUCCEEDED", note.body["summary"]
    assert note.body["details"]["windows"] == 3
    backfill_id = note.body["details"]["backfillId"]
    outcomes = [answer(inbox, f"{backfill_id}-w{i:03d}", timeout_s=90) for i in range(3)]

    assert [n.attributes["status"] for n in outcomes] == ["SUCCEEDED"] * 3
    ranges = sorted((r.body["startDate"], r.body["endDate"]) for r in creates(cloud, profile_id))
    assert ranges == [(first.isoformat(), (first + timedelta(days=30)).isoformat()),
                      ((first + timedelta(days=31)).isoformat(), (first + timedelta(days=61)).isoformat()),
                      ((first + timedelta(days=62)).isoformat(), last.isoformat())]


def test_a_scheduled_report_fires_by_itself_and_schedules_are_managed(cloud: LocalCloud, inbox: Inbox) -> None:
    profile_id, name = profile(cloud), f"daily-{uuid.uuid4().hex[:6]}"
    created = ask(cloud, inbox, "ads_reporting", {  # the AWS Solution's schedule payload
        "report_request": report_request(profile_id, tableName="scheduled"), "schedule_expression": "rate(1 minute)",
        "rule_name": name, "rule_description": "every minute"})
    assert created.attributes["status"] == "SUCCEEDED", created.body["summary"]
    try:
        fired = inbox.wait_for(lambda n: n.body.get("details", {}).get("scheduleName") == name
                               and n.attributes["requestType"] == "createReport", timeout_s=60)
        assert fired.attributes["status"] == "SUCCEEDED", fired.body["summary"]
        assert "/adtech/ads_report/scheduled/" in fired.body["details"]["s3Uri"]
        manage_schedule(cloud, inbox, "ads_reporting", name, report_request(profile_id, tableName="scheduled"))
    finally:  # a failure must not leave the schedule firing for the rest of the session
        ask(cloud, inbox, "ads_reporting", {"rule_name": name})  # the AWS Solution's delete shape


def test_reports_are_listed_newest_first_and_by_tenant(cloud: LocalCloud, inbox: Inbox) -> None:
    tenant = f"list{uuid.uuid4().hex[:8]}"
    ids = [send(cloud, "ads_reporting", report_request(profile(cloud), customerId=tenant)) for _ in range(2)]
    notes = [answer(inbox, request_id, timeout_s=60) for request_id in ids]
    assert {n.attributes["tenantId"] for n in notes} == {tenant}  # the tenant's subscription gets them

    everything = ask(cloud, inbox, "ads_reporting", {"requestType": "listReports", "limit": 50})
    listed = ask(cloud, inbox, "ads_reporting", {"requestType": "listReports", "customerId": tenant})

    reports = listed.body["details"]["reports"]
    assert {r["requestId"] for r in reports} == set(ids)
    assert {r["reportStatus"] for r in reports} == {"SUCCEEDED"}
    created = [r["createdAt"] for r in everything.body["details"]["reports"]]
    assert len(created) >= 2 and created == sorted(created, reverse=True)


def test_an_expired_download_url_is_asked_for_again(cloud: LocalCloud, inbox: Inbox, faults: Faults) -> None:
    faults.add("files", "download", status=403, times=1)  # as S3 refuses a pre-signed URL past its expiry
    note = ask(cloud, inbox, "ads_reporting", report_request(profile(cloud)), timeout_s=90)

    assert note.attributes["status"] == "SUCCEEDED", note.body["summary"]
    downloads = [r.status for r in cloud.sandbox.requests.where(api="files", operation="download")]
    assert 403 in downloads and downloads[-1] == 200


def test_slow_responses_are_waited_for(cloud: LocalCloud, inbox: Inbox, faults: Faults) -> None:
    profile_id = profile(cloud)
    slow = faults.add("ads", "getReport", delay_s=1.5, times=2)
    note = ask(cloud, inbox, "ads_reporting", report_request(profile_id), timeout_s=90)

    assert note.attributes["status"] == "SUCCEEDED", note.body["summary"]
    assert slow.times == 0  # both slow answers were given
    looks = ads_calls(cloud, profile_id, "getReport")
    assert len(looks) >= 2 and {r.status for r in looks} == {200}  # waited for, not given up on


def test_revoked_credentials_end_in_an_error_notification(cloud: LocalCloud, inbox: Inbox) -> None:
    profile_id = profile(cloud)
    note = ask(cloud, inbox, "ads_reporting", report_request(profile_id, authId=revoked_credentials()),
               timeout_s=90)

    assert note.attributes["status"] == "ERROR"
    assert "AuthorizationFailed" in note.body["summary"]
    assert ads_calls(cloud, profile_id) == []  # nothing reached Amazon Ads


def test_a_request_id_reused_for_another_report_is_rejected(cloud: LocalCloud, inbox: Inbox) -> None:
    profile_id, request_id = profile(cloud), f"reuse-{uuid.uuid4().hex[:8]}"
    first = ask(cloud, inbox, "ads_reporting", report_request(profile_id, requestId=request_id), timeout_s=60)
    send(cloud, "ads_reporting", report_request(profile_id, requestId=request_id, tableName="other"))
    second = inbox.wait_for(lambda n: n.body.get("request_id") == request_id
                            and n.attributes["status"] == "REJECTED", timeout_s=30)

    assert first.attributes["status"] == "SUCCEEDED"
    assert "requestId: expected an id not used before for a different report request" in second.body["summary"]
    assert len(creates(cloud, profile_id)) == 1
