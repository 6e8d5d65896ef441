"""``amci workflow``, ``amci execution`` and ``amci schedule`` as a user types them, in-process against the local
cloud: what each prints, its exit code (0 ok, 1 failed, 2 usage), its ``--json`` and its effects in the platform."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from amci.commands.workflows import STATUSES
from amci.inbox import Inbox
from amci.sdk import Insights, Progress
from local.cloud import LocalCloud
from shared import aws
from tests.support import FAST, amc_creates, amc_tenant, day, execution_request, send, wait_until

Amci = Callable[..., Result]


@pytest.fixture(scope="module")
def tenant(cloud: LocalCloud, inbox: Inbox, fast_amc: None) -> tuple[str, str]:
    """One tenant for the module, on its own AMC instance, with saved workflow ``top``."""
    return amc_tenant(cloud, inbox)


def _json(result: Result) -> dict[str, Any]:
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.output)


# -- workflows ----------------------------------------------------------------------------------------------------


def test_workflow_commands_save_show_list_change_and_delete(amci: Amci, tenant: tuple[str, str],
                                                            tmp_path: Path) -> None:
    customer, _ = tenant
    sql = tmp_path / "clicks.sql"
    sql.write_text("SELECT campaign, SUM(clicks) AS clicks FROM t GROUP BY 1")
    at = ("--tenant", customer)

    created = amci("workflow", "create", *at, "clicks", "--sql-file", str(sql), "--definition",
                   '{"filteredMetricsDiscriminatorColumn": "filtered"}', "--json")
    shown = amci("workflow", "get", *at, "clicks", "--json")
    updated = amci("workflow", "update", *at, "clicks", "--sql", "SELECT 2 AS two", "--json")
    changed = amci("workflow", "get", *at, "clicks")
    listed = amci("workflow", "list", *at)
    listed_json = amci("workflow", "list", *at, "--json")
    deleted = amci("workflow", "delete", *at, "clicks", "--json")
    after = amci("workflow", "list", *at, "--json")

    assert created.exit_code == 0, created.output
    assert _json(created)["status"] == "SUCCEEDED" and _json(created)["details"]["workflowId"] == "clicks"
    assert set(_json(created)) == {"requestId", "service", "status", "summary", "details"}
    definition = _json(shown)["details"]["workflowDefinition"]
    assert (definition["sqlQuery"], definition["filteredMetricsDiscriminatorColumn"]) == (sql.read_text(), "filtered")
    assert updated.exit_code == 0 and _json(updated)["summary"] == "workflow clicks updated", updated.output
    assert _json(updated)["details"]["workflowId"] == "clicks"
    assert changed.exit_code == 0 and "SELECT 2 AS two" in changed.output, changed.output
    assert listed.exit_code == 0 and "workflows (2)" in listed.output and "clicks" in listed.output, listed.output
    assert sorted(_json(listed_json)["details"]["workflows"]) == ["clicks", "top"]
    assert deleted.exit_code == 0 and _json(deleted)["summary"] == "workflow clicks deleted"
    assert _json(after)["details"]["workflows"] == ["top"]


def test_workflow_commands_fail_clearly(amci: Amci, tenant: tuple[str, str]) -> None:
    customer, _ = tenant
    at = ("--tenant", customer)

    missing = amci("workflow", "get", *at, "no-such-workflow")
    refused = amci("workflow", "create", *at, "bad", "--sql", "DELETE FROM t", "--json")
    bad_id = amci("workflow", "create", *at, "has space", "--sql", "SELECT 1")
    unknown_tenant = amci("workflow", "list", "--tenant", "no-such-tenant")
    no_sql = amci("workflow", "create", *at, "w")
    both_sql = amci("workflow", "update", *at, "w", "--sql", "SELECT 1", "--sql-file", __file__)
    not_json = amci("workflow", "create", *at, "w", "--sql", "SELECT 1", "--definition", "{oops")
    sql_twice = amci("workflow", "create", *at, "w", "--sql", "SELECT 1", "--definition", '{"sqlQuery": "SELECT 2"}')
    no_tenant = amci("workflow", "list")

    assert missing.exit_code == 1 and "no-such-workflow" in missing.output, missing.output
    assert refused.exit_code == 1 and _json(refused)["status"] == "FAILED", refused.output
    assert "SELECT statement" in _json(refused)["summary"] and _json(refused)["details"]["amcStatus"] == 400
    assert bad_id.exit_code == 1 and "workflowId" in bad_id.output, bad_id.output
    assert unknown_tenant.exit_code == 1 and "customerId: expected an onboarded tenant" in unknown_tenant.output
    assert no_sql.exit_code == 2 and "--sql TEXT or --sql-file FILE" in no_sql.output
    assert both_sql.exit_code == 2 and "one of them" in both_sql.output
    assert not_json.exit_code == 2 and "--definition" in not_json.output and "not JSON" in not_json.output
    assert sql_twice.exit_code == 2 and "sqlQuery: given by WORKFLOW_ID and --sql" in sql_twice.output
    assert no_tenant.exit_code == 2 and "--tenant" in no_tenant.output


# -- executions ---------------------------------------------------------------------------------------------------


def test_execution_run_waits_and_delivers_the_output(amci: Amci, cloud: LocalCloud, tenant: tuple[str, str]) -> None:
    customer, instance = tenant
    before = len(amc_creates(cloud, instance))

    run = amci("execution", "run", "--tenant", customer, "top", "--from", "TODAY(-2)", "--to", "TODAY(-1)",
               "--timezone", "America/New_York", "--param", "report_date=TODAY(-1)", "--option", "ignoreDataGaps=true",
               "--option", "workflowExecutionTimeoutSeconds=3600", "--json")
    adhoc = amci("execution", "run", "--tenant", customer, "--sql", "SELECT 1 AS one", "--window", "MOST_RECENT_DAY")

    outcome = _json(run)
    assert run.exit_code == 0 and outcome["status"] == "SUCCEEDED", run.output
    details = outcome["details"]
    assert details["workflowId"] == "top" and details["amcStatus"] == "SUCCEEDED"
    bucket, key = details["outputS3URI"].removeprefix("s3://").split("/", 1)
    assert bucket == f"amc-{customer}-results"
    assert aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode().startswith("campaign")
    sent = [json.loads(json.dumps(r.body)) for r in amc_creates(cloud, instance)[before:]]
    assert sent[0]["timeWindowType"] == "EXPLICIT" and sent[0]["timeWindowTimeZone"] == "America/New_York"
    assert sent[0]["ignoreDataGaps"] is True and sent[0]["workflowExecutionTimeoutSeconds"] == 3600
    assert sent[0]["parameterValues"]["report_date"][:2] == "20"  # resolved, not TODAY(-1)
    assert adhoc.exit_code == 0 and "SUCCEEDED" in adhoc.output and "outputS3URI" in adhoc.output, adhoc.output
    assert f"s3://amc-{customer}-results/" in adhoc.output
    assert sent[1]["workflow"]["sqlQuery"] == "SELECT 1 AS one" and sent[1]["timeWindowType"] == "MOST_RECENT_DAY"


def test_execution_run_fails_clearly(amci: Amci, tenant: tuple[str, str]) -> None:
    at = ("--tenant", tenant[0])

    unknown = amci("execution", "run", *at, "no-such-workflow", "--json")
    no_tenant = amci("execution", "run", "--tenant", "no-such-tenant", "top")
    neither = amci("execution", "run", *at)
    both = amci("execution", "run", *at, "top", "--sql", "SELECT 1")
    two_windows = amci("execution", "run", *at, "top", "--window", "MOST_RECENT_DAY", "--from", "TODAY(-1)",
                       "--to", "TODAY(-1)")
    half_window = amci("execution", "run", *at, "top", "--from", "TODAY(-1)")
    bad_option = amci("execution", "run", *at, "top", "--option", "outputFormat=CSV")
    bad_param = amci("execution", "run", *at, "top", "--param", "no-equals-sign")
    bad_window = amci("execution", "run", *at, "top", "--window", "YESTERDAY")

    assert unknown.exit_code == 1 and _json(unknown)["status"] == "REJECTED", unknown.output
    assert "no-such-workflow" in _json(unknown)["summary"]
    assert no_tenant.exit_code == 1 and "customerId: expected an onboarded tenant" in no_tenant.output
    assert neither.exit_code == 2 and both.exit_code == 2 and "WORKFLOW_ID" in neither.output
    assert two_windows.exit_code == 2 and "--window or --from/--to" in two_windows.output
    assert half_window.exit_code == 2 and "both --from and --to" in half_window.output
    assert bad_option.exit_code == 2 and "--option" in bad_option.output and "not JSON" in bad_option.output
    assert bad_param.exit_code == 2 and "--param" in bad_param.output and "KEY=VALUE" in bad_param.output
    assert bad_window.exit_code == 2 and "--window" in bad_window.output


def test_execution_get_list_and_sync_follow_the_records(amci: Amci, cloud: LocalCloud, inbox: Inbox,
                                                        tenant: tuple[str, str]) -> None:
    customer = tenant[0]
    at = ("--tenant", customer)
    run = _json(amci("execution", "run", *at, "top", "--json"))
    execution_id = run["details"]["workflowExecutionId"]

    got = amci("execution", "get", *at, execution_id, "--json")
    got_table = amci("execution", "get", *at, execution_id)
    listed = amci("execution", "list", *at, "--status", "SUCCEEDED", "--limit", "1", "--json")
    listed_table = amci("execution", "list", *at)
    none_failed = amci("execution", "list", *at, "--status", "FAILED", "--json")
    synced = amci("execution", "sync", *at, "--days", "1", "--json")
    synced_table = amci("execution", "sync", *at)
    missing = amci("execution", "get", *at, "no-such-execution")
    finished = amci("execution", "cancel", *at, execution_id)
    bad_status = amci("execution", "list", *at, "--status", "DONE")
    bad_days = amci("execution", "sync", *at, "--days", "0")

    assert got.exit_code == 0 and _json(got)["details"]["amcStatus"] == "SUCCEEDED", got.output
    assert _json(got)["details"]["outputS3URI"] == run["details"]["outputS3URI"]
    assert got_table.exit_code == 0 and execution_id in got_table.output and "outputS3URI" in got_table.output
    executions = _json(listed)["details"]["executions"]
    assert [(e["requestId"], e["executionStatus"]) for e in executions] == [(run["requestId"], "SUCCEEDED")]
    assert listed_table.exit_code == 0 and "executions (" in listed_table.output, listed_table.output
    assert run["requestId"] in listed_table.output and "request" in listed_table.output
    assert none_failed.exit_code == 0 and _json(none_failed)["details"]["executions"] == []
    counts = _json(synced)["details"]
    assert synced.exit_code == 0 and set(counts) == {"seen", "updated", "added"} and counts["seen"] >= 1
    assert synced_table.exit_code == 0 and "seen" in synced_table.output
    assert missing.exit_code == 1 and "no-such-execution" in missing.output, missing.output
    assert finished.exit_code == 1 and "had already finished: SUCCEEDED" in finished.output, finished.output
    assert bad_status.exit_code == 2 and "--status" in bad_status.output
    assert bad_days.exit_code == 2 and "--days" in bad_days.output


def test_execution_cancel_stops_a_running_execution(amci: Amci, cloud: LocalCloud, inbox: Inbox,
                                                    tenant: tuple[str, str]) -> None:
    customer = tenant[0]
    records = aws.table(cloud.outputs["WorkflowRecordsTable"])
    cloud.sandbox.amc.timings = replace(FAST, running_s=60.0)
    try:
        request_id = send(cloud, "workflow", execution_request(customer))
        execution_id = wait_until(lambda: records.get_item(Key={
            "customerId": customer, "recordId": f"execution#{request_id}"}).get("Item", {}).get("workflowExecutionId"),
            60)
    finally:
        cloud.sandbox.amc.timings = replace(FAST)

    cancelled = amci("execution", "cancel", "--tenant", customer, execution_id, "--json")
    outcome = inbox.wait_for(lambda n: n.body.get("request_id") == request_id
                             and n.attributes["requestType"] == "createExecution", 60)
    again = amci("execution", "cancel", "--tenant", customer, execution_id)

    assert cancelled.exit_code == 0, cancelled.output
    assert _json(cancelled)["details"] == {"workflowExecutionId": execution_id}
    assert outcome.attributes["status"] == "CANCELLED"
    assert again.exit_code == 0 and "cancelled" in again.output, again.output  # a retried cancel is harmless


def test_execution_backfill_runs_every_window_and_resubmits(amci: Amci, tenant: tuple[str, str]) -> None:
    at, first = ("--tenant", tenant[0]), date.today() - timedelta(days=4)
    days = ("--from", first.isoformat(), "--to", (first + timedelta(days=2)).isoformat())

    waited = amci("execution", "backfill", *at, "top", *days, "--window-days", "1", "--json")
    shown = amci("execution", "backfill", *at, "top", *days, "--window-days", "2")
    submitted = amci("execution", "backfill", *at, "top", *days, "--no-wait", "--json")
    backfill_id = _json(waited)["details"]["backfillId"]
    resubmitted = amci("execution", "resubmit", *at, backfill_id, "--json")
    unknown = amci("execution", "resubmit", *at, "no-such-backfill")
    backwards = amci("execution", "backfill", *at, "top", "--from", "2026-01-05", "--to", "2026-01-01")
    no_range = amci("execution", "backfill", *at, "top", "--from", "2026-01-05")

    assert waited.exit_code == 0, waited.output
    windows = _json(waited)["details"]["windows"]
    assert [w["status"] for w in windows] == ["SUCCEEDED"] * 3
    assert [w["requestId"] for w in windows] == [f"{backfill_id}-w{i:03d}" for i in range(3)]
    assert all(w["details"]["outputS3URI"].startswith(f"s3://amc-{tenant[0]}-results/") for w in windows)
    assert "3 of 3 windows succeeded" in _json(waited)["summary"]
    assert shown.exit_code == 0 and "windows (2)" in shown.output and "-w001" in shown.output, shown.output
    assert submitted.exit_code == 0 and _json(submitted)["details"]["windows"] == 3, submitted.output
    assert resubmitted.exit_code == 0 and _json(resubmitted)["details"] == {"backfillId": backfill_id,
                                                                              "resubmitted": []}
    assert unknown.exit_code == 1 and "backfillId" in unknown.output, unknown.output
    assert backwards.exit_code == 1 and "endDate" in backwards.output, backwards.output
    assert no_range.exit_code == 2 and "--to" in no_range.output


def test_live_progress_receives_an_executions_statuses_and_a_backfills_windows_done(
        cloud: LocalCloud, endpoints_file: Path, tenant: tuple[str, str]) -> None:
    seen: list[Progress] = []
    sdk = Insights.local(endpoints_file, timeout_s=120, progress=seen.append)
    saved = cloud.sandbox.amc.timings
    cloud.sandbox.amc.timings = replace(FAST, pending_s=1.0, running_s=8.0)  # RUNNING at a 5 s poll
    try:
        run = sdk.executions.run(tenant[0], "top", start="TODAY(-2)", end="TODAY(-1)")
        execution = list(seen)
        seen.clear()
        backfill = sdk.executions.backfill(tenant[0], "top", day(30), day(28))
    finally:
        cloud.sandbox.amc.timings = saved

    assert run.ok and backfill.ok, (run, backfill)
    assert execution and {p.what for p in execution} == {f"{tenant[0]} top"}, execution
    assert {p.status for p in execution} <= set(STATUSES) and "RUNNING" in {p.status for p in execution}, execution
    assert [p.elapsed_s for p in execution] == sorted(p.elapsed_s for p in execution)
    assert seen and {(p.what, p.total) for p in seen} == {(f"{tenant[0]} top backfill", 3)}, seen
    assert [p.done for p in seen] == sorted(p.done for p in seen) and seen[-1].done <= 3


# -- schedules ----------------------------------------------------------------------------------------------------


def test_workflow_schedules_are_created_changed_paused_and_deleted(amci: Amci, tenant: tuple[str, str],
                                                                   tmp_path: Path) -> None:
    customer, name = tenant[0], f"nightly-{uuid.uuid4().hex[:6]}"
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"requestType": "createExecution", "createExecutionRequest": {
        "workflowId": "top", "timeWindowType": "MOST_RECENT_DAY"}}))
    at, group = ("--service", "workflow", "--tenant", customer), f"amci-local-{customer}"

    created = amci("schedule", "create", *at, name, "--expression", "cron(0 6 * * ? *)", "--request", f"@{request}",
                   "--timezone", "Europe/Berlin", "--description", "every morning", "--json")
    listed = amci("schedule", "list", *at, "--json")
    refused = amci("workflow", "delete", "--tenant", customer, "top")
    updated = amci("schedule", "update", *at, name, "--expression", "rate(7 days)", "--request", f"@{request}",
                   "--disabled", "--json")
    stored = aws.client("scheduler").get_schedule(Name=name, GroupName=group)
    enabled = amci("schedule", "enable", *at, name, "--json")
    enabled_state = aws.client("scheduler").get_schedule(Name=name, GroupName=group)["State"]
    disabled = amci("schedule", "disable", "--service", "workflow", name)  # found by name without --tenant
    disabled_again = amci("schedule", "disable", *at, name, "--json")
    shown = amci("schedule", "list", *at)
    deleted = amci("schedule", "delete", *at, name, "--json")
    after = amci("schedule", "list", *at, "--json")

    assert created.exit_code == 0 and _json(created)["details"]["written"] == "created", created.output
    assert _json(listed)["details"]["schedules"] == [{
        "scheduleName": name, "workflowId": "top", "scheduleExpression": "cron(0 6 * * ? *)",
        "timezone": "Europe/Berlin", "enabled": True, "nextRun": _json(listed)["details"]["schedules"][0]["nextRun"]}]
    assert refused.exit_code == 1 and name in refused.output, refused.output
    assert updated.exit_code == 0 and _json(updated)["details"]["written"] == "updated", updated.output
    assert (stored["ScheduleExpression"], stored["State"], stored["Description"]) == ("rate(7 days)", "DISABLED", "")
    assert json.loads(stored["Target"]["Input"])["createExecutionRequest"]["timeWindowType"] == "MOST_RECENT_DAY"
    assert enabled.exit_code == 0 and _json(enabled)["details"] == {"scheduleName": name, "enabled": True}
    assert enabled_state == "ENABLED"
    assert disabled.exit_code == 0 and "disabled" in disabled.output, disabled.output
    assert _json(disabled_again)["details"] == {"scheduleName": name, "enabled": False}, disabled_again.output
    assert shown.exit_code == 0 and "schedules (1)" in shown.output and "never (disabled)" in shown.output
    assert deleted.exit_code == 0 and _json(after)["details"]["schedules"] == []
    assert aws.client("scheduler").list_schedules(GroupName=group)["Schedules"] == []


@pytest.mark.parametrize(("operation", "arguments", "reason"), [
    ("update", ("nightly", "--expression", "every day", "--request", '{"requestType": "createExecution", '
                '"createExecutionRequest": {"workflowId": "top"}}'), "scheduleExpression"),
    ("delete", ("nightly", "--tenant", "no-such-tenant"), "customerId: expected an onboarded tenant"),
    ("enable", ("no-such-schedule",), "no-such-schedule"),
    ("disable", ("no-such-schedule",), "no-such-schedule"),
])
def test_schedule_changes_fail_naming_what_is_wrong(amci: Amci, tenant: tuple[str, str], operation: str,
                                                   arguments: tuple[str, ...], reason: str) -> None:
    result = amci("schedule", operation, "--service", "workflow", "--tenant", tenant[0], *arguments)

    assert result.exit_code == 1 and reason in result.output, result.output


def test_report_schedules_and_schedule_usage_errors(amci: Amci, cloud: LocalCloud, tenant: tuple[str, str]) -> None:
    customer, name = tenant[0], f"ads-{uuid.uuid4().hex[:6]}"
    profile_id = str(cloud.sandbox.ads.add_profile("na").profile_id)
    report = json.dumps({"profileId": profile_id, "region": "North America", "requestBody": {
        "startDate": "TODAY(-2)", "endDate": "TODAY(-1)", "configuration": {
            "adProduct": "SPONSORED_PRODUCTS", "groupBy": ["campaign"], "columns": ["campaignId", "impressions"],
            "reportTypeId": "spCampaigns", "timeUnit": "SUMMARY", "format": "GZIP_JSON"}}})
    execution = json.dumps({"requestType": "createExecution", "createExecutionRequest": {"workflowId": "top"}})

    created = amci("schedule", "create", "--service", "ads", name, "--expression", "cron(0 6 * * ? *)",
                   "--request", report, "--tenant", customer, "--json")
    stored = aws.client("scheduler").get_schedule(Name=f"ads-{name}", GroupName=cloud.outputs["PlatformScheduleGroup"])
    listed = amci("schedule", "list", "--service", "ads", "--json")
    deleted = amci("schedule", "delete", "--service", "ads", name)
    after = amci("schedule", "list", "--service", "ads", "--json")
    bad_report = amci("schedule", "create", "--service", "sp", name, "--expression", "rate(1 day)",
                      "--request", '{"requestBody": {}}')
    bad_expression = amci("schedule", "create", "--service", "workflow", "--tenant", customer, name,
                          "--expression", "every day", "--request", execution)
    unknown_tenant = amci("schedule", "create", "--service", "workflow", "--tenant", "no-such-tenant", name,
                          "--expression", "rate(1 day)", "--request", execution)
    no_tenant = amci("schedule", "create", "--service", "workflow", name, "--expression", "rate(1 day)",
                     "--request", execution)
    list_no_tenant = amci("schedule", "list", "--service", "workflow")
    list_unknown = amci("schedule", "list", "--service", "workflow", "--tenant", "no-such-tenant")
    report_tenant = amci("schedule", "list", "--service", "sp", "--tenant", customer)
    not_json = amci("schedule", "create", "--service", "ads", name, "--expression", "rate(1 day)", "--request", "[1]")
    no_service = amci("schedule", "list")

    assert created.exit_code == 0 and _json(created)["details"]["tableName"] == f"{profile_id}-spCampaigns", \
        created.output
    assert json.loads(stored["Target"]["Input"])["customerId"] == customer  # the tenant notified
    assert name in {s["scheduleName"] for s in _json(listed)["details"]["schedules"]}
    assert deleted.exit_code == 0 and name not in {s["scheduleName"] for s in _json(after)["details"]["schedules"]}
    assert bad_report.exit_code == 1 and "requestBody" in bad_report.output, bad_report.output
    assert bad_expression.exit_code == 1 and "scheduleExpression" in bad_expression.output, bad_expression.output
    for refused in (unknown_tenant, list_unknown):
        assert refused.exit_code == 1 and "customerId: expected an onboarded tenant" in refused.output, refused.output
    for usage in (no_tenant, list_no_tenant):
        assert usage.exit_code == 2 and "--tenant is required with --service workflow" in usage.output
    assert report_tenant.exit_code == 2 and "--tenant: sp schedules are the platform's" in report_tenant.output
    assert not_json.exit_code == 2 and "--request" in not_json.output and "JSON object" in not_json.output
    assert no_service.exit_code == 2 and "--service" in no_service.output
