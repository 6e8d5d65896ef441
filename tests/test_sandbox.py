"""The sandbox's own machinery over HTTP: fault rules, the request log, token expiry, pre-signed files."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests

from local.cloud import LocalCloud
from local.sandbox.files import StoredFile


@pytest.fixture
def admin(cloud: LocalCloud) -> Iterator[str]:
    yield cloud.sandbox.endpoints["admin"]
    cloud.sandbox.faults.clear()


def _token(cloud: LocalCloud, region: str = "na") -> requests.Response:
    demo = cloud.sandbox.credentials
    return requests.post(f"{cloud.sandbox.endpoints['lwa']}/{region}/auth/o2/token", timeout=10, data={
        "grant_type": "refresh_token", "client_id": demo["client_id"], "client_secret": demo["client_secret"],
        "refresh_token": demo["refresh_token"]})


def test_faults_are_set_listed_and_cleared_over_http(cloud: LocalCloud, admin: str) -> None:
    added = requests.post(f"{admin}/faults", timeout=10, json={
        "api": "lwa", "operation": "token", "status": 429, "retry_after": 3, "times": 1})

    throttled, recovered = _token(cloud), _token(cloud)

    assert added.status_code == 201
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "3")
    assert recovered.status_code == 200
    requests.post(f"{admin}/faults", timeout=10, json={"api": "lwa", "status": 500})
    assert [rule["status"] for rule in requests.get(f"{admin}/faults", timeout=10).json()] == [500]
    requests.delete(f"{admin}/faults", timeout=10)
    assert requests.get(f"{admin}/faults", timeout=10).json() == [] and _token(cloud).status_code == 200


def test_a_malformed_fault_rule_is_refused_with_the_fields_expected(admin: str) -> None:
    answer = requests.post(f"{admin}/faults", timeout=10, json={"api": "lwa", "explode": True})

    assert answer.status_code == 400 and "retry_after" in answer.json()["message"]


def test_slow_responses_are_slow(cloud: LocalCloud, admin: str) -> None:
    requests.post(f"{admin}/faults", timeout=10, json={"api": "lwa", "delay_s": 0.6, "times": 1})

    started = time.monotonic()
    answer = _token(cloud)

    assert answer.status_code == 200 and time.monotonic() - started >= 0.6


def test_every_request_is_recorded_without_its_secrets(cloud: LocalCloud, admin: str) -> None:
    _token(cloud, region="fe")

    recorded = requests.get(f"{admin}/requests", params={"api": "lwa", "operation": "token"}, timeout=10).json()

    last = recorded[-1]
    assert (last["method"], last["path"], last["status"]) == ("POST", "/lwa/fe/auth/o2/token", 200)
    assert last["body"]["client_secret"] == "***" and last["body"]["refresh_token"] == "***"
    assert last["body"]["grant_type"] == "refresh_token"


def test_token_expiry_over_http_expires_every_issued_token(cloud: LocalCloud, admin: str) -> None:
    token = _token(cloud).json()["access_token"]

    expired = requests.post(f"{admin}/tokens/expire", timeout=10).json()["expired"]

    assert expired >= 1 and cloud.sandbox.lwa.validate(token) == "expired"


def test_download_urls_expire_and_cannot_be_forged(cloud: LocalCloud) -> None:
    cloud.sandbox.files.put_bytes("reports/r1.json.gz", b"payload", "application/octet-stream")
    good = cloud.sandbox.files.url("reports/r1.json.gz", expires_s=60)
    parts = urlsplit(good)
    query = dict(parse_qsl(parts.query))
    forged = f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode({**query, 'X-Amz-Expires': '999999'})}"
    expired = cloud.sandbox.files.url("reports/r1.json.gz", expires_s=-1)

    assert requests.get(good, timeout=10).content == b"payload"
    for url in (forged, expired):
        refused = requests.get(url, timeout=10)
        assert refused.status_code == 403 and b"<Code>AccessDenied</Code>" in refused.content


def test_large_files_stream_from_a_generator(cloud: LocalCloud) -> None:
    chunk = b"x" * 65536
    cloud.sandbox.files.put("big.bin", StoredFile(lambda: (chunk for _ in range(160)), "application/octet-stream"))

    with requests.get(cloud.sandbox.files.url("big.bin", 60), stream=True, timeout=10) as response:
        size = sum(len(part) for part in response.iter_content(1 << 20))

    assert size == 160 * 65536
