"""``amci lake``: datasets, SQL, the pipeline's state, and redriving what a stage gave up on."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click
from rich.table import Table

from amci.commands.common import JSON, TIMEOUT, ask, console, fail, finish, insights, json_argument, records_table
from shared.lake import QueryFailed


@click.group("lake")
def group() -> None:
    """The data lake: datasets, SQL over its tables, its pipeline, and its dead letters."""


@group.command("query")
@click.argument("statement")
@click.option("--database", default=None, help="The Glue database unqualified table names are in.")
@TIMEOUT
@JSON
def query(statement: str, database: str | None, timeout: float, as_json: bool) -> None:
    """Run SQL (Athena; DuckDB in the local cloud) and print the rows; exit 1 when the query fails, 2 when it has
    not finished within --timeout."""
    sdk = insights(timeout)
    try:
        with console.status("querying the lake..."):
            rows = sdk.lake.query(statement, database=database, timeout_s=timeout)
    except QueryFailed as exc:
        fail(f"The query failed: {exc}", 1)
    if as_json:
        click.echo(json.dumps(rows.as_dicts(), indent=2))
        return
    table = Table(*rows.columns)
    for row in rows.rows:
        table.add_row(*("NULL" if value is None else value for value in row))
    console.print(table)
    console.print(f"{len(rows.rows)} rows")


@group.command("datasets")
@JSON
def datasets(as_json: bool) -> None:
    """The datasets the lake knows: built-in and registered, with their stage A and batching limits."""
    finish(ask(lambda sdk: sdk.lake.datasets(), 120), as_json)


@group.command("register")
@click.argument("dataset")
@JSON
def register(dataset: str, as_json: bool) -> None:
    """Register (or change) a custom dataset. DATASET is its JSON, or @FILE: {"team", "dataset", "stageA":
    "lake_transforms.<module>:<function>", optional "stageB" (the same form), "minItems", "maxItems",
    "maxWaitSeconds"}."""
    body = json_argument(dataset, "DATASET")
    finish(ask(lambda sdk: sdk.lake.register(body), 120), as_json)


@group.command("status")
@JSON
def status(as_json: bool) -> None:
    """Per dataset: files waiting for stage B, files in a run, and the latest run with its totals."""
    with console.status("reading the pipeline..."):
        found = insights(120).lake.status()
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    rows = [{"dataset": d["dataset"], "waiting": d["waiting"], "in a run": d["inRun"], **_run(d["latestRun"])}
            for d in found]
    records_table("datasets", rows)


@group.command("redrive")
@click.option("--stage", "lake_stage", type=click.Choice(["a", "b"]), required=True,
              help="a: objects the light transform gave up on; b: files stage B gave up on.")
@JSON
def redrive(lake_stage: str, as_json: bool) -> None:
    """Send a stage's dead letters back through it, all at once."""
    finish(ask(lambda sdk: sdk.lake.redrive(lake_stage), 120), as_json)


def _run(run: dict | None) -> dict[str, object]:
    if run is None:
        return {"latest run": "none yet"}
    started = datetime.fromtimestamp(run["startedAt"], UTC).isoformat(timespec="seconds")
    totals = run["totals"]
    return {"latest run": f"{run['status']} {started}", "files": run["files"], "rows": totals.get("rows", ""),
            "rejected": totals.get("rejected", ""), "quarantined": totals.get("quarantined", "")}
