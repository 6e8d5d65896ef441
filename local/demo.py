"""``make demo``: the whole platform on one machine, end to end, through the real path (request queues, state
machines, task functions, the status topic, S3 -> EventBridge -> SQS, the Glue job, Athena on DuckDB).

Every step goes through the SDK (``amci/sdk.py``), as an analyst's would: a demo tenant is onboarded; an AMC
workflow is created and run while an Amazon Ads report and a Selling Partner report are requested, their progress
shown live; the data lake turns all of it into tables; SQL over the three sources is printed, and an
HTML report with charts is written. The sandbox stands in for Amazon, with its timings shortened.
"""

from __future__ import annotations

import html
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from amci.platform import ENDPOINTS_FILE, Platform
from amci.sdk import Insights, Outcome
from amci.status import lake_status
from local.cloud import LocalCloud
from shared import lake, logs

console = Console()
REPORT = Path(".local") / "demo-report.html"
TENANT = "democustomer"
WORKFLOW_SQL = ("SELECT campaign, SUM(impressions) AS impressions, SUM(clicks) AS clicks, "
                "SUM(total_cost) AS total_cost FROM sponsored_ads_traffic GROUP BY campaign")


def run(port: int, endpoints_file: Path | None = None, serve: Callable[[LocalCloud], None] | None = None) -> int:
    """Run the demo; returns the process exit code (0 when every source reached SQL). With ``serve``, the local
    cloud's endpoints go to ``endpoints_file`` and ``serve(cloud)`` runs after the demo, before the cloud stops
    (``amci local demo --keep``: its tables live in the emulator's memory, gone once it stops)."""
    logs.configure(level="ERROR", stream=sys.stderr)  # quiet: the tables tell the story; errors still show
    started = time.monotonic()
    with console.status("Starting the local cloud (emulated AWS account, five services, Amazon API sandbox)..."):
        cloud = LocalCloud(port=port, endpoints_file=endpoints_file if serve else None).start()
    try:
        _fast_sandbox(cloud)
        console.print(f"[green]Local cloud up[/] in {cloud.timings['ready']:.1f}s at {cloud.aws_endpoint_url}")
        results = Demo(cloud.endpoints, cloud.sandbox.credentials).run()
        _write_report(results)
        ok = all(rows for _, _, rows in results)
        console.print(f"[bold {'green' if ok else 'red'}]Demo {'finished' if ok else 'failed'}[/] in "
                      f"{time.monotonic() - started:.0f}s. The HTML report: [bold]{REPORT.resolve()}[/]")
        if serve is None:
            console.print("The local cloud has stopped, and its tables with it (the emulator keeps them in memory). "
                          "To query them, run the demo with [bold]--keep[/]: `.venv/bin/amci local demo --keep` "
                          "serves until Ctrl-C.", soft_wrap=True)
        else:
            _where_next(endpoints_file)
            serve(cloud)
    finally:
        cloud.stop()
    return 0 if ok else 1


class Demo:
    """The steps, through the SDK as an analyst would take them; each outcome becomes a row of ``steps``."""

    def __init__(self, endpoints: dict[str, Any], demo: dict[str, str]) -> None:
        self.endpoints, self.demo = endpoints, demo
        self.platform = Platform.from_endpoints(endpoints)
        self.sdk = Insights(self.platform, timeout_s=180)
        self.steps = Table("step", "status", "seconds", "what happened", title="What the platform did")
        self.started = time.monotonic()

    def run(self) -> list[tuple[str, str, list[dict[str, Any]]]]:
        demo = self.demo
        self.record("Onboard tenant", self.sdk.tenants.add({
            "customer_id": TENANT, "customer_name": "Demo Customer", "bucket_exists": "false",
            "amc": {"aws_orange_account_id": "111122223333", "bucket_name": f"amc-{TENANT}-results",
                    "instance_id": demo["amc_instance_id"], "amazon_ads_advertiser_id": demo["advertiser_id"],
                    "amazon_ads_marketplace_id": demo["marketplace_id"]}}))
        self.record("Create AMC workflow", self.sdk.workflows.create(TENANT, "top_campaigns", WORKFLOW_SQL))
        for name, outcome in self.together({
            "Run AMC workflow": lambda sdk: sdk.executions.run(TENANT, "top_campaigns", start="TODAY(-7)",
                                                               end="TODAY()"),
            "Amazon Ads report": lambda sdk: sdk.ads.report(
                demo["profile_id"], "North America", "spCampaigns", "TODAY(-7)", "TODAY(-1)",
                ["date", "campaignName", "impressions", "clicks", "cost", "sales14d"], ["campaign"],
                table="campaigns", customer_id=TENANT),
            "Selling Partner report": lambda sdk: sdk.sp.report(
                "GET_SALES_AND_TRAFFIC_REPORT", [demo["marketplace_id"]], "TODAY(-7)", "TODAY(-1)",
                {"dateGranularity": "DAY", "asinGranularity": "CHILD"}, table_prefix="sales_traffic",
                customer_id=TENANT),
        }).items():
            self.record(name, outcome)
        results = self.lake_results()
        console.print(self.steps)
        for title, _, rows in results:
            _print_rows(title, rows)
        return results

    def together(self, jobs: dict[str, Callable[[Insights], Outcome]]) -> dict[str, Outcome]:
        """Run the jobs at once, showing where each is (the status the platform records) until all are done."""
        shown = {name: "QUEUED" for name in jobs}
        # One boto3 session per thread, made here: a session is not thread-safe, not even to create clients.
        sdks = {name: Insights(Platform.from_endpoints(self.endpoints), timeout_s=180,
                               progress=lambda p, name=name: shown.__setitem__(name, p.status)) for name in jobs}

        def follow(name: str, job: Callable[[Insights], Outcome]) -> Outcome:
            outcome = job(sdks[name])
            shown[name] = outcome.status
            return outcome

        with ThreadPoolExecutor(len(jobs)) as pool, Live(console=console, transient=True) as live:
            futures = {name: pool.submit(follow, name, job) for name, job in jobs.items()}
            while not all(future.done() for future in futures.values()):
                live.update(self._progress("An AMC execution and two reports, as the platform records them",
                                           shown))
                time.sleep(0.25)
        return {name: future.result() for name, future in futures.items()}

    def lake_results(self) -> list[tuple[str, str, list[dict[str, Any]]]]:
        """Each query's rows, once the lake has them (it catalogues each source within seconds of its file)."""
        found: dict[str, list[dict[str, Any]]] = {}
        deadline = time.monotonic() + 120
        with Live(console=console, transient=True) as live:
            while len(found) < len(_QUERIES) and time.monotonic() < deadline:
                for title, sql, database in _QUERIES:
                    if title not in found and (rows := self._rows(sql, database)):
                        found[title] = rows
                live.update(self._lake_progress(found))
                time.sleep(1)
        return [(title, sql, found.get(title, [])) for title, sql, _ in _QUERIES]

    def record(self, name: str, outcome: Outcome) -> None:
        colour = "green" if outcome.ok else "red"
        self.steps.add_row(name, f"[{colour}]{outcome.status}[/]", f"{time.monotonic() - self.started:.0f}",
                           outcome.summary[:110])

    def _rows(self, sql: str, database: str) -> list[dict[str, Any]] | None:
        try:
            return self.sdk.lake.query(sql, database=database).as_dicts()
        except lake.QueryFailed:
            return None  # the table is not there yet

    def _progress(self, title: str, shown: dict[str, str]) -> Table:
        table = Table("job", "status", "seconds", title=title)
        for name, status in shown.items():
            table.add_row(name, status, f"{time.monotonic() - self.started:.0f}")
        return table

    def _lake_progress(self, found: dict[str, list[dict[str, Any]]]) -> Table:
        table = Table("dataset", "files waiting", "in a stage B run", "latest run",
                      title=f"The data lake: {len(found)} of {len(_QUERIES)} sources queryable")
        for dataset in lake_status(self.platform, list(_DATASETS)):
            run = dataset["latestRun"]
            table.add_row(dataset["dataset"], str(dataset["waiting"]), str(dataset["inRun"]),
                          f"{run['status']} ({run['totals'].get('rows', 0)} rows)" if run else "none yet")
        return table


_DATASETS = ("adtech-amc", "adtech-ads_report", "adtech-sp_report")
_QUERIES = [
    ("AMC: top campaigns by impressions (the tenant's own database)",
     "SELECT campaign, impressions, clicks, ROUND(total_cost, 2) AS total_cost FROM top_campaigns_adhoc "
     "ORDER BY impressions DESC LIMIT 8", f"amci_local_{TENANT}"),
    ("Amazon Ads: sponsored products campaigns by sales",
     "SELECT campaignname AS campaign, SUM(impressions) AS impressions, SUM(clicks) AS clicks, "
     "ROUND(SUM(cost), 2) AS cost, ROUND(SUM(sales14d), 2) AS sales FROM campaigns GROUP BY 1 ORDER BY sales DESC "
     "LIMIT 8", "amci_local_adtech_ads_report"),
    ("Selling Partner: sales and traffic by day",
     "SELECT date, salesbydate_unitsordered AS units, ROUND(salesbydate_orderedproductsales_amount, 2) AS sales, "
     "trafficbydate_sessions AS sessions, trafficbydate_pageviews AS page_views "
     "FROM sales_traffic_salesandtrafficbydate ORDER BY date", "amci_local_adtech_sp_report"),
]


def _fast_sandbox(cloud: LocalCloud) -> None:
    """Amazon takes minutes; the demo's Amazon takes seconds. Its AMC instance delivers into the demo tenant's
    bucket, as a real instance delivers into the bucket it was set up with."""
    sandbox, demo = cloud.sandbox, cloud.sandbox.credentials
    sandbox.amc.register_instance(demo["amc_instance_id"], demo["advertiser_id"], demo["marketplace_id"],
                                  results_bucket=f"amc-{TENANT}-results")
    sandbox.amc.timings = replace(sandbox.amc.timings, pending_s=0.5, running_s=2.0, publishing_s=0.5)
    sandbox.ads.state.timings = replace(sandbox.ads.timings, pending_s=1.0, processing_s=2.0)
    sandbox.sp.timings.queued_s, sandbox.sp.timings.processing_s = 1.0, 2.0


def _print_rows(title: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        console.print(f"[red]{title}: no rows[/]")
        return
    table = Table(*rows[0], title=title)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)


def _write_report(results: list[tuple[str, str, list[dict[str, Any]]]]) -> None:
    """One HTML page: each query's chart (inline SVG bars of its first numeric column) and table."""
    sections = []
    for title, sql, rows in results:
        sections.append(f"<h2>{html.escape(title)}</h2><pre>{html.escape(sql)}</pre>{_chart(rows)}{_table(rows)}")
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text("<!doctype html><meta charset=utf-8><title>AMC Insights demo</title><style>"
                      "body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse}"
                      "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}pre{color:#555}"
                      "</style><h1>AMC Insights: the demo's data, by SQL over the lake</h1>" + "".join(sections))


def _chart(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>no rows</p>"
    label, *others = list(rows[0])
    measure = next((c for c in others if _number(rows[0][c]) is not None), None)
    if measure is None:
        return ""
    values = [_number(r[measure]) or 0.0 for r in rows]
    top = max(values) or 1.0
    bars = "".join(
        f'<text x="0" y="{i * 22 + 15}" font-size="12">{html.escape(str(r[label]))[:30]}</text>'
        f'<rect x="220" y="{i * 22 + 3}" width="{400 * v / top:.0f}" height="16" fill="#2a7ab0"/>'
        f'<text x="{225 + 400 * v / top:.0f}" y="{i * 22 + 15}" font-size="12">{v:,.2f}</text>'
        for i, (r, v) in enumerate(zip(rows, values, strict=True)))
    return f'<p>{html.escape(measure)}</p><svg width="720" height="{len(rows) * 22 + 6}">{bars}</svg>'


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in r.values())
                   + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _where_next(endpoints_file: Path) -> None:
    at = "" if endpoints_file == ENDPOINTS_FILE else f"--endpoints {endpoints_file} "
    console.print(f"The local cloud keeps serving until Ctrl-C. Query more in another terminal:\n"
                  f"  .venv/bin/amci {at}lake query \"SELECT * FROM campaigns LIMIT 5\" --database "
                  "amci_local_adtech_ads_report\n"
                  f"Tables: amci_local_{TENANT}.top_campaigns_adhoc (AMC), amci_local_adtech_ads_report.campaigns "
                  "(Ads), amci_local_adtech_sp_report.sales_traffic_salesandtrafficbydate (SP). The README says how "
                  "to send your own requests.", soft_wrap=True)
