"""Login with Amazon through the real path: the sandbox's token endpoint and consent page, credentials in the
local cloud's Secrets Manager, and the HTTP layer's retries."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator

import pytest

from local.cloud import LocalCloud
from shared import aws
from shared.amazon.errors import AuthorizationFailed, OutOfTime
from shared.amazon.http import AmazonHttp, Deadline, RetryPolicy
from shared.amazon.lwa import CredentialStore, TokenProvider
from shared.amazon.regions import Endpoints
from tests.support import own_credentials, token_requests

FAST = RetryPolicy(max_attempts=4, base_delay_s=0.05, max_delay_s=0.5)


@pytest.fixture
def endpoints(cloud: LocalCloud) -> Endpoints:
    return Endpoints(cloud.sandbox.endpoints)


@pytest.fixture
def secret(cloud: LocalCloud) -> Iterator[str]:
    """A fresh secret holding the credentials of an LWA app of the test's own (single-credential layout), so that
    its token requests are told from those of other work in the process by their client id."""
    name = f"amci/local/auth/test-{uuid.uuid4().hex[:8]}"
    own_credentials(cloud.sandbox, name)
    yield name
    cloud.sandbox.faults.clear()


@pytest.fixture
def client_id(secret: str) -> str:
    """The client id of the test's own LWA app, by which its token requests are counted."""
    return _stored(secret)["client_id"]


def _provider(name: str, endpoints: Endpoints, auth_id: str | None = None) -> TokenProvider:
    return TokenProvider(CredentialStore(aws.client("secretsmanager"), name, auth_id), AmazonHttp("lwa", FAST),
                         endpoints)


def _stored(name: str) -> dict:
    return json.loads(aws.client("secretsmanager").get_secret_value(SecretId=name, VersionStage="AWSCURRENT")[
        "SecretString"])


def test_a_token_is_refreshed_once_cached_and_shared_through_the_secret(
        cloud: LocalCloud, endpoints: Endpoints, secret: str, client_id: str) -> None:
    before = token_requests(cloud.sandbox, client_id, status=200)
    first = _provider(secret, endpoints)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(first.access_token())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    another_container = _provider(secret, endpoints)

    assert len(set(results)) == 1 and results[0].startswith("Atza|")
    assert another_container.access_token() == results[0]
    assert token_requests(cloud.sandbox, client_id, status=200) - before == 1
    assert _stored(secret)["access_token"] == results[0]
    assert cloud.sandbox.lwa.validate(results[0]) is None


def test_a_refused_token_is_replaced(cloud: LocalCloud, endpoints: Endpoints, secret: str) -> None:
    provider = _provider(secret, endpoints)
    old = provider.access_token()

    provider.invalidate()
    new = provider.access_token()

    assert new != old and _stored(secret)["access_token"] == new


def test_concurrent_writers_never_lose_an_update(secret: str) -> None:
    refresh_token = _stored(secret)["refresh_token"]

    def write(writer: int) -> None:
        store = CredentialStore(aws.client("secretsmanager"), secret)
        for step in range(5):
            store.update({f"writer{writer}_step{step}": True})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stored = _stored(secret)
    assert {f"writer{n}_step{s}" for n in range(6) for s in range(5)} <= stored.keys()
    assert stored["refresh_token"] == refresh_token


def test_the_multi_credential_layout_is_read_and_written_per_auth_id(cloud: LocalCloud, endpoints: Endpoints) -> None:
    name = f"amci/local/auth/multi-{uuid.uuid4().hex[:8]}"
    demo = cloud.sandbox.credentials
    creds = {k: demo[k] for k in ("client_id", "client_secret", "refresh_token")}
    aws.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps(
        {"agencyA": creds, "agencyB": {**creds, "refresh_token": "Atzr|not-valid"}}))

    token = _provider(name, endpoints, auth_id="agencyA").access_token()

    stored = _stored(name)
    assert stored["agencyA"]["access_token"] == token
    assert "access_token" not in stored["agencyB"]
    with pytest.raises(AuthorizationFailed, match="invalid_grant"):
        _provider(name, endpoints, auth_id="agencyB").access_token()


def test_missing_credentials_say_what_to_do(cloud: LocalCloud, endpoints: Endpoints) -> None:
    name = f"amci/local/auth/empty-{uuid.uuid4().hex[:8]}"
    aws.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps({"client_id": "x"}))

    with pytest.raises(AuthorizationFailed, match="lacks client_secret, refresh_token: store the credentials"):
        _provider(name, endpoints).access_token()


def test_a_wrong_client_secret_is_invalid_client(cloud: LocalCloud, endpoints: Endpoints, secret: str) -> None:
    CredentialStore(aws.client("secretsmanager"), secret).update({"client_secret": "wrong"})

    with pytest.raises(AuthorizationFailed, match="invalid_client: Client authentication failed"):
        _provider(secret, endpoints).access_token()


@pytest.mark.parametrize("fault", [
    {"status": 429, "retry_after": 0.2, "times": 2},
    {"status": 429, "times": 2},
    {"status": 503, "times": 3},
])
def test_throttling_and_server_errors_are_retried(cloud: LocalCloud, endpoints: Endpoints, secret: str,
                                                  client_id: str, fault: dict) -> None:
    cloud.sandbox.faults.add("lwa", "token", **fault)
    before = token_requests(cloud.sandbox, client_id)

    assert _provider(secret, endpoints).access_token().startswith("Atza|")
    assert token_requests(cloud.sandbox, client_id) - before == fault["times"] + 1


def test_an_outage_longer_than_the_time_budget_is_out_of_time(cloud: LocalCloud, endpoints: Endpoints,
                                                              secret: str) -> None:
    cloud.sandbox.faults.outage("lwa", seconds=30)
    patient = RetryPolicy(max_attempts=100, base_delay_s=0.5, max_delay_s=1.0)
    provider = TokenProvider(CredentialStore(aws.client("secretsmanager"), secret), AmazonHttp("lwa", patient),
                             endpoints)

    with pytest.raises(OutOfTime, match="no time left to retry"):
        provider.access_token(Deadline(2))
