"""Advertising profiles: which accounts a credential set can report on, region by region."""

from __future__ import annotations

from dataclasses import asdict

from chalicelib.contracts import ListProfiles
from chalicelib.source import client
from shared.amazon.errors import AmazonApiError
from shared.amazon.regions import Region
from shared.requests import RequestContext
from shared.service import Service
from shared.status import PLATFORM_TENANT, Status


def list_all(request: ListProfiles, ctx: RequestContext, service: Service) -> None:
    """Each region's profiles, or what went wrong there (as the AWS Solution answered: ``{region: profiles |
    error}``); FAILED only when no region answered."""
    ads = client(request.authId)
    found: dict[str, list[dict[str, object]] | str] = {}
    for region in request.region or [r.value for r in Region]:
        try:
            found[region] = [{**asdict(p), "region": p.region.value} for p in ads.list_profiles(region)]
        except AmazonApiError as error:
            found[region] = f"{type(error).__name__}: {error.detail}"
    answered = [profiles for profiles in found.values() if isinstance(profiles, list)]
    status = Status.SUCCEEDED if answered else Status.FAILED
    service.answer(ctx, PLATFORM_TENANT, status,
                   f"{sum(len(p) for p in answered)} profiles in {len(answered)} of {len(found)} regions",
                   {"profiles": found, "authId": request.authId or "default"})
