"""``amci``: the operator command line."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

console = Console()


@click.group()
def main() -> None:
    """AMC Insights operator tools."""


@main.group()
def local() -> None:
    """The local cloud: the whole platform on this machine, no AWS account needed."""


@local.command("up")
@click.option("--port", type=int, default=None, help="Port of the AWS endpoint (default 4747, or AMCI_LOCAL_PORT).")
@click.option("--verbose", is_flag=True, help="Log every request and invocation as JSON lines.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Override a platform template parameter.")
@click.option("--endpoints", "endpoints_file", type=click.Path(path_type=Path), default=None,
              help="Where to write the endpoints (default .local/endpoints.json).")
def local_up(port: int | None, verbose: bool, params: tuple[str, ...], endpoints_file: Path | None) -> None:
    """Run the local cloud in the foreground until Ctrl-C."""
    from local.cloud import DEFAULT_PORT, ENDPOINTS_FILE, LocalCloud
    from shared import logs

    logs.configure(level="DEBUG" if verbose else "WARNING")
    parameters = dict(_key_value(p) for p in params)
    with console.status("Starting the local cloud..."):
        cloud = LocalCloud(port=port or DEFAULT_PORT, parameters=parameters,
                           endpoints_file=endpoints_file or ENDPOINTS_FILE, verbose=verbose).start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        _print_endpoints(cloud)
        console.print(f"Ready in {cloud.timings['ready']:.1f}s. Endpoints written to {cloud.endpoints_file}. "
                      f"Other processes: [bold]export AWS_ENDPOINT_URL={cloud.aws_endpoint_url}[/]. Ctrl-C stops.")
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        with console.status("Stopping..."):
            cloud.stop()
    console.print("Local cloud stopped.")


@local.command("demo")
@click.option("--port", type=int, default=0, help="Port of the AWS endpoint (default: any free port).")
def local_demo(port: int) -> None:
    """Start the local cloud and run the smoke scenario through all five services."""
    from local import demo

    sys.exit(demo.run(port))


@main.group()
def stage() -> None:
    """The apps' stage configuration (services/*/.chalice/config.json)."""


@stage.command("record-outputs")
@click.option("--stage", "stage_name", required=True, help="The stage to fill, e.g. prod.")
@click.option("--outputs", "outputs_file", type=click.File(), required=True,
              help="`aws cloudformation describe-stacks --stack-name amci-prod` output (JSON; - for stdin).")
def stage_record_outputs(stage_name: str, outputs_file: click.utils.LazyFile) -> None:
    """Record the platform stack's outputs as each app's environment variables."""
    from amci.stages import record_outputs, stack_outputs
    from shared.config import SERVICES

    outputs = stack_outputs(json.load(outputs_file))
    table = Table("service", "variables changed")
    for service in SERVICES:
        changed = record_outputs(service, stage_name, outputs)
        table.add_row(service, ", ".join(sorted(changed)) or "-")
    console.print(table)


@main.group()
def tenant() -> None:
    """Tenants: the AMC instances onboarded into the platform (requests on the tenant service's queue)."""


_ENDPOINTS = click.option("--endpoints", type=click.Path(path_type=Path), default=None,
                          help="The local cloud's endpoints file (default .local/endpoints.json).")
_JSON = click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
_TIMEOUT = click.option("--timeout", type=float, default=300, show_default=True, help="Seconds to wait for it.")


def _details_command(name: str, request_type: str, summary: str) -> click.Command:
    """``amci tenant add`` and ``update``: the same file, two requests."""

    @tenant.command(name, help=summary)
    @click.argument("details_file", type=click.File())
    @_ENDPOINTS
    @_TIMEOUT
    @_JSON
    def command(details_file: click.utils.LazyFile, endpoints: Path | None, timeout: float, as_json: bool) -> None:
        _ask_tenant(request_type, _details(details_file), endpoints, timeout, as_json)

    return command


_details_command("add", "addTenant", "Onboard a tenant (or update it in place) from a JSON file: the AWS "
                 "Solution's customer_details.")
_details_command("update", "updateTenant", "Change an onboarded tenant (same file as add).")


@tenant.command("get")
@click.argument("customer_id")
@_ENDPOINTS
@_JSON
def tenant_get(customer_id: str, endpoints: Path | None, as_json: bool) -> None:
    """Show one tenant."""
    _ask_tenant("getTenant", {"customer_id": customer_id}, endpoints, 60, as_json)


@tenant.command("list")
@_ENDPOINTS
@_JSON
def tenant_list(endpoints: Path | None, as_json: bool) -> None:
    """List the tenants."""
    _ask_tenant("listTenants", {}, endpoints, 60, as_json)


@tenant.command("offboard")
@click.argument("customer_id")
@_ENDPOINTS
@_TIMEOUT
@_JSON
def tenant_offboard(customer_id: str, endpoints: Path | None, timeout: float, as_json: bool) -> None:
    """Remove a tenant's wiring, configuration and grants; its bucket and data are kept."""
    _ask_tenant("offboardTenant", {"customer_id": customer_id}, endpoints, timeout, as_json)


@main.command("request")
@click.argument("service", type=click.Choice(["tenant", "workflow", "ads_reporting", "sp_reporting", "datalake"]))
@click.argument("body")
@_ENDPOINTS
@_TIMEOUT
@_JSON
def request_cmd(service: str, body: str, endpoints: Path | None, timeout: float, as_json: bool) -> None:
    """Send any request to a service and wait for its outcome. BODY is the request's JSON, or @FILE to read it
    from a file. Exit 0 when it succeeded (or found no data), 1 when not, 2 when nothing answered."""
    text = Path(body[1:]).read_text() if body.startswith("@") else body
    try:
        request = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="BODY") from None
    if not isinstance(request, dict):
        raise click.BadParameter("a JSON object, e.g. '{\"requestType\": \"listSchedules\"}'", param_hint="BODY")
    note = _ask(service, request, endpoints, timeout)  # as it is: the AWS Solution's payloads have no requestType
    if as_json:
        click.echo(json.dumps(note.body, indent=2))
    else:
        _print_outcome(note)
        for name, value in note.body.get("details", {}).items():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                _records_table(name, value)
    sys.exit(0 if note.attributes["status"] in ("SUCCEEDED", "NO_DATA") else 1)


def _records_table(title: str, records: list[dict[str, Any]]) -> None:
    columns = list(dict.fromkeys(key for record in records for key in record))[:8]
    table = Table(*columns, title=f"{title} ({len(records)})")
    for record in records:
        table.add_row(*(str(record.get(c, "")) for c in columns))
    console.print(table)


@main.command("status")
@_ENDPOINTS
@_JSON
def status_cmd(endpoints: Path | None, as_json: bool) -> None:
    """The platform's health: queues and dead letters, executions and reports by status, the latest failures.
    Exits 1 when something waits in a dead-letter queue or failed."""
    from amci.status import platform_status

    found = platform_status(_local_platform(endpoints))
    troubled = any(q["deadLetter"] and q["waiting"] for q in found["queues"]) or bool(found["failures"])
    if as_json:
        click.echo(json.dumps(found, indent=2, default=str))
        sys.exit(1 if troubled else 0)
    queues = Table("queue", "waiting", "in flight", title="Queues (dead-letter queues in red when not empty)")
    for q in found["queues"]:
        colour = "red" if q["deadLetter"] and q["waiting"] else "default"
        queues.add_row(f"[{colour}]{q['queue']}[/]", str(q["waiting"]), str(q["inFlight"]))
    console.print(queues)
    for kind in ("executions", "reports"):
        counts = Table("status", "count", title=f"AMC {kind}" if kind == "executions" else "Ads and SP reports")
        for status, n in found[kind].items():
            counts.add_row(status, str(n))
        console.print(counts)
    failures = Table("when", "kind", "owner", "what", "status", "reason", title="Latest failures")
    for f in found["failures"]:
        failures.add_row(f["createdAt"][:19], f["kind"], str(f["owner"]), str(f["what"]), f["status"],
                         str(f["reason"] or "")[:80])
    console.print(failures)
    sys.exit(1 if troubled else 0)


@main.group("lake")
def lake_group() -> None:
    """The data lake: SQL over its tables, and redriving what a stage gave up on."""


@lake_group.command("query")
@click.argument("statement")
@click.option("--database", default=None, help="The Glue database unqualified table names are in.")
@_ENDPOINTS
@_TIMEOUT
@_JSON
def lake_query(statement: str, database: str | None, endpoints: Path | None, timeout: float, as_json: bool) -> None:
    """Run SQL (Athena; DuckDB in the local cloud) and print the rows; exit 1 when the query fails."""
    from shared.lake import QueryFailed, query

    platform = _local_platform(endpoints)
    try:
        with console.status("querying the lake..."):
            rows = query(platform.client("athena"), statement, database=database, timeout_s=timeout,
                         output=f"s3://{platform.buckets['stage']}/athena/")
    except QueryFailed as exc:
        console.print(f"[red]The query failed:[/] {exc}")
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(rows.as_dicts(), indent=2))
        return
    table = Table(*rows.columns)
    for row in rows.rows:
        table.add_row(*("NULL" if value is None else value for value in row))
    console.print(table)
    console.print(f"{len(rows.rows)} rows")


@lake_group.command("redrive")
@click.option("--stage", "lake_stage", type=click.Choice(["a", "b"]), required=True,
              help="a: objects the light transform gave up on; b: files stage B gave up on.")
@_ENDPOINTS
@_JSON
def lake_redrive(lake_stage: str, endpoints: Path | None, as_json: bool) -> None:
    """Send a stage's dead letters back through it, all at once."""
    note = _ask("datalake", {"requestType": "redrive", "stage": lake_stage}, endpoints, 120)
    if as_json:
        click.echo(json.dumps(note.body, indent=2))
    else:
        _print_outcome(note)
    sys.exit(0 if note.attributes["status"] == "SUCCEEDED" else 1)


@main.command("package")
@click.argument("services", nargs=-1)
@click.option("--stage", default="local", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("build/packages"), show_default=True)
def package_cmd(services: tuple[str, ...], stage: str, out: Path) -> None:
    """Package apps with `chalice package`, failing when a dependency is missing."""
    from amci.package import PackagingError, package
    from shared.config import SERVICES

    table = Table("service", "zip MB", "unzipped MB", "template")
    try:
        for service in services or SERVICES:
            with console.status(f"Packaging {service}..."):
                built = package(service, stage, out)
            table.add_row(service, f"{built.zip_bytes / 1e6:.1f}", f"{built.unzipped_bytes / 1e6:.1f}",
                          str(built.template_path))
    except PackagingError as exc:
        console.print(f"[red]Packaging failed:[/] {exc}")
        sys.exit(1)
    console.print(table)


def _print_endpoints(cloud: object) -> None:
    endpoints = cloud.endpoints  # type: ignore[attr-defined]
    table = Table("what", "where", title="Local cloud")
    table.add_row("AWS endpoint", endpoints["aws_endpoint_url"])
    table.add_row("region / account", f"{endpoints['region']} / {endpoints['account_id']}")
    for service, url in endpoints["request_queues"].items():
        table.add_row(f"{service} requests", url)
    table.add_row("status topic", endpoints["status_topic_arn"])
    for name, bucket in endpoints["buckets"].items():
        table.add_row(f"{name} bucket", bucket)
    console.print(table)


def _details(details_file: click.utils.LazyFile) -> dict[str, Any]:
    try:
        payload = json.load(details_file)
    except ValueError as exc:
        raise click.BadParameter(f"{details_file.name} is not JSON: {exc}") from None
    return payload if "customer_details" in payload else {"customer_details": payload}


def _ask_tenant(request_type: str, fields: dict[str, Any], endpoints: Path | None, timeout: float,
                as_json: bool) -> None:
    """Send the request, wait for its outcome, show it; exit 0 when it succeeded, 1 when not, 2 on no answer."""
    note = _ask("tenant", {"requestType": request_type, **fields}, endpoints, timeout)
    if as_json:
        click.echo(json.dumps(note.body, indent=2))
    elif "tenants" in note.body.get("details", {}):
        _tenant_table(note.body["details"]["tenants"])
    else:
        _print_outcome(note)
        if request_type == "getTenant" and "tenant" in note.body.get("details", {}):
            _tenant_table([note.body["details"]["tenant"]])
    sys.exit(0 if note.attributes["status"] == "SUCCEEDED" else 1)


def _ask(service: str, request: dict[str, Any], endpoints: Path | None, timeout: float) -> Any:
    """Send a request to ``service`` and wait for its outcome; exit 2 when there is no platform or no answer."""
    platform = _local_platform(endpoints)
    try:
        with console.status(f"{request.get('requestType', 'request')}: waiting for the {service} service..."):
            return platform.ask(service, request, timeout)
    except TimeoutError:
        console.print(f"[red]No answer within {timeout:.0f}s[/]: see `amci local up --verbose` or the DLQ.")
        sys.exit(2)


def _local_platform(endpoints: Path | None) -> Any:
    from amci.platform import Platform, PlatformNotFound
    from local.cloud import ENDPOINTS_FILE

    try:
        return Platform.local(endpoints or ENDPOINTS_FILE)
    except PlatformNotFound as exc:
        console.print(f"[red]{exc}[/]")
        sys.exit(2)


def _print_outcome(note: Any) -> None:
    colour = "green" if note.attributes["status"] == "SUCCEEDED" else "red"
    console.print(f"[{colour}]{note.attributes['status']}[/] {note.body['summary']}")


def _tenant_table(tenants: list[dict[str, Any]]) -> None:
    table = Table("tenant", "name", "status", "bucket", "pattern", "AMC instance", title=f"{len(tenants)} tenants")
    for t in tenants:
        table.add_row(t["customerId"], t.get("customerName", ""), t.get("status", ""), t.get("bucketName", ""),
                      t.get("pattern", ""), t.get("amcInstanceId", ""))
    console.print(table)


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise click.BadParameter(f"{text!r}: expected KEY=VALUE")
    return key, value
