"""``amci tenant``: onboard, change, show, list and offboard tenants (the tenant service)."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from amci.commands.common import JSON, TIMEOUT, ask, console, finish
from amci.sdk import Outcome


@click.group("tenant")
def group() -> None:
    """Tenants: the AMC instances onboarded into the platform."""


def _details_command(name: str, summary: str, waiting: str) -> None:
    """``tenant add`` and ``update``: the same file, two requests."""

    @group.command(name, help=summary)
    @click.argument("details_file", type=click.File())
    @TIMEOUT
    @JSON
    def command(details_file: click.utils.LazyFile, timeout: float, as_json: bool) -> None:
        details = _details(details_file)
        finish(ask(lambda sdk: getattr(sdk.tenants, name)(details), timeout, waiting), as_json)


_details_command("add", "Onboard a tenant (or update it in place) from a JSON file: the AWS Solution's "
                 "customer_details.", "onboarding")
_details_command("update", "Change an onboarded tenant (the same file as add).", "updating")


@group.command("get")
@click.argument("customer_id")
@JSON
def get(customer_id: str, as_json: bool) -> None:
    """Show one tenant."""
    finish(ask(lambda sdk: sdk.tenants.get(customer_id), 120), as_json, _show)


@group.command("list")
@JSON
def list_(as_json: bool) -> None:
    """List the tenants."""
    finish(ask(lambda sdk: sdk.tenants.list(), 120), as_json, _show)


@group.command("offboard")
@click.argument("customer_id")
@TIMEOUT
@JSON
def offboard(customer_id: str, timeout: float, as_json: bool) -> None:
    """Remove a tenant's wiring, configuration and grants; its bucket and data are kept."""
    finish(ask(lambda sdk: sdk.tenants.offboard(customer_id), timeout, "offboarding"), as_json)


def _show(outcome: Outcome) -> None:
    tenants = outcome.details.get("tenants") or ([outcome.details["tenant"]] if "tenant" in outcome.details else [])
    if not tenants:
        return
    table = Table("tenant", "name", "status", "bucket", "pattern", "AMC instance", title=f"{len(tenants)} tenants")
    for t in tenants:
        table.add_row(t["customerId"], t.get("customerName", ""), t.get("status", ""), t.get("bucketName", ""),
                      t.get("pattern", ""), t.get("amcInstanceId", ""))
    console.print(table)


def _details(details_file: click.utils.LazyFile) -> dict[str, Any]:
    try:
        payload = json.load(details_file)
    except ValueError as exc:
        raise click.BadParameter(f"{details_file.name} is not JSON: {exc}", param_hint="DETAILS_FILE") from None
    return payload.get("customer_details", payload)
