"""LWA over HTTP: ``POST /auth/o2/token`` (form or JSON body), the consent page ``GET /ap/oa`` and Seller Central's
app authorization ``GET /apps/authorize/consent``, on each regional host (``/lwa/{na|eu|fe}``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request

from local.sandbox.http import Reply, SandboxError
from local.sandbox.lwa.state import LwaError, LwaState


class LwaApi:
    name = "lwa"
    prefix = "/lwa"
    routes = [("/<region>/auth/o2/token", "POST", "token"), ("/<region>/ap/oa", "GET", "consent"),
              ("/<region>/apps/authorize/consent", "GET", "sellerCentralConsent")]

    def __init__(self, state: LwaState, selling_partner_id: str) -> None:
        """``selling_partner_id``: the seller who agrees on Seller Central."""
        self.state, self.selling_partner_id = state, selling_partner_id

    def error_body(self, status: int, code: str | None, message: str) -> dict[str, Any]:
        return {"error": code or "server_error", "error_description": message}

    def token(self, request: Request, region: str) -> Reply:
        form = request.get_json(silent=True) if request.is_json else request.form
        form = form or {}
        grant = form.get("grant_type")
        if grant == "refresh_token":
            tokens = self.state.refresh(form.get("client_id", ""), form.get("client_secret", ""),
                                        form.get("refresh_token", ""))
        elif grant == "authorization_code":
            tokens = self.state.exchange_code(form.get("client_id", ""), form.get("client_secret", ""),
                                              form.get("code", ""), form.get("redirect_uri", ""))
        else:
            raise LwaError(400, "unsupported_grant_type", f"The grant type {grant!r} is not supported")
        return Reply(tokens)

    def consent(self, request: Request, region: str) -> Reply:
        """The user agrees at once: redirect to ``redirect_uri`` with a fresh code, as Amazon's page would."""
        args = request.args
        if args.get("response_type") != "code":
            raise SandboxError(400, "response_type must be code", code="unsupported_response_type")
        code = self.state.issue_code(args.get("client_id", ""), args.get("redirect_uri", ""))
        return _redirect(args["redirect_uri"], {"code": code, "scope": args.get("scope", "")}, args)

    def seller_central_consent(self, request: Request, region: str) -> Reply:
        """The seller agrees at once (the sandbox skips the app's log-in page): redirect to ``redirect_uri`` (the
        application's first when none is named) with ``spapi_oauth_code`` and ``selling_partner_id``."""
        args = request.args
        code, redirect_uri = self.state.issue_application_code(args.get("application_id", ""),
                                                               args.get("redirect_uri"), args.get("version"))
        return _redirect(redirect_uri, {"spapi_oauth_code": code, "selling_partner_id": self.selling_partner_id},
                         args)


def _redirect(redirect_uri: str, query: dict[str, str], args: Mapping[str, str]) -> Reply:
    """302 to ``redirect_uri`` with ``query``, and the caller's ``state`` when it sent one."""
    query = {**query, **({"state": args["state"]} if "state" in args else {})}
    return Reply(b"", status=302, headers={"Location": f"{redirect_uri}?{urlencode(query)}"}, content_type="text/html")
