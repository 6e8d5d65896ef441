"""LWA's state: registered apps (and the SP-API applications they belong to), refresh tokens, authorization codes
and the access tokens issued."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from local.sandbox.errors import SandboxError

CODE_TTL_S = 300  # an authorization code expires after 5 minutes and is single use


class LwaError(SandboxError):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(status, description, code=error)


@dataclass
class AccessToken:
    client_id: str
    expires_at: float


@dataclass(frozen=True)
class Application:
    """An SP-API application (``amzn1.sp.solution...``) and the LWA client its codes are for; a draft one is only
    authorized with ``version=beta``."""

    client_id: str
    draft: bool = False


@dataclass
class Code:
    client_id: str
    redirect_uri: str
    expires_at: float
    used: bool = False


class LwaState:
    def __init__(self, token_ttl_s: int = 3600, clock: Callable[[], float] = time.time) -> None:
        self.token_ttl_s = token_ttl_s
        self._clock = clock
        self.clients: dict[str, tuple[str, tuple[str, ...]]] = {}  # client id -> (secret, allowed return URLs)
        self.applications: dict[str, Application] = {}  # SP-API application id -> its app
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> client id
        self.access_tokens: dict[str, AccessToken] = {}
        self.codes: dict[str, Code] = {}
        self._lock = threading.Lock()

    def register_client(self, client_id: str, client_secret: str, redirect_uris: Iterable[str]) -> None:
        """An app and its allowed return URLs; the first is Seller Central's default."""
        self.clients[client_id] = (client_secret, tuple(dict.fromkeys(redirect_uris)))

    def register_application(self, application_id: str, client_id: str, draft: bool = False) -> None:
        """An SP-API application of the registered app ``client_id``."""
        self._client(client_id)
        self.applications[application_id] = Application(client_id, draft)

    def add_refresh_token(self, client_id: str, token: str | None = None) -> str:
        token = token or "Atzr|" + secrets.token_urlsafe(48)
        with self._lock:
            self.refresh_tokens[token] = client_id
        return token

    def issue_code(self, client_id: str, redirect_uri: str) -> str:
        """What the consent page does when the user agrees."""
        self._client(client_id)
        if redirect_uri not in self.clients[client_id][1]:
            raise LwaError(400, "invalid_request", "The redirect URI is not an allowed return URL")
        code = "ANa" + secrets.token_urlsafe(16)
        with self._lock:
            self.codes[code] = Code(client_id, redirect_uri, self._clock() + CODE_TTL_S)
        return code

    def issue_application_code(self, application_id: str, redirect_uri: str | None, version: str | None
                               ) -> tuple[str, str]:
        """What Seller Central's consent does when the seller agrees: a code, and the return URL it is for (the
        app's first when none is named). The errors are Seller Central's (MD1000, MD5101)."""
        application = self.applications.get(application_id)
        if application is None:
            raise LwaError(400, "invalid_request", f"No application {application_id!r}")
        if application.draft and version != "beta":
            raise LwaError(400, "MD1000", "The application is in draft: add version=beta to authorize it")
        allowed = self.clients[application.client_id][1]
        if redirect_uri is not None and redirect_uri not in allowed:
            raise LwaError(400, "MD5101", "The redirect URI is not one of the application's")
        redirect_uri = redirect_uri or next(iter(allowed), "")
        return self.issue_code(application.client_id, redirect_uri), redirect_uri

    def refresh(self, client_id: str, client_secret: str, refresh_token: str) -> dict[str, object]:
        self._authenticate(client_id, client_secret)
        if self.refresh_tokens.get(refresh_token) != client_id:
            raise LwaError(400, "invalid_grant", "The request has an invalid grant parameter : refresh_token")
        return self._tokens(client_id, refresh_token)

    def exchange_code(self, client_id: str, client_secret: str, code: str, redirect_uri: str) -> dict[str, object]:
        self._authenticate(client_id, client_secret)
        with self._lock:
            found = self.codes.get(code)
            if (found is None or found.used or found.client_id != client_id or found.expires_at < self._clock()
                    or found.redirect_uri != redirect_uri):
                raise LwaError(400, "invalid_grant", "The request has an invalid grant parameter : code")
            found.used = True
        return self._tokens(client_id, self.add_refresh_token(client_id))

    def validate(self, access_token: str) -> str | None:
        """None when the token is good, else why not (``expired`` or ``invalid``)."""
        token = self.access_tokens.get(access_token)
        if token is None:
            return "invalid"
        return "expired" if token.expires_at <= self._clock() else None

    def client_of(self, access_token: str) -> str | None:
        token = self.access_tokens.get(access_token)
        return token.client_id if token else None

    def expire_all(self) -> int:
        """Expire every access token issued so far (token expiry mid-flow); returns how many."""
        with self._lock:
            for token in self.access_tokens.values():
                token.expires_at = 0
            return len(self.access_tokens)

    def _tokens(self, client_id: str, refresh_token: str) -> dict[str, object]:
        access_token = "Atza|" + secrets.token_urlsafe(96)  # real ones are longer; nothing checks the length
        with self._lock:
            self.access_tokens[access_token] = AccessToken(client_id, self._clock() + self.token_ttl_s)
        return {"access_token": access_token, "refresh_token": refresh_token, "token_type": "bearer",
                "expires_in": self.token_ttl_s}

    def _authenticate(self, client_id: str, client_secret: str) -> None:
        secret = self.clients.get(client_id, (None, ()))[0]
        if secret is None or not secrets.compare_digest(secret, client_secret or ""):
            raise LwaError(401, "invalid_client", "Client authentication failed")

    def _client(self, client_id: str) -> None:
        if client_id not in self.clients:
            raise LwaError(400, "invalid_client", "Client authentication failed")
