"""``amci workflow``, ``amci execution`` and ``amci schedule``: the workflow manager's operations, and the schedules
of every scheduling service."""

from __future__ import annotations

import click


@click.group("workflow")
def workflow() -> None:
    """A tenant's saved AMC workflows."""


@click.group("execution")
def execution() -> None:
    """AMC executions: run and follow, list, cancel, sync, backfill."""


@click.group("schedule")
def schedule() -> None:
    """Schedules of AMC executions and of Ads and SP reports."""
