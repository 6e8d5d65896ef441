"""``amci``: the operator command line."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

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
def local_up(port: int | None, verbose: bool, params: tuple[str, ...]) -> None:
    """Run the local cloud in the foreground until Ctrl-C."""
    from local.cloud import DEFAULT_PORT, ENDPOINTS_FILE, LocalCloud
    from shared import logs

    logs.configure(level="DEBUG" if verbose else "WARNING")
    parameters = dict(_key_value(p) for p in params)
    with console.status("Starting the local cloud..."):
        cloud = LocalCloud(port=port or DEFAULT_PORT, parameters=parameters, endpoints_file=ENDPOINTS_FILE,
                           verbose=verbose).start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        _print_endpoints(cloud)
        console.print(f"Ready in {cloud.timings['ready']:.1f}s. Endpoints written to {ENDPOINTS_FILE}. "
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
    import json

    from amci.stages import record_outputs, stack_outputs
    from shared.config import SERVICES

    outputs = stack_outputs(json.load(outputs_file))
    table = Table("service", "variables changed")
    for service in SERVICES:
        changed = record_outputs(service, stage_name, outputs)
        table.add_row(service, ", ".join(sorted(changed)) or "-")
    console.print(table)


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


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise click.BadParameter(f"{text!r}: expected KEY=VALUE")
    return key, value
