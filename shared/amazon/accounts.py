"""Credentials and connections kept for the life of a Lambda container: one token provider per credential set
(``authId``, its secret ``AUTH_SECRET_PREFIX + authId``), so access tokens are reused between events, and one HTTP
session per API, so connections are."""

from __future__ import annotations

import functools
import threading

from shared import aws
from shared.amazon.http import AmazonHttp
from shared.amazon.lwa import CredentialStore, TokenProvider
from shared.amazon.regions import Endpoints
from shared.config import require

DEFAULT_AUTH_ID = "default"
_providers: dict[str, TokenProvider] = {}
_lock = threading.Lock()


def tokens(auth_id: str | None) -> TokenProvider:
    """The token provider of credential set ``auth_id`` (``None``: the default set)."""
    auth_id = auth_id or DEFAULT_AUTH_ID
    with _lock:
        if auth_id not in _providers:
            secret = f"{require('AUTH_SECRET_PREFIX')}{auth_id}"
            _providers[auth_id] = TokenProvider(CredentialStore(aws.client("secretsmanager"), secret), http("lwa"),
                                                Endpoints.from_env())
        return _providers[auth_id]


@functools.cache
def http(api: str) -> AmazonHttp:
    return AmazonHttp(api)  # thread-safe: one per API for the container
