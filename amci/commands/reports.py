"""``amci ads`` and ``amci sp``: Amazon Ads profiles and reports, Selling Partner reports."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import click
from click.core import ParameterSource
from rich.table import Table

from amci.commands.common import (
    JSON,
    TIMEOUT,
    ask,
    console,
    finish,
    json_argument,
    key_values,
    options,
    records_table,
)
from amci.sdk import Outcome
from shared.amazon.ads import REPORT_TYPES

WAITING = "waiting for the report"
ADS_REQUIRED = ("profile_id", "region", "report_type", "start", "end", "columns", "group_by")
SP_REQUIRED = ("report_type", "marketplace_ids")
REPORT_FIELDS = ("reportId", "tableName", "reportType", "startDate", "endDate", "customerId", "apiStatus", "s3Uri",
                 "size", "message")
REPORT_COLUMNS = ("request", "status", "type", "table", "from", "to", "tenant", "created", "S3 location or reason")

AUTH_ID = click.option("--auth-id", default=None, help="The credential set (default: the platform's).")
TENANT = click.option("--tenant", "customer_id", default=None, help="The tenant the report is for (it is notified).")
BODY = click.option("--body", default=None, metavar="JSON|@FILE",
                    help="The whole request (the AWS Solution's payload) instead of the flags.")


@click.group("ads")
def ads() -> None:
    """Amazon Ads: profiles, reports and backfills."""


@click.group("sp")
def sp() -> None:
    """Selling Partner: reports."""


def ads_request_options(required: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """PROFILE_ID and the flags of an Ads report request; ``required`` when the command has no --body instead."""
    return options(
        click.argument("profile_id", required=required),
        click.option("--region", required=required, help="The profile's region: NA, EU or FE."),
        click.option("--type", "report_type", metavar="TYPE", required=required,
                     help=f"The report type: spCampaigns, sbAdGroup, sdTargeting... ({len(REPORT_TYPES)} known)."),
        click.option("--from", "start", metavar="DATE", required=required,
                     help="The first day: YYYY-MM-DD, or a relative date such as TODAY(-7)."),
        click.option("--to", "end", metavar="DATE", required=required, help="The last day (included), as --from."),
        click.option("--columns", required=required, help="The columns, comma-separated: campaignId,clicks,..."),
        click.option("--group-by", required=required, help="The groupings, comma-separated: campaign,adGroup..."),
        click.option("--ad-product", type=click.Choice(sorted({t.ad_product for t in REPORT_TYPES.values()})),
                     default=None, help="Default: the report type's."),
        click.option("--time-unit", type=click.Choice(["DAILY", "SUMMARY"]), default="DAILY", show_default=True),
        click.option("--filter", "filters", multiple=True, metavar="JSON",
                     help='A filter, repeatable: {"field": "campaignStatus", "values": ["ENABLED"]}.'),
        click.option("--table", default=None, help="The table in the reports bucket (default PROFILE_ID-TYPE)."),
        AUTH_ID, TENANT,
    )


report_list_options = options(  # the filters of a list of reports
    click.option("--status", default=None, help="Only reports in this status: SUCCEEDED, FAILED, PROCESSING..."),
    click.option("--tenant", "customer_id", default=None, help="Only the tenant's reports."),
    click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True),
)


@ads.command("profiles")
@click.option("--region", "regions", multiple=True, help="NA, EU or FE, repeatable (default: every region).")
@AUTH_ID
@JSON
def profiles(regions: tuple[str, ...], auth_id: str | None, as_json: bool) -> None:
    """The advertising profiles of a credential set, region by region."""
    finish(ask(lambda sdk: sdk.ads.profiles(list(regions), auth_id), 120), as_json, _show_profiles)


@ads.command("report")
@ads_request_options(required=False)
@BODY
@TIMEOUT
@JSON
def ads_report(body: str | None, timeout: float, as_json: bool, **flags: Any) -> None:
    """Request a reporting v3 report and wait for it in the reports bucket: PROFILE_ID and the flags, or --body."""
    if _by_body(body, ADS_REQUIRED):
        payload = json_argument(body, "--body")
        finish(ask(lambda sdk: sdk.ads.request(payload, "report"), timeout, WAITING), as_json, _show_report)
    arguments = _ads_arguments(flags)
    finish(ask(lambda sdk: sdk.ads.report(**arguments), timeout, WAITING), as_json, _show_report)


@ads.command("backfill")
@ads_request_options(required=True)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for every window's report.")
@TIMEOUT
@JSON
def backfill(wait: bool, timeout: float, as_json: bool, **flags: Any) -> None:
    """Reports over --from..--to, one per window of the report type's longest range (31 days for most)."""
    arguments = _ads_arguments(flags)
    finish(ask(lambda sdk: sdk.ads.backfill(**arguments, wait=wait), timeout, "backfilling"), as_json,
           _show_windows)


@ads.command("reports")
@report_list_options
@JSON
def ads_reports(status: str | None, customer_id: str | None, limit: int, as_json: bool) -> None:
    """The Ads reports requested, newest first."""
    finish(ask(lambda sdk: sdk.ads.reports(status, customer_id, limit), 120), as_json, _show_reports)


@sp.command("report")
@click.option("--type", "report_type", metavar="TYPE", help="The report type, e.g. GET_SALES_AND_TRAFFIC_REPORT.")
@click.option("--marketplace", "marketplace_ids", multiple=True,
              help="A marketplace id such as ATVPDKIKX0DER, repeatable (marketplaces of one region).")
@click.option("--from", "start", metavar="DATE", default=None,
              help="The data's start: a date, a timestamp or a relative date such as TODAY(-7).")
@click.option("--to", "end", metavar="DATE", default=None, help="The data's end, as --from.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="A report option, repeatable: dateGranularity=DAY.")
@click.option("--table-prefix", default=None, help="The table in the reports bucket (default REGION-TYPE).")
@AUTH_ID
@TENANT
@BODY
@TIMEOUT
@JSON
def sp_report(body: str | None, timeout: float, as_json: bool, **flags: Any) -> None:
    """Request a report and wait for it in the reports bucket: --type and --marketplace, or --body."""
    if _by_body(body, SP_REQUIRED):
        payload = json_argument(body, "--body")
        finish(ask(lambda sdk: sdk.sp.request(payload, "report"), timeout, WAITING), as_json, _show_report)
    arguments = {**flags, "marketplace_ids": list(flags["marketplace_ids"]),
                 "options": key_values(flags["options"], "--option") or None}
    finish(ask(lambda sdk: sdk.sp.report(**arguments), timeout, WAITING), as_json, _show_report)


@sp.command("reports")
@report_list_options
@JSON
def sp_reports(status: str | None, customer_id: str | None, limit: int, as_json: bool) -> None:
    """The SP reports requested, newest first."""
    finish(ask(lambda sdk: sdk.sp.reports(status, customer_id, limit), 120), as_json, _show_reports)


def _by_body(body: str | None, required: Sequence[str]) -> bool:
    """Whether the request is --body (else the flags); a usage error unless it is given one way, whole."""
    ctx = click.get_current_context()
    flags = [p for p in ctx.command.params if p.name not in ("body", "timeout", "as_json")]
    if body is not None:
        given = [p for p in flags if ctx.get_parameter_source(p.name) is ParameterSource.COMMANDLINE]
        if given:
            raise click.UsageError(f"--body is the whole request: give either it or {_hints(ctx, given)}, not both.")
        return True
    missing = [p for p in flags if p.name in required and not ctx.params[p.name]]
    if missing:
        raise click.UsageError(f"Missing {_hints(ctx, missing)} (or --body with the whole request).")
    return False


def _hints(ctx: click.Context, params: Sequence[click.Parameter]) -> str:
    return ", ".join(p.get_error_hint(ctx) for p in params)


def _ads_arguments(flags: dict[str, Any]) -> dict[str, Any]:
    """The flags as arguments of the SDK's report and backfill."""
    return {**flags, "columns": _names(flags["columns"]), "group_by": _names(flags["group_by"]),
            "filters": [json_argument(f, "--filter") for f in flags["filters"]] or None}


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _show_profiles(outcome: Outcome) -> None:
    found = outcome.details.get("profiles", {})
    records_table("profiles", [
        {"profileId": p["profile_id"], "region": p["region"], "country": p["country_code"],
         "currency": p["currency_code"], "timezone": p["timezone"], "account": p["account_info"]["name"],
         "type": p["account_info"]["type"], "account id": p["account_info"]["id"],
         "marketplace": p["account_info"]["marketplace_string_id"]}
        for listed in found.values() if isinstance(listed, list) for p in listed])
    for region, error in found.items():
        if isinstance(error, str):
            console.print(f"[red]{region}[/]: {error}", highlight=False)


def _show_report(outcome: Outcome) -> None:
    fields = [(name, outcome.details[name]) for name in REPORT_FIELDS if outcome.details.get(name) is not None]
    if fields:
        table = Table("field", "value", title="report")
        for name, value in fields:
            table.add_row(name, str(value))
        console.print(table)


def _show_windows(outcome: Outcome) -> None:
    windows = outcome.details.get("windows")
    if isinstance(windows, list):  # else a number: the backfill was submitted, not waited for
        records_table("windows", [
            {"window": w["details"].get("window"), "status": w["status"], "from": w["details"].get("startDate"),
             "to": w["details"].get("endDate"), "S3 location or reason": w["details"].get("s3Uri") or w["summary"]}
            for w in windows])


def _show_reports(outcome: Outcome) -> None:
    records_table("reports", [
        {"request": r["requestId"], "status": r["reportStatus"], "type": r["reportType"], "table": r["tableName"],
         "from": r["startDate"], "to": r["endDate"], "tenant": r.get("customerId"), "created": r["createdAt"][:19],
         "S3 location or reason": r.get("s3Uri") or r.get("message")} for r in outcome.details.get("reports", [])],
        REPORT_COLUMNS)
