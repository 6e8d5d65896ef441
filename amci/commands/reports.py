"""``amci ads`` and ``amci sp``: Amazon Ads profiles and reports, Selling Partner reports."""

from __future__ import annotations

import click


@click.group("ads")
def ads() -> None:
    """Amazon Ads: profiles, reports and backfills."""


@click.group("sp")
def sp() -> None:
    """Selling Partner: reports."""
