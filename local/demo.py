"""``make demo``: the whole platform on one machine, end to end, through the real path (request queues, state
machines, task functions, the status topic, S3 -> EventBridge -> SQS, the Glue job, Athena on DuckDB).

A demo tenant is onboarded; an AMC workflow is created and run; an Amazon Ads report and two Selling Partner
reports are requested; the data lake turns all of it into tables; SQL over the three sources is printed, and an
HTML report with charts is written. The sandbox stands in for Amazon, with its timings shortened.
"""

from __future__ import annotations

import html
import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from local.cloud import LocalCloud
from local.inbox import Inbox, Notification
from shared import aws, lake, logs

console = Console()
REPORT = Path(".local") / "demo-report.html"
TENANT = "democustomer"
WORKFLOW_SQL = ("SELECT campaign, SUM(impressions) AS impressions, SUM(clicks) AS clicks, "
                "SUM(total_cost) AS total_cost FROM sponsored_ads_traffic GROUP BY campaign")


def run(port: int) -> int:
    """Run the demo; returns the process exit code (0 when every source reached SQL)."""
    logs.configure(level="ERROR", stream=sys.stderr)  # quiet: the tables tell the story; errors still show
    started = time.monotonic()
    with console.status("Starting the local cloud (emulated AWS account, five services, Amazon API sandbox)..."):
        cloud = LocalCloud(port=port).start()
    try:
        _fast_sandbox(cloud)
        console.print(f"[green]Local cloud up[/] in {cloud.timings['ready']:.1f}s at {cloud.aws_endpoint_url}")
        inbox = Inbox(aws.client("sqs"), aws.client("sns"), cloud.outputs["StatusTopicArn"])
        demo = Demo(cloud, inbox)
        results = demo.run()
        _write_report(results)
    finally:
        cloud.stop()
    ok = all(rows for _, _, rows in results)
    console.print(f"[bold {'green' if ok else 'red'}]Demo {'finished' if ok else 'failed'}[/] in "
                  f"{time.monotonic() - started:.0f}s. The HTML report: [bold]{REPORT.resolve()}[/]")
    _where_next()
    return 0 if ok else 1


class Demo:
    def __init__(self, cloud: LocalCloud, inbox: Inbox) -> None:
        self.cloud, self.inbox = cloud, inbox
        self.steps = Table("step", "status", "seconds", "what happened", title="What the platform did")
        self.started = time.monotonic()

    def run(self) -> list[tuple[str, str, list[dict[str, Any]]]]:
        demo = self.cloud.sandbox.credentials
        self.step("Onboard tenant", "tenant", {"requestId": "demo-onboarding", "customer_details": {
            "customer_id": TENANT, "customer_name": "Demo Customer", "bucket_exists": "false",
            "amc": {"aws_orange_account_id": "111122223333", "bucket_name": f"amc-{TENANT}-results",
                    "instance_id": demo["amc_instance_id"], "amazon_ads_advertiser_id": demo["advertiser_id"],
                    "amazon_ads_marketplace_id": demo["marketplace_id"]}}})
        self.step("Create AMC workflow", "workflow", {"customerId": TENANT, "workflowRequest": {
            "requestType": "createWorkflow", "workflowDefinition": {"workflowId": "top_campaigns",
                                                                    "sqlQuery": WORKFLOW_SQL}}})
        waiting = {
            "Run AMC workflow": self.send("workflow", {
                "customerId": TENANT, "requestType": "createExecution", "createExecutionRequest": {
                    "workflowId": "top_campaigns", "timeWindowType": "EXPLICIT", "timeWindowStart": "TODAY(-7)",
                    "timeWindowEnd": "TODAY()"}}),
            "Amazon Ads report": self.send("ads_reporting", {
                "profileId": demo["profile_id"], "region": "North America", "tableName": "campaigns",
                "customerId": TENANT, "requestBody": {
                    "startDate": "TODAY(-7)", "endDate": "TODAY(-1)", "configuration": {
                        "adProduct": "SPONSORED_PRODUCTS", "groupBy": ["campaign"], "reportTypeId": "spCampaigns",
                        "timeUnit": "DAILY", "columns": ["date", "campaignName", "impressions", "clicks", "cost",
                                                         "sales14d"]}}}),
            "Selling Partner report": self.send("sp_reporting", {
                "tablePrefix": "sales_traffic", "customerId": TENANT, "requestBody": {
                    "reportType": "GET_SALES_AND_TRAFFIC_REPORT", "marketplaceIds": [demo["marketplace_id"]],
                    "reportOptions": {"dateGranularity": "DAY", "asinGranularity": "CHILD"},
                    "dataStartTime": "TODAY(-7)", "dataEndTime": "TODAY(-1)"}}),
        }
        with console.status("An AMC execution and two reports are running; polling as the state machines do..."):
            for name, request_id in waiting.items():
                self.record(name, self.answer(request_id, 180))
        with console.status("The data lake is turning the files into tables (stage A, then a stage B run)..."):
            results = [self.query(title, sql, database) for title, sql, database in _QUERIES]
        console.print(self.steps)
        for title, _, rows in results:
            _print_rows(title, rows)
        return results

    def step(self, name: str, service: str, request: dict[str, Any]) -> None:
        self.record(name, self.answer(self.send(service, request), 120))

    def send(self, service: str, request: dict[str, Any]) -> str:
        request = {"requestId": request.get("requestId") or uuid.uuid4().hex[:16], **request}
        aws.client("sqs").send_message(QueueUrl=self.cloud.request_queue_url(service), MessageBody=json.dumps(request))
        return str(request["requestId"])

    def answer(self, request_id: str, timeout_s: float) -> Notification:
        return self.inbox.wait_for(lambda n: n.body.get("request_id") == request_id, timeout_s=timeout_s)

    def record(self, name: str, note: Notification) -> None:
        status = note.attributes["status"]
        colour = "green" if status == "SUCCEEDED" else "red"
        self.steps.add_row(name, f"[{colour}]{status}[/]", f"{time.monotonic() - self.started:.0f}",
                           note.body["summary"][:110])

    def query(self, title: str, sql: str, database: str) -> tuple[str, str, list[dict[str, Any]]]:
        """The rows, once the lake has them (it catalogues each source within seconds of its file)."""
        rows = _wait(lambda: _rows(self.cloud, sql, database), timeout_s=120)
        return title, sql, rows or []


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


def _rows(cloud: LocalCloud, sql: str, database: str) -> list[dict[str, Any]] | None:
    try:
        found = lake.query(aws.client("athena"), sql, database=database,
                           output=f"s3://{cloud.outputs['StageBucket']}/athena/").as_dicts()
    except lake.QueryFailed:
        return None  # the table is not there yet
    return found or None


def _wait(probe: Callable[[], Any], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while (value := probe()) is None and time.monotonic() < deadline:
        time.sleep(1)
    return value


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


def _where_next() -> None:
    console.print("Query more while a local cloud runs (`.venv/bin/amci local up` in another terminal):\n"
                  "  .venv/bin/amci lake query \"SELECT * FROM campaigns LIMIT 5\" --database "
                  "amci_local_adtech_ads_report\n"
                  f"Tables: amci_local_{TENANT}.top_campaigns_adhoc (AMC), amci_local_adtech_ads_report.campaigns "
                  "(Ads), amci_local_adtech_sp_report.sales_traffic_salesandtrafficbydate (SP). The README says how "
                  "to send your own requests.")
