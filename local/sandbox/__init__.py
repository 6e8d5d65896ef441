"""The Amazon API sandbox: Login with Amazon, Amazon Marketing Cloud, Amazon Ads and Selling Partner API on one
loopback port, speaking the real paths, headers, bodies and status lifecycles, with fault injection and a record
of every request. The local cloud starts it; tests and the CLI use the same object.

Layout, after moto: one folder per API with ``state.py`` (plain Python, named after API operations) and
``routes.py`` (parse, one call into the state, serialise); ``http.py`` serves them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local.sandbox.admin import AdminApi, FilesApi
from local.sandbox.ads.routes import AdsApi
from local.sandbox.amc.routes import AmcApi
from local.sandbox.faults import Faults
from local.sandbox.files import Files
from local.sandbox.http import SandboxHttp
from local.sandbox.lwa.routes import LwaApi
from local.sandbox.lwa.state import LwaState
from local.sandbox.records import RequestLog
from local.sandbox.sp.routes import SpApi


@dataclass(frozen=True)
class DemoAccount:
    """The credentials and identifiers the sandbox accepts out of the box (written to endpoints.json)."""

    client_id: str = "amzn1.application-oa2-client.0000sandbox0000demo0000000000001"
    client_secret: str = "amzn1.oa2-cs.v1.sandbox-demo-client-secret"
    refresh_token: str = "Atzr|sandbox-demo-refresh-token"
    redirect_uri: str = "https://amazon.com"
    amc_instance_id: str = "amcdemo0001"
    advertiser_id: str = "ENTITY1DEMO0ADVERTISER"
    marketplace_id: str = "ATVPDKIKX0DER"
    profile_id: str = "3800000000000001"
    sp_application_id: str = "amzn1.sp.solution.0000sand-box0-demo-0000-000000000001"  # the app's SP-API side
    selling_partner_id: str = "A2SANDBOXDEMOSELLER"  # who authorizes it on Seller Central


class Sandbox:
    """Start with :meth:`start`; ``endpoints`` then gives each API's base URL."""

    def __init__(self, port: int = 0, token_ttl_s: int = 3600, account: DemoAccount | None = None,
                 s3: Callable[[], Any] | None = None) -> None:
        """``s3`` gives the client AMC delivers results with (the local cloud's); None: results only by URL."""
        self.account = account or DemoAccount()
        self.faults = Faults()
        self.requests = RequestLog()
        self.lwa = LwaState(token_ttl_s=token_ttl_s)
        self.lwa.register_client(self.account.client_id, self.account.client_secret, {self.account.redirect_uri})
        self.lwa.add_refresh_token(self.account.client_id, self.account.refresh_token)
        self.lwa.register_application(self.account.sp_application_id, self.account.client_id)
        self.files = Files(lambda: self.base_url)
        self.s3 = s3
        self.amc = AmcApi(self)
        self.ads = AdsApi(self)
        self.sp = SpApi(self)
        self._http = SandboxHttp([LwaApi(self.lwa, self.account.selling_partner_id), self.amc, self.ads, self.sp,
                                  AdminApi(self), FilesApi(self.files)], self.faults, self.requests, port=port)

    @property
    def base_url(self) -> str:
        return self._http.base_url

    def start(self) -> Sandbox:
        self._http.start()
        return self

    def stop(self) -> None:
        self.amc.stop()
        self._http.stop()

    @property
    def credentials(self) -> dict[str, str]:
        account = self.account
        return {"client_id": account.client_id, "client_secret": account.client_secret,
                "refresh_token": account.refresh_token, "amc_instance_id": account.amc_instance_id,
                "advertiser_id": account.advertiser_id, "marketplace_id": account.marketplace_id,
                "profile_id": account.profile_id, "sp_application_id": account.sp_application_id,
                "selling_partner_id": account.selling_partner_id}

    @property
    def endpoints(self) -> dict[str, Any]:
        """Base URLs; every regional host is served at ``{base}/{na|eu|fe}`` (AMC shares the Ads host, LWA serves
        both consent pages)."""
        base = self.base_url
        return {"lwa": f"{base}/lwa", "ads": f"{base}/ads", "amc": f"{base}/ads", "sp": f"{base}/sp",
                "consent": f"{base}/lwa", "sellercentral": f"{base}/lwa",
                "admin": f"{base}/_sandbox", "credentials": self.credentials}
