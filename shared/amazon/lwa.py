"""Login with Amazon: credentials per ``authId`` in Secrets Manager, and access tokens refreshed before they
expire, cached in memory and written back to the secret so other Lambda containers reuse them.

Both of the AWS Solution's secret layouts are read: the single-credential one (``client_id``, ``client_secret``,
``refresh_token``... at the top level) and the multi-credential one (``{authId: {...}}``).

Concurrent writers never lose each other's updates: a new version's ``ClientRequestToken`` is derived from the
version it was built on, so of two writers that read the same version only the first can write (Secrets Manager
refuses the same token with other content); the second re-reads and merges on top.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.amazon.errors import AmazonApiError, AuthorizationFailed, NoCredentials
from shared.amazon.http import AmazonHttp, Deadline
from shared.amazon.regions import Endpoints, Region

log = logging.getLogger(__name__)
REFRESH_MARGIN_S = 300  # refresh five minutes early: a long call must not start with a token about to expire
_VERSION_NAMESPACE = uuid.UUID("6f1c1f3e-3c0f-4b8e-9d6a-2b4f3f2a9c71")


@dataclass(frozen=True)
class LwaCredentials:
    client_id: str
    client_secret: str
    refresh_token: str
    access_token: str | None = None
    access_token_expires_at: float = 0.0


class CredentialStore:
    """One credential set in Secrets Manager: ``auth_id`` picks it in a multi-credential secret."""

    def __init__(self, secretsmanager: Any, secret_id: str, auth_id: str | None = None) -> None:
        self._secrets = secretsmanager
        self.secret_id = secret_id
        self.auth_id = auth_id

    def load(self) -> LwaCredentials:
        record = self._record(self._read()[0])
        missing = [k for k in ("client_id", "client_secret", "refresh_token") if not record.get(k)]
        if missing:
            raise AuthorizationFailed("lwa", "load", f"secret {self.secret_id}{self._which()} lacks "
                                      f"{', '.join(missing)}: store the credentials first (amci auth)")
        return LwaCredentials(record["client_id"], record["client_secret"], record["refresh_token"],
                              record.get("access_token"), float(record.get("access_token_expires_at") or 0))

    def update(self, changes: Mapping[str, Any], attempts: int = 10) -> None:
        """Merge ``changes`` into the credential set, without losing a concurrent writer's update."""
        for attempt in range(attempts):
            content, version = self._read()
            record = {**self._record(content), **changes}
            merged = {**content, self.auth_id: record} if self._multi(content) else record
            token = str(uuid.uuid5(_VERSION_NAMESPACE, f"{self.secret_id}:{version}"))
            try:
                self._secrets.put_secret_value(SecretId=self.secret_id, SecretString=json.dumps(merged),
                                               ClientRequestToken=token)
                return
            except self._secrets.exceptions.ResourceExistsException:
                log.info("secret changed while updating it; merging again", extra={"secret": self.secret_id})
                time.sleep(random.uniform(0, 0.05 * (attempt + 1)))  # let the writers that collided spread out
        raise AuthorizationFailed("lwa", "update", f"secret {self.secret_id} kept changing; gave up after "
                                  f"{attempts} attempts")

    def _read(self) -> tuple[dict[str, Any], str]:
        try:
            response = self._secrets.get_secret_value(SecretId=self.secret_id, VersionStage="AWSCURRENT")
        except self._secrets.exceptions.ResourceNotFoundException:  # an authId nobody stored credentials for
            raise NoCredentials("lwa", "load", f"no secret {self.secret_id}{self._which()}: store the credentials "
                                "first (amci auth)") from None
        return json.loads(response["SecretString"] or "{}"), response["VersionId"]

    def _multi(self, content: Mapping[str, Any]) -> bool:
        return self.auth_id is not None and "client_id" not in content

    def _record(self, content: Mapping[str, Any]) -> dict[str, Any]:
        return dict(content.get(self.auth_id, {})) if self._multi(content) else dict(content)

    def _which(self) -> str:
        return f" (authId {self.auth_id})" if self.auth_id else ""


class TokenProvider:
    """Access tokens for one credential set; thread-safe, refreshing once however many threads ask."""

    def __init__(self, store: CredentialStore, http: AmazonHttp, endpoints: Endpoints, region: Region = Region.NA,
                 clock: Callable[[], float] = time.time) -> None:
        self.store, self._http, self._endpoints, self._region = store, http, endpoints, region
        self._clock = clock
        self._lock = threading.Lock()
        self._credentials: LwaCredentials | None = None

    @property
    def client_id(self) -> str:
        return self._current().client_id

    def access_token(self, deadline: Deadline | None = None) -> str:
        """A token valid for at least the refresh margin."""
        with self._lock:
            credentials = self._credentials
            if credentials is None or not self._fresh(credentials):
                credentials = self.store.load()  # another container may have refreshed already
                if not self._fresh(credentials):
                    credentials = self._refresh(credentials, deadline)
                self._credentials = credentials
            return str(credentials.access_token)

    def invalidate(self) -> None:
        """Forget the token (it was refused): the next call refreshes, even if the secret still holds it."""
        with self._lock:
            if self._credentials is not None:
                stale = self._credentials.access_token
                self._credentials = None
                self._forget_in_store(stale)

    def _refresh(self, credentials: LwaCredentials, deadline: Deadline | None) -> LwaCredentials:
        tokens = request_tokens(self._http, self._endpoints, self._region, {
            "grant_type": "refresh_token", "refresh_token": credentials.refresh_token,
            "client_id": credentials.client_id, "client_secret": credentials.client_secret}, deadline)
        expires_at = self._clock() + float(tokens.get("expires_in", 3600))
        changes = {"access_token": tokens["access_token"], "access_token_expires_at": expires_at}
        if tokens.get("refresh_token") and tokens["refresh_token"] != credentials.refresh_token:
            changes["refresh_token"] = tokens["refresh_token"]
        self.store.update(changes)
        log.info("access token refreshed", extra={"secret": self.store.secret_id, "auth_id": self.store.auth_id})
        return LwaCredentials(credentials.client_id, credentials.client_secret,
                              changes.get("refresh_token", credentials.refresh_token), tokens["access_token"],
                              expires_at)

    def _forget_in_store(self, stale: str | None) -> None:
        if stale and self.store.load().access_token == stale:
            self.store.update({"access_token": None, "access_token_expires_at": 0})

    def _fresh(self, credentials: LwaCredentials) -> bool:
        return bool(credentials.access_token) and credentials.access_token_expires_at - REFRESH_MARGIN_S > self._clock()

    def _current(self) -> LwaCredentials:
        return self._credentials or self.store.load()


def request_tokens(http: AmazonHttp, endpoints: Endpoints, region: Region, form: Mapping[str, str],
                   deadline: Deadline | None = None) -> dict[str, Any]:
    """POST a grant to the regional token endpoint (safe to retry: a grant creates nothing twice that matters)."""
    url = f"{endpoints.base('lwa', region)}/auth/o2/token"
    try:
        return dict(http.call("token", "POST", url, idempotent=True, deadline=deadline, data=dict(form)).json())
    except AmazonApiError as exc:
        if exc.status in (400, 401):
            raise AuthorizationFailed("lwa", "token", f"{exc.code}: {exc.detail}", exc.status, exc.code) from None
        raise


class BearerAuth:
    """Ads and AMC: ``Authorization: Bearer`` plus the app's client id."""

    def __init__(self, tokens: TokenProvider, deadline: Deadline | None = None) -> None:
        self._tokens, self._deadline = tokens, deadline

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._tokens.access_token(self._deadline)}",
                "Amazon-Advertising-API-ClientId": self._tokens.client_id}

    def invalidate(self) -> None:
        self._tokens.invalidate()
