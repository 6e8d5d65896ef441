"""``amci ads`` and ``amci sp`` as a user runs them, in-process against the local cloud and its sandbox: profiles,
reports landing in the reports bucket, backfills window by window, report lists, failures and usage errors."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from local.cloud import LocalCloud
from local.sandbox.faults import Faults
from local.sandbox.sp import data
from shared import aws
from tests.support import day, wait_until

pytestmark = pytest.mark.usefixtures("fast_ads", "fast_sp")

Amci = Callable[..., Result]
US = "ATVPDKIKX0DER"
COLUMNS = "campaignId,campaignName,impressions,clicks,cost"


def profile(cloud: LocalCloud, region: str = "na") -> str:
    return str(cloud.sandbox.ads.add_profile(region).profile_id)


def ads_flags(profile_id: str, *extra: str) -> list[str]:
    return [profile_id, "--region", "NA", "--type", "spCampaigns", "--columns", COLUMNS, "--group-by", "campaign",
            *extra]


def as_json(result: Result) -> dict[str, Any]:
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.output)


def stored(uri: str) -> dict[str, Any]:
    """The object at ``uri`` in the reports bucket (its head)."""
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return aws.client("s3").head_object(Bucket=bucket, Key=key)


def test_ads_profiles_are_listed_by_region(amci: Amci, cloud: LocalCloud) -> None:
    eu = profile(cloud, "eu")

    shown = amci("ads", "profiles", "--region", "EU")
    found = amci("ads", "profiles", "--region", "EU", "--region", "NA", "--json")
    bad = amci("ads", "profiles", "--region", "Mars")

    assert shown.exit_code == 0 and eu in shown.output and "A1F83G8C2ARO7P" in shown.output, shown.output
    assert "SUCCEEDED" in shown.output and "profiles (" in shown.output
    outcome = as_json(found)
    assert found.exit_code == 0 and outcome["service"] == "ads_reporting" and outcome["status"] == "SUCCEEDED"
    assert set(outcome["details"]["profiles"]) == {"EU", "NA"}
    assert eu in {str(p["profile_id"]) for p in outcome["details"]["profiles"]["EU"]}
    assert bad.exit_code == 1 and "REJECTED" in bad.output and "region: expected one of" in bad.output, bad.output


def test_an_ads_report_by_flags_or_body_lands_in_the_reports_bucket_and_is_listed(
        amci: Amci, cloud: LocalCloud, tmp_path: Path) -> None:
    profile_id, tenant = profile(cloud), f"cliads{uuid.uuid4().hex[:8]}"
    body = tmp_path / "report.json"
    body.write_text(json.dumps({"profileId": profile_id, "region": "North America", "tableName": "cli-body",
                                "customerId": tenant, "requestBody": {
                                    "startDate": "TODAY(-3)", "endDate": "TODAY(-2)", "configuration": {
                                        "adProduct": "SPONSORED_PRODUCTS", "groupBy": ["campaign"],
                                        "columns": COLUMNS.split(","), "reportTypeId": "spCampaigns",
                                        "timeUnit": "SUMMARY", "format": "JSON"}}}))

    by_flags = amci("ads", "report", *ads_flags(profile_id, "--from", "TODAY(-2)", "--to", "TODAY(-1)",
                                                "--time-unit", "SUMMARY", "--table", "cli-flags", "--tenant", tenant,
                                                "--filter", '{"field": "campaignStatus", "values": ["ENABLED"]}'))
    by_body = amci("ads", "report", "--body", f"@{body}", "--json")
    listed = amci("ads", "reports", "--tenant", tenant, "--json")
    shown = amci("ads", "reports", "--tenant", tenant, "--status", "SUCCEEDED", "--limit", "5")

    assert by_flags.exit_code == 0, by_flags.output
    assert "SUCCEEDED" in by_flags.output and f"s3://{cloud.outputs['ReportsBucket']}/" in by_flags.output
    assert f"/adtech/ads_report/cli-flags/report_date={day(2)}/" in by_flags.output
    outcome = as_json(by_body)
    assert by_body.exit_code == 0 and set(outcome) == {"requestId", "service", "status", "summary", "details"}
    details = outcome["details"]
    assert outcome["status"] == "SUCCEEDED" and details["tableName"] == "cli-body" and details["customerId"] == tenant
    assert details["s3Uri"].startswith(f"s3://{cloud.outputs['ReportsBucket']}/adtech/ads_report/cli-body/"
                                       f"report_date={day(3)}/report-{details['reportId']}")
    head = stored(details["s3Uri"])
    assert head["ContentLength"] == details["size"] and head["Metadata"]["profile-id"] == profile_id
    reports = as_json(listed)["details"]["reports"]
    assert {r["tableName"] for r in reports} == {"cli-flags", "cli-body"}
    assert {r["reportStatus"] for r in reports} == {"SUCCEEDED"} and outcome["requestId"] in {
        r["requestId"] for r in reports}
    assert all(stored(r["s3Uri"]) for r in reports)
    assert shown.exit_code == 0 and "reports (2)" in shown.output and "cli-flags" in shown.output, shown.output


def test_ads_report_failures_and_usage_errors(amci: Amci, cloud: LocalCloud, faults: Faults) -> None:
    profile_id, dates = profile(cloud), ("--from", "TODAY(-2)", "--to", "TODAY(-1)")
    faults.add("ads", "createReport", outcome="FAILED", times=1)

    failed = amci("ads", "report", *ads_flags(profile_id, *dates), "--json")
    mars = amci("ads", "report", profile_id, "--region", "Mars", "--type", "spCampaigns", *dates, "--columns",
                COLUMNS, "--group-by", "campaign")
    too_long = amci("ads", "report", *ads_flags(profile_id, "--from", "TODAY(-40)", "--to", "TODAY(-1)"))
    both = amci("ads", "report", *ads_flags(profile_id, *dates), "--body", "{}")
    missing = amci("ads", "report", profile_id, "--region", "NA")
    not_json = amci("ads", "report", "--body", "{not json")
    bad_filter = amci("ads", "report", *ads_flags(profile_id, *dates), "--filter", "[1]")
    bad_limit = amci("ads", "reports", "--limit", "0")

    outcome = as_json(failed)
    assert failed.exit_code == 1 and outcome["status"] == "FAILED", outcome
    assert "Report generation failed" in outcome["summary"] and outcome["details"]["apiStatus"] == "FAILED"
    assert mars.exit_code == 1 and "region: expected one of North America, Europe or APAC" in mars.output, mars.output
    assert too_long.exit_code == 1 and "requestBody.endDate: expected at most 31 days" in too_long.output
    assert both.exit_code == 2 and "--body is the whole request" in both.output and "'--region'" in both.output
    assert missing.exit_code == 2, missing.output
    assert "Missing '--type', '--from', '--to', '--columns', '--group-by' (or --body" in missing.output
    assert not_json.exit_code == 2 and "not JSON" in not_json.output
    assert bad_filter.exit_code == 2 and "--filter" in bad_filter.output and "JSON object" in bad_filter.output
    assert bad_limit.exit_code == 2 and "--limit" in bad_limit.output


def test_status_counts_a_failed_report_and_shows_why_it_failed(amci: Amci, cloud: LocalCloud, faults: Faults) -> None:
    profile_id = profile(cloud)
    before = as_json(amci("status", "--json"))
    faults.add("ads", "createReport", outcome="FAILED", times=1)
    failed = as_json(amci("ads", "report", *ads_flags(profile_id, "--from", "TODAY(-2)", "--to", "TODAY(-1)"),
                          "--json"))
    time.sleep(1.5)  # the failure is now older than the next call's window
    after = as_json(amci("status", "--json"))
    window = as_json(amci("status", "--json", "--recent-hours", "0.0003"))  # about a second
    shown = amci("status")

    assert failed["status"] == "FAILED"
    assert after["reports"]["FAILED"] == before["reports"].get("FAILED", 0) + 1, (before, after)
    row = next(f for f in after["failures"] if f["requestId"] == failed["requestId"])
    assert (row["kind"], row["status"], row["what"]) == ("report", "FAILED", f"{profile_id}-spCampaigns")
    assert "Report generation failed" in row["reason"]
    assert row["failedAt"] > row["createdAt"]  # judged by when it failed, not when it was asked for
    assert after["recent"] == {"hours": 24, "failures": before["recent"]["failures"] + 1} and after["troubled"]
    assert window["recent"] == {"hours": 0.0003, "failures": 0}
    assert failed["requestId"] in {f["requestId"] for f in window["failures"]}  # still shown, as history
    assert shown.exit_code == 1 and "Latest failures" in shown.output and "Report generation failed" in shown.output


def test_an_ads_backfill_of_seventy_days_is_three_windows(amci: Amci, cloud: LocalCloud) -> None:
    profile_id = profile(cloud)

    waited = amci("ads", "backfill", *ads_flags(profile_id, "--from", day(70), "--to", day(1), "--time-unit",
                                                "SUMMARY", "--table", "cli-backfill"), "--json")
    submitted = amci("ads", "backfill", *ads_flags(profile(cloud), "--from", day(70), "--to", day(1), "--no-wait"),
                     "--json")
    too_old = amci("ads", "backfill", *ads_flags(profile_id, "--from", "TODAY(-200)", "--to", "TODAY(-1)"))
    no_dates = amci("ads", "backfill", *ads_flags(profile_id))

    outcome = as_json(waited)
    assert waited.exit_code == 0 and outcome["status"] == "SUCCEEDED", outcome["summary"]
    assert "3 of 3 windows succeeded" in outcome["summary"]
    windows = outcome["details"]["windows"]
    assert [w["status"] for w in windows] == ["SUCCEEDED"] * 3
    assert [(w["details"]["startDate"], w["details"]["endDate"]) for w in windows] == [
        (day(70), day(40)), (day(39), day(9)), (day(8), day(1))]
    assert all("/adtech/ads_report/cli-backfill/" in w["details"]["s3Uri"] and stored(w["details"]["s3Uri"])
               for w in windows)
    backfill = as_json(submitted)
    assert submitted.exit_code == 0 and backfill["details"]["windows"] == 3, backfill  # submitted, not waited for
    assert "3 spCampaigns reports" in backfill["summary"]

    def landed() -> list[dict[str, Any]]:
        listed = as_json(amci("ads", "reports", "--status", "SUCCEEDED", "--json"))["details"]["reports"]
        return [r for r in listed if r.get("backfillId") == backfill["requestId"]]

    wait_until(lambda: len(landed()) == 3, 60)  # the windows' reports come in by themselves
    assert all(stored(r["s3Uri"]) for r in landed())
    assert too_old.exit_code == 1 and "startDate: expected a day within the last 95 days" in too_old.output
    assert no_dates.exit_code == 2 and "Missing option '--from'" in no_dates.output


def test_an_ads_backfill_shows_its_windows(amci: Amci, cloud: LocalCloud) -> None:
    shown = amci("ads", "backfill", *ads_flags(profile(cloud), "--from", day(40), "--to", day(1)))

    assert shown.exit_code == 0 and "2 of 2 windows succeeded" in shown.output, shown.output
    assert "windows (2)" in shown.output and shown.output.count("SUCCEEDED") >= 3 and day(40) in shown.output


def test_an_sp_report_by_flags_or_body_lands_in_the_reports_bucket_and_is_listed(
        amci: Amci, cloud: LocalCloud) -> None:
    tenant = f"clisp{uuid.uuid4().hex[:8]}"
    by_flags = amci("sp", "report", "--type", data.SALES_AND_TRAFFIC, "--marketplace", US, "--from", day(12),
                    "--to", day(10), "--option", "dateGranularity=DAY", "--option", "asinGranularity=CHILD",
                    "--table-prefix", "cli-sales", "--tenant", tenant, "--json")
    by_body = amci("sp", "report", "--body", json.dumps({"customerId": tenant, "requestBody": {
        "reportType": data.ORDERS[0], "marketplaceIds": [US], "dataStartTime": day(5), "dataEndTime": day(4)}}))
    listed = amci("sp", "reports", "--tenant", tenant, "--json")
    shown = amci("sp", "reports", "--tenant", tenant)

    outcome = as_json(by_flags)
    assert by_flags.exit_code == 0 and outcome["status"] == "SUCCEEDED", outcome["summary"]
    details = outcome["details"]
    assert details["s3Uri"] == (f"s3://{cloud.outputs['ReportsBucket']}/adtech/sp_report/cli-sales/"
                                f"report_date={day(12)}/report-{details['reportId']}.json.gz")
    head = stored(details["s3Uri"])
    assert head["Metadata"]["marketplace-ids"] == US and head["Metadata"]["customer-id"] == tenant
    assert by_body.exit_code == 0 and "SUCCEEDED" in by_body.output, by_body.output
    assert f"/adtech/sp_report/{tenant}-NA-{data.ORDERS[0]}/report_date={day(5)}/" in by_body.output
    reports = as_json(listed)["details"]["reports"]
    assert {r["tableName"] for r in reports} == {"cli-sales", f"{tenant}-NA-{data.ORDERS[0]}"}
    assert all(stored(r["s3Uri"]) for r in reports)
    assert shown.exit_code == 0 and "reports (2)" in shown.output and "cli-sales" in shown.output


def test_sp_report_outcomes_and_usage_errors(amci: Amci, faults: Faults) -> None:
    sales = ("--type", data.SALES_AND_TRAFFIC, "--marketplace", US)
    faults.add("sp", "createReport", outcome="FATAL", times=1)

    fatal = amci("sp", "report", *sales, "--from", day(20), "--to", day(19))
    no_data = amci("sp", "report", *sales, "--from", day(900), "--to", day(899), "--json")
    unknown = amci("sp", "report", "--type", data.SALES_AND_TRAFFIC, "--marketplace", "NOWHERE")
    two_regions = amci("sp", "report", *sales, "--marketplace", "A1F83G8C2ARO7P")
    both = amci("sp", "report", *sales, "--body", "{}")
    missing = amci("sp", "report", "--from", day(3))
    bad_option = amci("sp", "report", *sales, "--option", "dateGranularity")

    assert fatal.exit_code == 1 and "FAILED" in fatal.output and "FATAL" in fatal.output, fatal.output
    outcome = as_json(no_data)
    assert no_data.exit_code == 0 and outcome["status"] == "NO_DATA" and outcome["details"]["s3Uri"] is None
    assert unknown.exit_code == 1 and "marketplaceIds: known marketplace ids (unknown: NOWHERE)" in unknown.output
    assert two_regions.exit_code == 1 and "marketplaces of one region" in two_regions.output
    assert both.exit_code == 2 and "--body is the whole request" in both.output and "'--type'" in both.output
    assert missing.exit_code == 2 and "Missing '--type', '--marketplace' (or --body" in missing.output
    assert bad_option.exit_code == 2 and "expected KEY=VALUE" in bad_option.output
