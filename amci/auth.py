"""Amazon credentials: onboarding with Login with Amazon's authorization-code flow, and keeping one credential set
per ``authId`` in its own Secrets Manager secret, ``<AuthSecretPrefix><authId>``, encrypted with the platform's key,
in the layout the services read (``client_id``, ``client_secret``, ``refresh_token``, and the access token cached
with its expiry).

    auth = Insights.local().auth
    consent = auth.consent_url(client_id, "https://example.com/amazon")  # open consent.url, allow access
    auth.store("acme", code, client_id, client_secret, "https://example.com/amazon")  # within 5 minutes
    auth.check("acme").token_expires_at

These talk to Secrets Manager and Login with Amazon directly, not to a service. Nothing here returns, prints or
logs a token, a client secret or a code.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

from amci.platform import Platform
from shared.amazon import errors as amazon_errors
from shared.amazon.errors import AuthorizationFailed
from shared.amazon.http import AmazonHttp, Deadline
from shared.amazon.lwa import CredentialStore, request_tokens
from shared.amazon.regions import CONSENT_PATHS, region_of
from shared.contracts import AUTH_ID_PATTERN

ADS_SCOPE = "advertising::campaign_management"  # Amazon Ads and AMC
CODE_PARAMETERS = {"ads": "code", "sp": "spapi_oauth_code"}  # what the consent adds to the redirect URI
LWA_BUDGET_S = 60  # retries of Login with Amazon give up after this long


class NoCredentials(LookupError):
    """No credential set of that ``authId``, or one without what Login with Amazon needs."""


@dataclass(frozen=True)
class Consent:
    """Where to send the user, and what comes back: the browser goes to ``redirect_uri`` with ``code_parameter``
    and ``state`` (compare it with this one: any other did not start here) in its query."""

    api: str
    region: str
    url: str
    redirect_uri: str
    state: str

    @property
    def code_parameter(self) -> str:
        return CODE_PARAMETERS[self.api]

    def as_dict(self) -> dict[str, str]:
        return {"api": self.api, "region": self.region, "url": self.url, "redirectUri": self.redirect_uri,
                "state": self.state, "codeParameter": self.code_parameter}


@dataclass(frozen=True)
class CredentialSet:
    """What can be shown of one credential set: never its secrets."""

    auth_id: str
    secret: str
    client_id: str | None = None
    changed_at: datetime | None = None
    token_expires_at: datetime | None = None  # of the access token a check obtained

    def as_dict(self) -> dict[str, str]:
        fields = {"authId": self.auth_id, "secret": self.secret, "clientId": self.client_id,
                  "changedAt": self.changed_at, "tokenExpiresAt": self.token_expires_at}
        return {k: v.isoformat(timespec="seconds") if isinstance(v, datetime) else v
                for k, v in fields.items() if v is not None}


class Auth:
    """The platform's credential sets (``Insights.auth``)."""

    def __init__(self, platform: Platform, http: AmazonHttp | None = None) -> None:
        self.platform = platform
        self.endpoints = platform.amazon_endpoints
        self._http = http or AmazonHttp("lwa")

    @cached_property
    def _secrets(self) -> Any:
        return self.platform.client("secretsmanager")

    def secret_name(self, auth_id: str) -> str:
        return f"{self.platform.outputs['AuthSecretPrefix']}{valid_auth_id(auth_id)}"

    def consent_url(self, app_id: str, redirect_uri: str, api: str = "ads", region: str = "NA",
                    state: str | None = None, draft: bool = False) -> Consent:
        """The page where the user grants the app access: for ``ads`` (Amazon Ads and AMC) Login with Amazon's,
        ``app_id`` being the app's client id; for ``sp`` Seller Central's, ``app_id`` being the SP-API
        application id (``draft``: the app is not published yet). ``state``: a random one when None."""
        state = state or secrets.token_urlsafe(24)
        if api == "ads":
            page, query = "consent", {"client_id": app_id, "scope": ADS_SCOPE, "response_type": "code",
                                      "redirect_uri": redirect_uri, "state": state}
        elif api == "sp":
            page, query = "sellercentral", {"application_id": app_id, "state": state, "redirect_uri": redirect_uri,
                                            **({"version": "beta"} if draft else {})}
        else:
            raise ValueError(f"api {api!r}: ads or sp")
        where = region_of(region)
        url = f"{self.endpoints.base(page, where)}{CONSENT_PATHS[page]}?{urlencode(query)}"
        return Consent(api, where.value, url, redirect_uri, state)

    def store(self, auth_id: str, code: str, client_id: str, client_secret: str, redirect_uri: str,
              region: str = "NA") -> CredentialSet:
        """Trade a consent's code (single use, valid 5 minutes, with the redirect URI the consent used) for a
        refresh token and keep the credential set as ``auth_id``, replacing what it held. AuthorizationFailed
        when Login with Amazon refuses."""
        name = self.secret_name(auth_id)
        tokens = self._tokens(region, {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                                       "client_id": client_id, "client_secret": client_secret})
        self._keep(auth_id, name, {"client_id": client_id, "client_secret": client_secret,
                                   "refresh_token": tokens["refresh_token"], **_access(tokens)})
        return CredentialSet(auth_id, name, client_id)

    def add(self, auth_id: str, client_id: str, client_secret: str, refresh_token: str) -> CredentialSet:
        """Keep a refresh token obtained elsewhere (an SP-API private app's self-authorization, say) as
        ``auth_id``, replacing what it held; :meth:`check` proves it works."""
        name = self.secret_name(auth_id)
        self._keep(auth_id, name, {"client_id": client_id, "client_secret": client_secret,
                                   "refresh_token": refresh_token, "access_token": None, "access_token_expires_at": 0})
        return CredentialSet(auth_id, name, client_id)

    def check(self, auth_id: str, region: str = "NA") -> CredentialSet:
        """Obtain an access token with the stored refresh token, proving the credentials work (the token is kept
        for the services). NoCredentials when there are none; AuthorizationFailed when Amazon refuses them."""
        store = CredentialStore(self._secrets, self.secret_name(auth_id))
        try:
            credentials = store.load()
        except amazon_errors.NoCredentials:
            raise NoCredentials(f"no credential set {auth_id!r} (secret {store.secret_id}): onboard it with "
                                "`amci auth url` and `amci auth store`, or `amci auth add`") from None
        except AuthorizationFailed as exc:
            raise NoCredentials(exc.detail) from None
        tokens = self._tokens(region, {"grant_type": "refresh_token", "refresh_token": credentials.refresh_token,
                                       "client_id": credentials.client_id, "client_secret": credentials.client_secret})
        access = _access(tokens)
        store.update({**access, "refresh_token": tokens.get("refresh_token") or credentials.refresh_token})
        return CredentialSet(auth_id, store.secret_id, credentials.client_id,
                             token_expires_at=datetime.fromtimestamp(access["access_token_expires_at"], UTC))

    def list(self) -> tuple[CredentialSet, ...]:
        """Every credential set, by authId, with when it last changed (read from the secrets' metadata only)."""
        prefix = self.platform.outputs["AuthSecretPrefix"]
        pages = self._secrets.get_paginator("list_secrets").paginate(Filters=[{"Key": "name", "Values": [prefix]}])
        found = [CredentialSet(s["Name"].removeprefix(prefix), s["Name"],
                               changed_at=s.get("LastChangedDate") or s.get("CreatedDate"))
                 for page in pages for s in page["SecretList"] if s["Name"].startswith(prefix)]
        return tuple(sorted(found, key=lambda c: c.auth_id))

    def _tokens(self, region: str, form: dict[str, str]) -> dict[str, Any]:
        return request_tokens(self._http, self.endpoints, region_of(region), form, Deadline(LWA_BUDGET_S))

    def _keep(self, auth_id: str, name: str, record: dict[str, Any]) -> None:
        """Write the credential set to its secret, creating it (with the platform's key) when missing."""
        tags = {"amci:component": "auth", "amci:auth-id": auth_id, "amci:kept-by": "amci auth",
                # a platform stack from before its Stage output tells none
                **({"amci:stage": self.platform.outputs["Stage"]} if "Stage" in self.platform.outputs else {})}
        try:
            self._secrets.create_secret(
                Name=name, SecretString=json.dumps(record), KmsKeyId=self.platform.outputs["PlatformKeyArn"],
                Description=f"Login with Amazon credentials of authId {auth_id} (client_id, client_secret, "
                            "refresh_token), kept by amci auth",
                Tags=[{"Key": key, "Value": value} for key, value in tags.items()])
        except self._secrets.exceptions.ResourceExistsException:
            CredentialStore(self._secrets, name).update(record)


def valid_auth_id(auth_id: str) -> str:
    """``auth_id`` when it can name a credential set; ValueError otherwise."""
    if not re.match(AUTH_ID_PATTERN, auth_id):
        raise ValueError(f"authId {auth_id!r}: 1 to 64 letters, digits, _ or -")
    return auth_id


def _access(tokens: dict[str, Any]) -> dict[str, Any]:
    """The access token of a token response, as the services cache it."""
    return {"access_token": tokens["access_token"],
            "access_token_expires_at": time.time() + float(tokens.get("expires_in", 3600))}
