"""``amci auth``: Login with Amazon credential sets, one per ``authId``, stored in Secrets Manager.

Onboarding is two commands around a browser: ``amci auth url`` gives the consent page to open; it sends the browser
to the redirect URI with a code, which ``amci auth store`` trades for a refresh token within 5 minutes. These
commands talk to Secrets Manager and Login with Amazon directly, not to a service; none prints a token, a client
secret or a code.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import click

from amci.auth import CODE_PARAMETERS, Consent, CredentialSet, NoCredentials, valid_auth_id
from amci.commands.common import JSON, console, fail, insights, records_table
from shared.amazon.errors import AmazonApiError, AuthorizationFailed
from shared.amazon.regions import Region

REGION = click.option("--region", type=click.Choice([r.value for r in Region], case_sensitive=False), default="NA",
                      metavar="NA|EU|FE", show_default=True,
                      help="The Amazon region: NA, EU or FE (a code or token works in every one).")
CLIENT_ID = click.option("--client-id", required=True,
                         help="The app's Login with Amazon client id (amzn1.application-oa2-client...; for SP, the "
                              "client id of its LWA credentials, not its application id).")
CLIENT_SECRET = click.option("--client-secret", envvar="AMCI_CLIENT_SECRET", prompt=True, hide_input=True,
                             help="The app's client secret: asked for (hidden) when not given, or env "
                                  "AMCI_CLIENT_SECRET; better either than on the command line.")
REDIRECT_URI = click.option("--redirect-uri", required=True,
                            help="One of the app's allowed return URLs; the same for `url` and `store`.")
REFUSALS = {"invalid_client": "The client id or client secret is wrong (the app's Login with Amazon security "
                              "profile shows both)."}


def _auth_id(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A usage error (exit 2) unless ``value`` can name a credential set."""
    try:
        return valid_auth_id(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


AUTH_ID = click.argument("auth_id", callback=_auth_id)


@click.group("auth")
def group() -> None:
    """Amazon credentials (Login with Amazon), one set per authId, kept in Secrets Manager. Onboard with `url`
    then `store` (or `add` a refresh token obtained elsewhere); requests name a set by its authId."""


@group.command("url")
@click.option("--api", type=click.Choice(["ads", "sp"]), default="ads", show_default=True,
              help="ads: Amazon Ads and AMC (Login with Amazon's consent); sp: Selling Partner API (Seller Central).")
@click.option("--client-id", default=None, help="ads: the app's Login with Amazon client id.")
@click.option("--application-id", default=None, help="sp: the app's SP-API application id (amzn1.sp.solution...).")
@REDIRECT_URI
@REGION
@click.option("--draft", is_flag=True, help="sp: the app is not published yet (adds version=beta).")
@JSON
def url(api: str, client_id: str | None, application_id: str | None, redirect_uri: str, region: str, draft: bool,
        as_json: bool) -> None:
    """The consent page to open in a browser, and what to do once access is granted."""
    app_id = client_id if api == "ads" else application_id
    if not app_id:
        raise click.UsageError("--api ads needs --client-id" if api == "ads" else "--api sp needs --application-id")
    consent = insights().auth.consent_url(app_id, redirect_uri, api, region, draft=draft)
    if as_json:
        click.echo(json.dumps(consent.as_dict(), indent=2))
        return
    who = "sign in to Seller Central as the selling partner" if api == "sp" else "sign in to the Amazon Ads account"
    console.print(f"Open this address in a browser, {who} and allow access:", highlight=False)
    click.echo(consent.url)
    _next_steps(consent, client_id)


@group.command("store")
@AUTH_ID
@click.option("--code", required=True, callback=lambda ctx, param, value: _code(value),
              help="The code the consent gave (code or spapi_oauth_code), or the whole address it sent the browser to.")
@CLIENT_ID
@CLIENT_SECRET
@REDIRECT_URI
@REGION
@JSON
def store(auth_id: str, code: str, client_id: str, client_secret: str, redirect_uri: str, region: str,
          as_json: bool) -> None:
    """Trade a consent's code for a refresh token and keep the credentials as AUTH_ID (replacing what it held).
    Exit 1 when Amazon refuses: a code is single use and expires after 5 minutes."""
    with _amazon("The code was refused: a code is single use, expires after 5 minutes and is traded with the "
                 "--redirect-uri the consent used. Get a new one with `amci auth url`."):
        kept = insights().auth.store(auth_id, code, client_id, client_secret, redirect_uri, region)
    _show(kept, as_json, f"[green]Stored[/] credential set {auth_id} (client {kept.client_id}) in secret "
                         f"{kept.secret}. Requests use it with \"authId\": \"{auth_id}\".")


@group.command("add")
@AUTH_ID
@CLIENT_ID
@CLIENT_SECRET
@click.option("--refresh-token", envvar="AMCI_REFRESH_TOKEN", prompt=True, hide_input=True,
              help="A refresh token obtained elsewhere (e.g. an SP-API private app's self-authorization): asked "
                   "for (hidden) when not given, or env AMCI_REFRESH_TOKEN.")
@JSON
def add(auth_id: str, client_id: str, client_secret: str, refresh_token: str, as_json: bool) -> None:
    """Keep a refresh token obtained elsewhere as credential set AUTH_ID (replacing what it held)."""
    with _amazon():
        kept = insights().auth.add(auth_id, client_id, client_secret, refresh_token)
    _show(kept, as_json, f"[green]Stored[/] credential set {auth_id} (client {kept.client_id}) in secret "
                         f"{kept.secret}. `amci auth check {auth_id}` proves it works.")


@group.command("list")
@JSON
def list_sets(as_json: bool) -> None:
    """The credential sets, by authId, with when each last changed (never their values)."""
    with _amazon():
        found = insights().auth.list()
    if as_json:
        click.echo(json.dumps([c.as_dict() for c in found], indent=2))
        return
    records_table("credential sets", [c.as_dict() for c in found], ["authId", "secret", "changedAt"])


@group.command("check")
@AUTH_ID
@REGION
@JSON
def check(auth_id: str, region: str, as_json: bool) -> None:
    """Obtain an access token with AUTH_ID's refresh token: exit 0 when Amazon accepts the credentials, 1 when it
    refuses them."""
    with _amazon("The refresh token was refused (revoked, or another app's): onboard again with `amci auth url` "
                 "and `amci auth store`."):
        checked = insights().auth.check(auth_id, region)
    _show(checked, as_json, f"[green]OK[/] Amazon accepts credential set {auth_id} (client {checked.client_id}): "
                            f"its access token is valid until {checked.as_dict()['tokenExpiresAt']}.")


def _next_steps(consent: Consent, client_id: str | None) -> None:
    console.print(f"It then sends the browser to {consent.redirect_uri} with [bold]{consent.code_parameter}[/] and "
                  f"[bold]state[/] in the address. If state is not {consent.state}, stop: that consent did not start "
                  "here. Otherwise, within 5 minutes (a code is single use):", highlight=False)
    region = "" if consent.region == "NA" else f" --region {consent.region}"
    click.echo(f"  amci auth store AUTH_ID --code '<{consent.code_parameter}, or the whole address>' "
               f"--client-id {client_id or '<the app LWA client id>'} --redirect-uri {consent.redirect_uri}{region}")


def _code(value: str) -> str:
    """The code itself, or taken from the address the consent sent the browser to."""
    if not value.startswith(("https://", "http://")):
        return value
    query = parse_qs(urlsplit(value).query)
    for name in CODE_PARAMETERS.values():
        if query.get(name):
            return query[name][0]
    raise click.BadParameter(f"the address has no {' or '.join(CODE_PARAMETERS.values())}", param_hint="--code")


def _show(found: CredentialSet, as_json: bool, message: str) -> None:
    if as_json:
        click.echo(json.dumps(found.as_dict(), indent=2))
    else:
        console.print(message, highlight=False)


@contextmanager
def _amazon(invalid_grant: str = "") -> Iterator[None]:
    """Exit 1 when Login with Amazon refuses (``invalid_grant``: what that means here), 2 when there are no
    credentials or nothing answers (AWS's own errors: amci's advice, see common.platform_errors)."""
    try:
        yield
    except AuthorizationFailed as exc:
        advice = invalid_grant if exc.code == "invalid_grant" else REFUSALS.get(str(exc.code), "")
        console.print(f"[red]Login with Amazon refused: {exc.detail}[/] {advice}", highlight=False)
        sys.exit(1)
    except NoCredentials as exc:
        fail(str(exc))
    except AmazonApiError as exc:
        fail(f"Login with Amazon did not answer ({exc}); try again later.")
