"""``amci``: the operator command line."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from amci.commands import auth, deploy, lake, reports, tenants, workflows
from amci.commands.common import (
    JSON,
    TIMEOUT,
    Target,
    ask,
    console,
    finish,
    insights,
    json_argument,
    platform_errors,
    target_options,
)
from shared.config import SERVICES

if TYPE_CHECKING:
    from local.cloud import LocalCloud


class _Amci(click.Group):
    """``amci``: whatever goes wrong talking to the platform ends in advice and an exit code, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        with platform_errors():
            return super().invoke(ctx)


@click.group(cls=_Amci)
@target_options
@click.pass_context
def main(ctx: click.Context, endpoints: Path | None, stage: str | None, profile: str | None,
         region: str | None) -> None:
    """AMC Insights: operate the platform, on the local cloud or a stage deployed to AWS.

    Exit codes: 0 succeeded, 1 the platform answered that it did not (the message says why), 2 nothing to talk
    to, no answer in time, AWS refused the caller, or a usage error (the message says what to do, on stderr)."""
    ctx.obj = Target(endpoints, stage, profile, region)


for _group in (tenants.group, auth.group, workflows.workflow, workflows.execution, workflows.schedule, reports.ads,
               reports.sp, lake.group, deploy.deploy_command, deploy.destroy_command):
    main.add_command(_group)


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
    from amci.platform import ENDPOINTS_FILE
    from local.cloud import DEFAULT_PORT, LocalCloud
    from shared import logs

    logs.configure(level="DEBUG" if verbose else "WARNING")
    parameters = dict(_key_value(p) for p in params)
    with console.status("Starting the local cloud..."):
        cloud = LocalCloud(port=port or DEFAULT_PORT, parameters=parameters,
                           endpoints_file=endpoints_file or ENDPOINTS_FILE, verbose=verbose).start()
    try:
        console.print(f"Ready in {cloud.timings['ready']:.1f}s.")
        _serve_until_stopped(cloud)
    finally:
        with console.status("Stopping..."):
            cloud.stop()
    console.print("Local cloud stopped.")


@local.command("demo")
@click.option("--port", type=int, default=0, help="Port of the AWS endpoint (default: any free port).")
@click.option("--keep", is_flag=True, help="Keep the local cloud serving after the demo, until Ctrl-C, to query "
              "its tables (endpoints in .local/endpoints.json, or where --endpoints on amci says).")
@click.pass_obj
def local_demo(target: Target, port: int, keep: bool) -> None:
    """The main job: start the local cloud, onboard a demo tenant, run an AMC workflow, request an Ads and an SP
    report, let the data lake take them in, print SQL over all three and write an HTML report with charts."""
    from amci.platform import local_endpoints_file
    from local import demo

    if keep:
        sys.exit(demo.run(port, local_endpoints_file(target.endpoints), _serve_until_stopped))
    sys.exit(demo.run(port))


@main.group()
def stage() -> None:
    """The apps' stage configuration (services/*/.chalice/config.json)."""


@stage.command("record-outputs")
@click.option("--stage", "stage_name", required=True, help="The stage to fill, e.g. prod.")
@click.option("--outputs", "outputs_file", type=click.File(), required=True,
              help="`aws cloudformation describe-stacks --stack-name amci-prod` output (JSON; - for stdin).")
def stage_record_outputs(stage_name: str, outputs_file: click.utils.LazyFile) -> None:
    """Record the platform stack's outputs as each app's environment variables (a stage an app lacks is made
    from its prod stage first)."""
    from amci.stages import ensure_stage, record_outputs, stack_outputs
    from shared.config import SERVICES

    outputs = stack_outputs(json.load(outputs_file))
    table = Table("service", "stage", "variables changed")
    for service in SERVICES:
        made = ensure_stage(service, stage_name)
        changed = record_outputs(service, stage_name, outputs)
        table.add_row(service, "made from prod" if made else "kept", ", ".join(sorted(changed)) or "-")
    console.print(table)


@main.command("request")
@click.argument("service", type=click.Choice(SERVICES))
@click.argument("body")
@TIMEOUT
@JSON
def request_cmd(service: str, body: str, timeout: float, as_json: bool) -> None:
    """Send any request to a service as it is (the AWS Solution's payloads included) and wait for its outcome.
    BODY is the request's JSON, or @FILE to read it from a file."""
    request = json_argument(body, "BODY")
    finish(ask(lambda sdk: sdk.request(service, request), timeout), as_json)


@main.command("diagnose")
@click.argument("service", type=click.Choice(SERVICES))
@click.option("--repeat", type=click.IntRange(1, 5), default=1, show_default=True,
              help="Check this many times (1 to 5), --interval seconds apart.")
@click.option("--interval", type=click.IntRange(0, 60), default=1, show_default=True)
@TIMEOUT
@JSON
def diagnose_cmd(service: str, repeat: int, interval: int, timeout: float, as_json: bool) -> None:
    """Check SERVICE end to end (its request queue, state machine, task functions and the status topic) and every
    resource it is configured to use; exit 1 naming each one that does not answer."""
    finish(ask(lambda sdk: sdk.diagnose(service, repeat, interval), timeout, f"diagnosing {service}"), as_json)


@main.command("status")
@click.option("--recent-hours", type=click.FloatRange(min=0), default=24, show_default=True,
              help="Failures this recent make the platform troubled (exit 1); older ones are shown, as history.")
@JSON
def status_cmd(recent_hours: float, as_json: bool) -> None:
    """The platform's health: queues and dead letters, executions and reports by status, the latest failures.
    Exits 1 when something waits in a dead-letter queue or failed within --recent-hours, else 0."""
    with console.status("reading the platform's queues and records..."):
        found = insights(120).status(recent_hours)
    troubled = found["troubled"]
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
    failures = Table("failed at", "kind", "owner", "what", "status", "reason", title=(
        f"Latest failures ({found['recent']['failures']} in the last {recent_hours:g} hours)"))
    for f in found["failures"]:
        failures.add_row(f["failedAt"][:19], f["kind"], str(f["owner"]), str(f["what"]), f["status"],
                         str(f["reason"] or "")[:80])
    console.print(failures)
    sys.exit(1 if troubled else 0)


@main.command("redrive")
@click.argument("service", type=click.Choice(SERVICES))
@click.option("--limit", type=click.IntRange(1), default=1000, show_default=True, help="Move at most this many.")
@click.option("--rejected", is_flag=True, help="Also send rejected requests again (they are rejected again "
              "unless what they named has changed).")
@JSON
def redrive_cmd(service: str, limit: int, rejected: bool, as_json: bool) -> None:
    """Send what SERVICE's request dead-letter queue holds back to its request queue, e.g. after an outage made
    requests fail on every attempt. Rejected requests stay, listed with their reason: their sender must fix them."""
    with console.status(f"redriving {service}'s dead letters..."):
        done = insights(120).redrive(service, limit, rejected)
    if as_json:
        click.echo(json.dumps(done, indent=2))
        return
    console.print(f"{done['redriven']} requests sent back to {service}'s request queue")
    if done["kept"]:
        kept = Table("request id", "reason", title="Left in the dead-letter queue (rejected: send a fixed request)")
        for message in done["kept"]:
            kept.add_row(message["requestId"], message["reason"])
        console.print(kept)


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


def _serve_until_stopped(cloud: LocalCloud) -> None:
    """Say where the running local cloud is and serve until Ctrl-C (or SIGTERM)."""
    stopped = threading.Event()
    # Both stop it; SIGINT explicitly, as a process started in the background by a shell inherits it ignored.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: stopped.set())
    _print_endpoints(cloud)
    console.print(f"Endpoints written to {cloud.endpoints_file}. Other processes: "
                  f"[bold]export AWS_ENDPOINT_URL={cloud.aws_endpoint_url}[/]. Ctrl-C stops.", soft_wrap=True)
    stopped.wait()


def _print_endpoints(cloud: LocalCloud) -> None:
    endpoints = cloud.endpoints
    table = Table("what", "where", title="Local cloud")
    table.add_row("AWS endpoint", endpoints["aws_endpoint_url"])
    table.add_row("region / account", f"{endpoints['region']} / {endpoints['account_id']}")
    for service, url in endpoints["request_queues"].items():
        table.add_row(f"{service} requests", url)
    table.add_row("status topic", endpoints["status_topic_arn"])
    for name, bucket in endpoints["buckets"].items():
        table.add_row(f"{name} bucket", bucket)
    console.print(table)


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise click.BadParameter(f"{text!r}: expected KEY=VALUE")
    return key, value
