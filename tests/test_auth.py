"""Onboarding Amazon credentials as an operator does it, through the real path: ``amci auth url`` -> the sandbox's
consent page (Login with Amazon's, or Seller Central's) -> its code -> ``amci auth store`` -> the credential set in
the local cloud's Secrets Manager -> ``amci auth check`` -> a reporting request with that authId. No command prints
a token, a client secret or a code."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from click.testing import Result

from amci.auth import Auth
from amci.platform import Platform
from amci.sdk import Insights
from local.cloud import LocalCloud
from shared import aws

Amci = Callable[..., Result]


@dataclass(frozen=True)
class App:
    """An app registered with the sandbox's Login with Amazon, with an SP-API application of its own."""

    client_id: str
    client_secret: str
    application_id: str
    redirect_uri: str


@pytest.fixture(scope="module")
def app(cloud: LocalCloud) -> App:
    suffix = uuid.uuid4().hex[:12]
    registered = App(f"amzn1.application-oa2-client.auth{suffix}", f"amzn1.oa2-cs.v1.auth-secret-{suffix}",
                     f"amzn1.sp.solution.auth-{suffix}", f"https://example.com/amci/{suffix}")
    cloud.sandbox.lwa.register_client(registered.client_id, registered.client_secret,
                                      [registered.redirect_uri, "https://example.com/other"])
    cloud.sandbox.lwa.register_application(registered.application_id, registered.client_id)
    return registered


def _auth_id() -> str:
    return f"auth-{uuid.uuid4().hex[:10]}"


def _ok(result: Result, *secrets: str) -> Result:
    assert result.exit_code == 0, result.output
    return _clean(result, *secrets)


def _clean(result: Result, *secrets: str) -> Result:
    """The command printed none of ``secrets`` (nor anything like a token)."""
    leaked = [s for s in secrets if s and s in result.output]
    assert not leaked and "Atza|" not in result.output and "Atzr|" not in result.output, result.output
    return result


def _consent(amci: Amci, *args: str) -> dict:
    return json.loads(_ok(amci("auth", "url", *args, "--json")).output)


def _agree(consent_url: str) -> tuple[str, dict[str, str]]:
    """Follow the consent page as a browser would, the user agreeing: where it sends the browser, and its query."""
    response = requests.get(consent_url, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    return location, {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _stored(name: str) -> dict:
    return json.loads(aws.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"])


def _store(amci: Amci, app: App, auth_id: str, code: str, secret: str | None = None) -> Result:
    return amci("auth", "store", auth_id, "--code", code, "--client-id", app.client_id, "--redirect-uri",
                app.redirect_uri, env={"AMCI_CLIENT_SECRET": secret or app.client_secret})


def test_ads_onboarding_from_consent_to_a_report_request(amci: Amci, cloud: LocalCloud, app: App,
                                                         endpoints_file: Path) -> None:
    shown = _ok(amci("auth", "url", "--client-id", app.client_id, "--redirect-uri", app.redirect_uri))
    consent = _consent(amci, "--client-id", app.client_id, "--redirect-uri", app.redirect_uri)
    location, query = _agree(consent["url"])
    auth_id = _auth_id()

    stored = _ok(_store(amci, app, auth_id, query["code"]), app.client_secret, query["code"])

    name = f"{cloud.outputs['AuthSecretPrefix']}{auth_id}"
    secret = aws.client("secretsmanager").describe_secret(SecretId=name)
    kept = _stored(name)
    checked = _ok(amci("auth", "check", auth_id, "--json"), app.client_secret, kept["refresh_token"])
    profiles = Insights.local(endpoints_file, timeout_s=60).ads.profiles(regions=["NA"], auth_id=auth_id)
    listed = cloud.sandbox.requests.where(api="ads", operation="listProfiles", status=200)[-1]

    assert "/lwa/na/ap/oa?" in consent["url"] and consent["url"].split("&state=")[0] in shown.output  # state: new
    assert f"amci auth store AUTH_ID --code '<code, or the whole address>' --client-id {app.client_id}" in shown.output
    assert location.startswith(f"{app.redirect_uri}?") and query["state"] == consent["state"]
    assert query["scope"] == "advertising::campaign_management"
    assert f"Stored credential set {auth_id} (client {app.client_id}) in secret {name}" in stored.output
    assert secret["KmsKeyId"] == cloud.outputs["PlatformKeyArn"]
    assert {"Key": "amci:auth-id", "Value": auth_id} in secret["Tags"]
    assert {"Key": "amci:stage", "Value": "local"} in secret["Tags"]  # cost allocation, as the stacks' resources
    assert kept["client_id"] == app.client_id and kept["client_secret"] == app.client_secret
    assert cloud.sandbox.lwa.refresh_tokens[kept["refresh_token"]] == app.client_id
    assert json.loads(checked.output)["authId"] == auth_id
    assert profiles.ok and profiles.details["authId"] == auth_id and profiles.details["profiles"]["NA"], profiles
    assert {k.lower(): v for k, v in listed.headers.items()}["amazon-advertising-api-clientid"] == app.client_id


def test_a_code_is_single_use(amci: Amci, app: App) -> None:
    code = _agree(_consent(amci, "--client-id", app.client_id, "--redirect-uri", app.redirect_uri)["url"])[1]["code"]
    _ok(_store(amci, app, _auth_id(), code))

    again = _clean(_store(amci, app, _auth_id(), code), code, app.client_secret)

    assert again.exit_code == 1
    assert "Login with Amazon refused: invalid_grant" in again.output
    assert "single use, expires after 5 minutes" in again.output and "`amci auth url`" in again.output


def test_a_wrong_client_secret_is_refused_and_nothing_is_kept(amci: Amci, app: App) -> None:
    code = _agree(_consent(amci, "--client-id", app.client_id, "--redirect-uri", app.redirect_uri)["url"])[1]["code"]
    auth_id = _auth_id()

    refused = _clean(_store(amci, app, auth_id, code, secret="not-the-secret"), "not-the-secret", code)

    assert refused.exit_code == 1
    assert "invalid_client" in refused.output and "client secret is wrong" in refused.output
    assert auth_id not in _ok(amci("auth", "list")).output


def test_sp_onboarding_through_seller_central(amci: Amci, cloud: LocalCloud) -> None:
    """The sandbox's demo app has an SP-API application out of the box; --code takes the whole address."""
    demo, application_id = cloud.sandbox.credentials, cloud.sandbox.account.sp_application_id
    consent = _consent(amci, "--api", "sp", "--application-id", application_id, "--redirect-uri", "https://amazon.com",
                       "--region", "eu")
    location, query = _agree(consent["url"])
    auth_id = _auth_id()

    stored = _ok(amci("auth", "store", auth_id, "--code", location, "--client-id", demo["client_id"],
                      "--redirect-uri", "https://amazon.com", "--region", "EU", "--json",
                      env={"AMCI_CLIENT_SECRET": demo["client_secret"]}), query["spapi_oauth_code"])
    checked = _ok(amci("auth", "check", auth_id, "--region", "FE"), demo["client_secret"])

    assert "/lwa/eu/apps/authorize/consent?" in consent["url"] and consent["codeParameter"] == "spapi_oauth_code"
    assert query["state"] == consent["state"] and query["selling_partner_id"] == "A2SANDBOXDEMOSELLER"
    assert json.loads(stored.output) == {"authId": auth_id, "clientId": demo["client_id"],
                                         "secret": f"{cloud.outputs['AuthSecretPrefix']}{auth_id}"}
    assert f"OK Amazon accepts credential set {auth_id}" in checked.output


def test_seller_central_consent_in_the_sandbox(amci: Amci, cloud: LocalCloud, app: App) -> None:
    """A draft application needs version=beta (MD1000); a redirect URI must be the app's (MD5101); none given is
    the app's first."""
    draft = f"amzn1.sp.solution.draft-{uuid.uuid4().hex[:8]}"
    cloud.sandbox.lwa.register_application(draft, app.client_id, draft=True)
    published = _consent(amci, "--api", "sp", "--application-id", draft, "--redirect-uri", app.redirect_uri)
    beta = _consent(amci, "--api", "sp", "--application-id", draft, "--redirect-uri", app.redirect_uri, "--draft")
    base = beta["url"].split("?")[0]

    refused = requests.get(published["url"], allow_redirects=False, timeout=10)
    location, query = _agree(beta["url"])
    elsewhere = requests.get(base, {"application_id": app.application_id, "redirect_uri": "https://evil.example"},
                             allow_redirects=False, timeout=10)
    default, _ = _agree(f"{base}?application_id={app.application_id}")

    assert (refused.status_code, refused.json()["error"]) == (400, "MD1000")
    assert location.startswith(app.redirect_uri) and "version=beta" in beta["url"] and query["spapi_oauth_code"]
    assert (elsewhere.status_code, elsewhere.json()["error"]) == (400, "MD5101")
    assert default.startswith(f"{app.redirect_uri}?spapi_oauth_code=")


def test_a_refresh_token_from_elsewhere_is_added_listed_and_checked(amci: Amci, cloud: LocalCloud, app: App) -> None:
    token = cloud.sandbox.lwa.add_refresh_token(app.client_id)
    auth_id, revoked = _auth_id(), _auth_id()
    env = {"AMCI_CLIENT_SECRET": app.client_secret}

    added = _ok(amci("auth", "add", auth_id, "--client-id", app.client_id, env={**env, "AMCI_REFRESH_TOKEN": token}),
                token, app.client_secret)
    prompted = amci("auth", "add", revoked, "--client-id", app.client_id, env=env)  # asked for the token: none
    added_json = _ok(amci("auth", "add", revoked, "--client-id", app.client_id, "--json",
                          env={**env, "AMCI_REFRESH_TOKEN": "Atzr|gone"}), app.client_secret)
    checked = _ok(amci("auth", "check", auth_id), token, app.client_secret)
    refused = _clean(amci("auth", "check", revoked), app.client_secret)
    listed = json.loads(_ok(amci("auth", "list", "--json"), token, app.client_secret).output)
    table = _ok(amci("auth", "list"), token, app.client_secret)

    assert f"`amci auth check {auth_id}` proves it works" in added.output
    assert prompted.exit_code == 1 and "Refresh token:" in prompted.output  # click aborts at the end of input
    assert json.loads(added_json.output)["authId"] == revoked
    assert set(json.loads(added_json.output)) == {"authId", "secret", "clientId"}
    assert f"OK Amazon accepts credential set {auth_id}" in checked.output
    assert refused.exit_code == 1 and "The refresh token was refused" in refused.output
    mine = {entry["authId"]: entry for entry in listed if entry["authId"] in (auth_id, revoked, "default")}
    assert set(mine) == {auth_id, revoked, "default"} and set(mine[auth_id]) == {"authId", "secret", "changedAt"}
    assert auth_id in table.output and revoked in table.output


def test_usage_errors_and_missing_credentials_exit_2(amci: Amci) -> None:
    bad_id = amci("auth", "check", "not an id!")
    no_application = amci("auth", "url", "--api", "sp", "--redirect-uri", "https://example.com")
    missing = amci("auth", "check", _auth_id())

    assert bad_id.exit_code == 2 and "1 to 64 letters" in bad_id.output
    assert no_application.exit_code == 2 and "--api sp needs --application-id" in no_application.output
    assert missing.exit_code == 2 and "no credential set" in missing.output and "amci auth store" in missing.output


def test_consent_urls_on_amazon() -> None:
    """On AWS the consent pages are Amazon's own; nothing needs the platform's AWS account to build them."""
    auth = Auth(Platform(session=None, outputs={"AuthSecretPrefix": "amci/prod/auth/"}))

    ads = auth.consent_url("amzn1.application-oa2-client.x", "https://example.com/back", "ads", "EU", state="s1")
    sp = auth.consent_url("amzn1.sp.solution.y", "https://example.com/back", "sp", "Far East", state="s2", draft=True)
    generated = auth.consent_url("amzn1.application-oa2-client.x", "https://example.com/back")

    assert ads.url == ("https://eu.account.amazon.com/ap/oa?client_id=amzn1.application-oa2-client.x"
                       "&scope=advertising%3A%3Acampaign_management&response_type=code"
                       "&redirect_uri=https%3A%2F%2Fexample.com%2Fback&state=s1")
    assert sp.url == ("https://sellercentral.amazon.co.jp/apps/authorize/consent?application_id=amzn1.sp.solution.y"
                      "&state=s2&redirect_uri=https%3A%2F%2Fexample.com%2Fback&version=beta")
    assert generated.url.startswith("https://www.amazon.com/ap/oa?") and len(generated.state) >= 32
