"""Checking the LWA access token a request carries, the way each API refuses a bad one."""

from __future__ import annotations

from werkzeug.wrappers import Request

from local.sandbox.http import SandboxError
from local.sandbox.lwa.state import LwaState

_MESSAGES = {"expired": "The access token you provided has expired.",
             "invalid": "The access token you provided is revoked, malformed or invalid."}


def authorized_client(request: Request, lwa: LwaState, *, header: str, status: int, code: str) -> str:
    """The LWA client id behind the request's token; raise ``status`` with ``code`` when it is missing or bad.

    Ads and AMC send ``Authorization: Bearer <token>`` and answer 401; SP sends ``x-amz-access-token`` and
    answers 403.
    """
    value = request.headers.get(header, "")
    token = value.removeprefix("Bearer ").strip() if header == "Authorization" else value.strip()
    problem = lwa.validate(token) if token else "invalid"
    if problem:
        raise SandboxError(status, _MESSAGES[problem], code=code)
    return lwa.client_of(token) or ""
