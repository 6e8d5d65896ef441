"""``amci workflow``, ``amci execution`` and ``amci schedule``: the workflow manager's operations, and the schedules
of every scheduling service."""

from __future__ import annotations

import json
from typing import Any

import click

from amci.commands.common import (
    JSON,
    TENANT,
    TIMEOUT,
    ask,
    finish,
    json_argument,
    key_values,
    options,
    records_table,
    show_lists,
)
from amci.sdk import Insights, Outcome, Schedules

# As the workflow manager's contracts have them (services/workflow/chalicelib/contracts.py).
WINDOWS = ("MOST_RECENT_DAY", "MOST_RECENT_WEEK", "CURRENT_MONTH", "PREVIOUS_MONTH")
STATUSES = ("QUEUED", "PENDING", "RUNNING", "PUBLISHING", "SUCCEEDED", "FAILED", "REJECTED", "CANCELLED", "ERROR")
WINDOW_COLUMNS = ("workflowExecutionId", "amcStatus", "outputS3URI", "amcMessage")


@click.group("workflow")
def workflow() -> None:
    """A tenant's saved AMC workflows."""


@click.group("execution")
def execution() -> None:
    """AMC executions: run and follow, list, cancel, sync, backfill."""


@click.group("schedule")
def schedule() -> None:
    """Schedules of AMC executions and of Ads and SP reports."""


# -- workflows ----------------------------------------------------------------------------------------------------


_definition_options = options(
    click.option("--sql", default=None, help="The workflow's SQL."),
    click.option("--sql-file", type=click.File(), default=None, help="A file holding the workflow's SQL."),
    click.option("--definition", default=None, metavar="JSON|@FILE",
                 help="AMC's other workflow fields (inputParameters, ...), as JSON or @FILE."),
)


@workflow.command("create")
@TENANT
@click.argument("workflow_id")
@_definition_options
@JSON
def workflow_create(customer_id: str, workflow_id: str, sql: str | None, sql_file: click.utils.LazyFile | None,
                    definition: str | None, as_json: bool) -> None:
    """Save SQL as workflow WORKFLOW_ID on the tenant's AMC instance (updated when it exists)."""
    query, fields = _definition(sql, sql_file, definition)
    finish(ask(lambda sdk: sdk.workflows.create(customer_id, workflow_id, query, **fields), 120, "saving"), as_json,
           _show)


@workflow.command("update")
@TENANT
@click.argument("workflow_id")
@_definition_options
@JSON
def workflow_update(customer_id: str, workflow_id: str, sql: str | None, sql_file: click.utils.LazyFile | None,
                    definition: str | None, as_json: bool) -> None:
    """Change workflow WORKFLOW_ID (the same options as create)."""
    query, fields = _definition(sql, sql_file, definition)
    finish(ask(lambda sdk: sdk.workflows.update(customer_id, workflow_id, query, **fields), 120, "saving"), as_json,
           _show)


@workflow.command("get")
@TENANT
@click.argument("workflow_id")
@JSON
def workflow_get(customer_id: str, workflow_id: str, as_json: bool) -> None:
    """Show a workflow as AMC has it."""
    finish(ask(lambda sdk: sdk.workflows.get(customer_id, workflow_id), 120), as_json, _show)


@workflow.command("list")
@TENANT
@JSON
def workflow_list(customer_id: str, as_json: bool) -> None:
    """List the workflows on the tenant's AMC instance."""
    finish(ask(lambda sdk: sdk.workflows.list(customer_id), 120), as_json, _show_workflows)


@workflow.command("delete")
@TENANT
@click.argument("workflow_id")
@JSON
def workflow_delete(customer_id: str, workflow_id: str, as_json: bool) -> None:
    """Delete a workflow (refused while a schedule runs it: the answer names the schedules)."""
    finish(ask(lambda sdk: sdk.workflows.delete(customer_id, workflow_id), 120), as_json, _show)


def _definition(sql: str | None, sql_file: click.utils.LazyFile | None,
                definition: str | None) -> tuple[str, dict[str, Any]]:
    """The workflow's SQL (--sql or --sql-file) and AMC's other fields (--definition)."""
    if (sql is None) == (sql_file is None):
        raise click.UsageError("The workflow's SQL: give --sql TEXT or --sql-file FILE, one of them.")
    fields = json_argument(definition, "--definition") if definition else {}
    if given := sorted({"workflowId", "sqlQuery"} & set(fields)):
        raise click.BadParameter(f"{', '.join(given)}: given by WORKFLOW_ID and --sql/--sql-file",
                                 param_hint="--definition")
    return sql if sql is not None else sql_file.read(), fields  # type: ignore[union-attr]


# -- executions ---------------------------------------------------------------------------------------------------


@execution.command("run")
@TENANT
@click.argument("workflow_id", required=False)
@click.option("--sql", default=None, help="Run this SQL ad hoc instead of a saved workflow.")
@click.option("--window", type=click.Choice(WINDOWS), default=None, help="A window relative to the run (AMC's).")
@click.option("--from", "start", default=None,
              help="An explicit window's start: a date, timestamp or relative date such as TODAY(-7).")
@click.option("--to", "end", default=None, help="An explicit window's end (as --from).")
@click.option("--timezone", default=None, help="The window's time zone (IANA), where relative dates resolve too.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A workflow parameter's value (repeat).")
@click.option("--option", "options", multiple=True, metavar="KEY=JSON",
              help="Any other AMC field, its value JSON, e.g. ignoreDataGaps=true (repeat).")
@TIMEOUT
@JSON
def execution_run(customer_id: str, workflow_id: str | None, sql: str | None, window: str | None, start: str | None,
                  end: str | None, timezone: str | None, params: tuple[str, ...], options: tuple[str, ...],
                  timeout: float, as_json: bool) -> None:
    """Run saved workflow WORKFLOW_ID (or --sql) and wait for it with live progress; shows where AMC wrote the
    output."""
    if (workflow_id is None) == (sql is None):
        raise click.UsageError("Run WORKFLOW_ID (a saved workflow) or --sql TEXT (ad hoc), one of them.")
    if window and (start or end):
        raise click.UsageError("The window: give --window or --from/--to, not both.")
    if bool(start) != bool(end):
        raise click.UsageError("An explicit window needs both --from and --to.")
    parameters, fields = key_values(params, "--param"), _json_values(options, "--option")
    finish(ask(lambda sdk: sdk.executions.run(customer_id, workflow_id, sql=sql, time_window_type=window,
                                              start=start, end=end, timezone=timezone, parameters=parameters,
                                              **fields), timeout, "submitting"), as_json, _show)


@execution.command("get")
@TENANT
@click.argument("execution_id")
@JSON
def execution_get(customer_id: str, execution_id: str, as_json: bool) -> None:
    """AMC's status of an execution (its workflowExecutionId)."""
    finish(ask(lambda sdk: sdk.executions.get(customer_id, execution_id), 120), as_json, _show)


@execution.command("list")
@TENANT
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only the executions in this status.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True, help="At most this many.")
@JSON
def execution_list(customer_id: str, status: str | None, limit: int, as_json: bool) -> None:
    """The tenant's executions, newest first."""
    finish(ask(lambda sdk: sdk.executions.list(customer_id, status, limit), 120), as_json, _show_executions)


@execution.command("cancel")
@TENANT
@click.argument("execution_id")
@JSON
def execution_cancel(customer_id: str, execution_id: str, as_json: bool) -> None:
    """Cancel an execution at AMC (its workflowExecutionId); exit 1 when it had already finished."""
    finish(ask(lambda sdk: sdk.executions.cancel(customer_id, execution_id), 120), as_json, _show)


@execution.command("sync")
@TENANT
@click.option("--days", type=click.IntRange(1, 90), default=1, show_default=True, help="How far back to look.")
@JSON
def execution_sync(customer_id: str, days: int, as_json: bool) -> None:
    """Bring the records up to date with AMC, executions started elsewhere (AMC's console...) included."""
    finish(ask(lambda sdk: sdk.executions.sync(customer_id, days), 120, "syncing"), as_json, _show)


@execution.command("backfill")
@TENANT
@click.argument("workflow_id")
@click.option("--from", "start", required=True, help="The first day: YYYY-MM-DD or a relative date (TODAY(-30)).")
@click.option("--to", "end", required=True, help="The last day, included (as --from).")
@click.option("--window-days", type=click.IntRange(1, 366), default=1, show_default=True,
              help="Days per execution.")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait for every window's execution, showing windows done of total.")
@TIMEOUT
@JSON
def execution_backfill(customer_id: str, workflow_id: str, start: str, end: str, window_days: int, wait: bool,
                       timeout: float, as_json: bool) -> None:
    """Run WORKFLOW_ID over --from..--to, one execution per window; with --wait, exit 1 when any window failed
    (`execution resubmit` runs those again)."""
    finish(ask(lambda sdk: sdk.executions.backfill(customer_id, workflow_id, start, end, window_days, wait), timeout,
               "submitting the backfill"), as_json, _show_backfill)


@execution.command("resubmit")
@TENANT
@click.argument("backfill_id")
@JSON
def execution_resubmit(customer_id: str, backfill_id: str, as_json: bool) -> None:
    """Run again the windows of backfill BACKFILL_ID whose latest attempt did not succeed."""
    finish(ask(lambda sdk: sdk.executions.resubmit(customer_id, backfill_id), 120), as_json, _show)


def _json_values(pairs: tuple[str, ...], name: str) -> dict[str, Any]:
    """``("k=<JSON>", ...)`` -> ``{"k": value}``; a usage error naming ``name`` otherwise."""
    found = {}
    for key, text in key_values(pairs, name).items():
        try:
            found[key] = json.loads(text)
        except ValueError:
            raise click.BadParameter(f"{key}={text}: the value is not JSON (a string is quoted: {key}='\"...\"')",
                                     param_hint=name) from None
    return found


# -- schedules ----------------------------------------------------------------------------------------------------

SERVICE = click.option("--service", type=click.Choice(["workflow", "ads", "sp"]), required=True,
                       help="The workflow manager's schedules (AMC executions), or Amazon Ads' or SP's (reports).")
SCHEDULE_TENANT = click.option("--tenant", "customer_id", default=None,
                               help="The tenant: required for workflow schedules; for ads and sp, the tenant "
                                    "notified of the reports (create and update only).")


_put_options = options(
    SERVICE, click.argument("name"),
    click.option("--expression", required=True, help="When: cron(0 6 * * ? *), rate(1 day), custom(D * 6)..."),
    click.option("--request", required=True, metavar="JSON|@FILE",
                 help='What it sends: for workflow a createExecution request ({"requestType": "createExecution",'
                      ' "createExecutionRequest": {...}}), for ads and sp a report request.'),
    SCHEDULE_TENANT,
    click.option("--timezone", default="UTC", show_default=True, help="The expression's time zone (IANA)."),
    click.option("--description", default="", help="What the schedule is for."),
    click.option("--disabled", is_flag=True, help="Paused until `schedule enable`."),
    JSON,
)


@schedule.command("create")
@_put_options
def schedule_create(service: str, name: str, as_json: bool, **put: Any) -> None:
    """Create schedule NAME (a create of an existing name updates it)."""
    _put(service, name, as_json, update=False, **put)


@schedule.command("update")
@_put_options
def schedule_update(service: str, name: str, as_json: bool, **put: Any) -> None:
    """Change schedule NAME (the same options as create; it is created when missing)."""
    _put(service, name, as_json, update=True, **put)


def _named_schedule_command(operation: str, summary: str) -> None:
    """``schedule delete``, ``enable`` and ``disable``: one schedule by name, one SDK call."""

    @schedule.command(operation, help=summary)
    @SERVICE
    @click.argument("name")
    @SCHEDULE_TENANT
    @JSON
    def command(service: str, name: str, customer_id: str | None, as_json: bool) -> None:
        _no_report_tenant(service, customer_id)
        finish(ask(lambda sdk: getattr(_schedules(sdk, service, customer_id), operation)(name), 120), as_json,
               _show)


_named_schedule_command("delete", "Delete schedule NAME (a workflow schedule is found by name when --tenant is not "
                        "given).")
_named_schedule_command("enable", "Resume schedule NAME.")
_named_schedule_command("disable", "Pause schedule NAME, keeping everything else of it.")


@schedule.command("list")
@SERVICE
@SCHEDULE_TENANT
@JSON
def schedule_list(service: str, customer_id: str | None, as_json: bool) -> None:
    """The service's schedules (a tenant's, for workflow) with their next run."""
    _workflow_tenant(service, customer_id)
    _no_report_tenant(service, customer_id)
    finish(ask(lambda sdk: _schedules(sdk, service, customer_id).list(), 120), as_json, _show)


def _put(service: str, name: str, as_json: bool, update: bool, expression: str, request: str,
         customer_id: str | None, timezone: str, description: str, disabled: bool) -> None:
    """Create or change a schedule; for ads and sp, ``--tenant`` becomes the report request's tenant."""
    _workflow_tenant(service, customer_id)
    body = json_argument(request, "--request")
    if service != "workflow" and customer_id:
        body = {**body, "customerId": customer_id}  # the tenant notified of the reports
    finish(ask(lambda sdk: _schedules(sdk, service, customer_id).create(
        name, expression, body, timezone, description, enabled=not disabled, update=update), 120), as_json, _show)


def _schedules(sdk: Insights, service: str, customer_id: str | None) -> Schedules:
    """The SDK's schedules of ``service``: the tenant's for workflow, the platform's for ads and sp."""
    if service == "workflow":
        return sdk.executions.schedules(customer_id)
    return sdk.ads.schedules if service == "ads" else sdk.sp.schedules


def _workflow_tenant(service: str, customer_id: str | None) -> None:
    """Workflow schedules are a tenant's: a usage error without ``--tenant``."""
    if service == "workflow" and not customer_id:
        raise click.UsageError("--tenant is required with --service workflow: workflow schedules are a tenant's.")


def _no_report_tenant(service: str, customer_id: str | None) -> None:
    """Ads and SP schedules are named, listed and changed without a tenant: a usage error with ``--tenant``."""
    if service != "workflow" and customer_id:
        raise click.UsageError(f"--tenant: {service} schedules are the platform's, named without a tenant "
                               "(--tenant on create and update names the tenant notified of the reports).")


# -- output -------------------------------------------------------------------------------------------------------


def _show(outcome: Outcome) -> None:
    """The outcome's fields in one table, then each list of records in its own."""
    _show_fields(outcome)
    show_lists(outcome)


def _show_workflows(outcome: Outcome) -> None:
    if "workflows" in outcome.details:
        records_table("workflows", [{"workflowId": w} for w in outcome.details["workflows"]])


def _show_executions(outcome: Outcome) -> None:
    if "executions" in outcome.details:
        records_table("executions", [{
            "requestId": e["requestId"], "workflowId": e.get("workflowId"), "status": e["executionStatus"],
            "workflowExecutionId": e.get("workflowExecutionId"), "created": e.get("createdAt", "")[:19],
            "origin": _origin(e), "amcMessage": e.get("amcMessage")} for e in outcome.details["executions"]])


def _origin(execution: dict[str, Any]) -> str:
    """What started an execution: a schedule, a backfill, a request, or AMC itself (found by sync)."""
    if "scheduleName" in execution:
        return f"schedule {execution['scheduleName']}"
    return "backfill" if "backfillId" in execution else execution.get("origin", "request")


def _show_backfill(outcome: Outcome) -> None:
    """The backfill's fields, then each window's outcome when they were waited for."""
    _show_fields(outcome)
    if _records(windows := outcome.details.get("windows")):
        records_table("windows", [{"window": w["requestId"], "status": w["status"],
                                   **{c: w["details"].get(c) for c in WINDOW_COLUMNS}} for w in windows])


def _show_fields(outcome: Outcome) -> None:
    """The outcome's details but its lists of records, one per row."""
    fields = [{"field": k, "value": v} for k, v in outcome.details.items() if not _records(v)]
    if fields:
        records_table("details", fields)


def _records(value: Any) -> bool:
    """A list of records (an empty list too: the summary has said there are none)."""
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)
