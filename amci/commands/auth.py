"""``amci auth``: Login with Amazon credential sets, one per ``authId``, stored in Secrets Manager."""

from __future__ import annotations

import click


@click.group("auth")
def group() -> None:
    """Amazon credentials (Login with Amazon), one set per authId, kept in Secrets Manager."""
