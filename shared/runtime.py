"""Start-up of a service inside Lambda: JSON logs and AWS X-Ray, only where deployed (not while Chalice packages
the app, not in the local cloud, which configures logging itself)."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping

from shared import logs


def is_deployed(environ: Mapping[str, str] | None = None) -> bool:
    """True inside a real Lambda."""
    env = os.environ if environ is None else environ
    in_lambda = bool(env.get("AWS_LAMBDA_FUNCTION_NAME"))
    return in_lambda and not env.get("AWS_CHALICE_CLI_MODE") and not env.get("AMCI_LOCAL")


def init(service: str | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Configure logging and patch boto3/botocore/requests for X-Ray when deployed; returns whether it did."""
    if not is_deployed(environ):
        return False
    logs.configure(service, replace_all=True)  # Lambda's own root handler would print every line twice
    _patch_for_xray()
    return True


@functools.cache  # once per container, though both the shared tasks and the app call init
def _patch_for_xray() -> None:
    from aws_xray_sdk.core import patch  # imported here: it costs cold-start time where it is not used

    patch(("boto3", "botocore", "requests"), raise_errors=False)
