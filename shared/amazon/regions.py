"""Where each Amazon API lives: regions, their hosts, and the marketplaces in each.

Besides the APIs, the two pages where a user grants an app access (onboarding): ``consent``, Login with Amazon's
authorization page (Amazon Ads and AMC), and ``sellercentral``, Seller Central's app authorization (SP-API).

``AMAZON_API_ENDPOINTS`` (JSON ``{"lwa": url, "ads": url, "amc": url, "sp": url}``) replaces Amazon's hosts, e.g.
with the local sandbox, which serves each region at ``{url}/{na|eu|fe}``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from enum import StrEnum


class Region(StrEnum):
    NA = "NA"
    EU = "EU"
    FE = "FE"


# The AWS Solution's region names, and the short codes; "APAC" (Ads) and "Far East" (SP) both mean FE.
_REGION_NAMES = {"north america": Region.NA, "na": Region.NA, "europe": Region.EU, "eu": Region.EU,
                 "apac": Region.FE, "far east": Region.FE, "fe": Region.FE}

HOSTS: dict[str, dict[Region, str]] = {
    "lwa": {Region.NA: "https://api.amazon.com", Region.EU: "https://api.amazon.co.uk",
            Region.FE: "https://api.amazon.co.jp"},
    "ads": {Region.NA: "https://advertising-api.amazon.com", Region.EU: "https://advertising-api-eu.amazon.com",
            Region.FE: "https://advertising-api-fe.amazon.com"},
    "sp": {Region.NA: "https://sellingpartnerapi-na.amazon.com", Region.EU: "https://sellingpartnerapi-eu.amazon.com",
           Region.FE: "https://sellingpartnerapi-fe.amazon.com"},
}
HOSTS["amc"] = HOSTS["ads"]  # AMC's API is served by the Ads hosts
HOSTS["consent"] = {Region.NA: "https://www.amazon.com", Region.EU: "https://eu.account.amazon.com",
                    Region.FE: "https://apac.account.amazon.com"}
HOSTS["sellercentral"] = {Region.NA: "https://sellercentral.amazon.com",
                          Region.EU: "https://sellercentral-europe.amazon.com",
                          Region.FE: "https://sellercentral.amazon.co.jp"}
# Where each consent page is on its host: Amazon redirects from it to the app's redirect URI with a code
CONSENT_PATHS = {"consent": "/ap/oa", "sellercentral": "/apps/authorize/consent"}

MARKETPLACES: dict[str, tuple[str, Region]] = {
    "A2EUQ1WTGCTBG2": ("CA", Region.NA), "ATVPDKIKX0DER": ("US", Region.NA), "A1AM78C64UM0Y8": ("MX", Region.NA),
    "A2Q3Y263D00KWC": ("BR", Region.NA), "A28R8C7NBKEWEA": ("IE", Region.EU), "A1RKKUPIHCS9HS": ("ES", Region.EU),
    "A1F83G8C2ARO7P": ("UK", Region.EU), "A13V1IB3VIYZZH": ("FR", Region.EU), "AMEN7PMS3EDWL": ("BE", Region.EU),
    "A1805IZSGTT6HS": ("NL", Region.EU), "A1PA6795UKMFR9": ("DE", Region.EU), "APJ6JRA9NG5V4": ("IT", Region.EU),
    "A2NODRKZP88ZB9": ("SE", Region.EU), "AE08WJ6YKNBMC": ("ZA", Region.EU), "A1C3SOZRARQ6R3": ("PL", Region.EU),
    "ARBP9OOSHTCHU": ("EG", Region.EU), "A33AVAJ2PDY3EV": ("TR", Region.EU), "A17E79C6D8DWNP": ("SA", Region.EU),
    "A2VIGQ35RCS4UG": ("AE", Region.EU), "A21TJRUUN4KGV": ("IN", Region.EU), "A19VAU5U5O7RUS": ("SG", Region.FE),
    "A39IBJ37TRP1C6": ("AU", Region.FE), "A1VC38T7YXB528": ("JP", Region.FE),
}


def region_of(name: str) -> Region:
    """``"North America"``, ``"NA"``, ``"Europe"``, ``"APAC"``, ``"Far East"``... -> Region; ValueError otherwise."""
    try:
        return _REGION_NAMES[name.strip().lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown region {name!r}: expected North America, Europe, APAC/Far East "
                         "(or NA, EU, FE)") from None


def marketplace_region(marketplace_id: str) -> Region:
    if marketplace_id not in MARKETPLACES:
        raise ValueError(f"unknown marketplace id {marketplace_id!r}")
    return MARKETPLACES[marketplace_id][1]


class Endpoints:
    """Base URL of each API in each region: Amazon's hosts, or the overrides (a sandbox)."""

    VARIABLE = "AMAZON_API_ENDPOINTS"

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        self.overrides = dict(overrides or {})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Endpoints:
        raw = (os.environ if environ is None else environ).get(cls.VARIABLE, "")
        return cls(json.loads(raw) if raw else None)

    def base(self, api: str, region: Region) -> str:
        if api in self.overrides:
            return f"{self.overrides[api].rstrip('/')}/{region.value.lower()}"
        return HOSTS[api][region]
