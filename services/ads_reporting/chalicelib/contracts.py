"""Amazon Ads reporting requests. The AWS Solution's shapes are accepted unchanged: a report request
``{"profileId", "region", "authId", "tableName", "requestBody"}``, a schedule ``{"report_request",
"schedule_expression", "rule_name", ...}`` and a profile listing ``{"region", "authId"}``; the operations it lacked
(schedule management, report lists, backfills) use ``requestType`` like every other service."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from shared import reports
from shared.amazon.regions import region_of
from shared.contracts import AUTH_ID_PATTERN, Request

TABLE_NAME = r"^[A-Za-z0-9_.-]{1,128}$"  # a key segment in the reports bucket: no '/'
REGIONS = "North America, Europe or APAC (NA, EU, FE)"


def _region(value: str) -> str:
    try:
        return region_of(value).value
    except ValueError:
        raise ValueError(f"one of {REGIONS}") from None


class AdsReportRequest(reports.ReportRequest):
    """A reporting v3 report for ``profileId`` in ``region``; ``requestBody`` is Amazon's CreateAsyncReportRequest
    (``format`` is forced to GZIP_JSON). ``tableName`` defaults to ``{profileId}-{reportTypeId}``."""

    profileId: str = Field(pattern=r"^\d{1,20}$")
    region: str
    tableName: str | None = Field(None, pattern=TABLE_NAME)

    @field_validator("profileId", mode="before")
    @classmethod
    def _profile_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        return _region(value)

    @field_validator("requestBody")
    @classmethod
    def _report_body(cls, body: dict[str, Any]) -> dict[str, Any]:
        configuration = body.get("configuration")
        if not isinstance(configuration, Mapping):
            raise ValueError("a CreateAsyncReportRequest: its 'configuration' object is missing")
        if not isinstance(configuration.get("reportTypeId"), str) or not configuration["reportTypeId"]:
            raise ValueError("configuration.reportTypeId: a report type such as spCampaigns")
        for name in ("startDate", "endDate"):
            if not isinstance(body.get(name), str):
                raise ValueError(f"{name}: a date (YYYY-MM-DD) or a relative date such as TODAY(-1)")
        return body


class AdsSchedule(reports.ReportSchedule):
    reportRequest: AdsReportRequest


class ListProfiles(Request):
    """The advertising profiles of the credential set in ``region`` (one, several, or every region)."""

    request_type = "listProfiles"
    requestType: Literal["listProfiles"] = "listProfiles"
    region: list[str] | None = None
    authId: str | None = Field(None, pattern=AUTH_ID_PATTERN)

    @field_validator("region", mode="before")
    @classmethod
    def _regions(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("region")
    @classmethod
    def _known_regions(cls, value: list[str] | None) -> list[str] | None:
        return [_region(v) for v in value] if value is not None else None


class BackfillReports(AdsReportRequest):
    """Reports over ``startDate``..``endDate`` (inclusive days, relative dates allowed), split into requests within
    the report type's maximum range; ``requestBody``'s own dates are replaced window by window."""

    request_type = "backfillReports"
    requestType: Literal["backfillReports"]  # type: ignore[assignment]
    startDate: str
    endDate: str

    @model_validator(mode="before")
    @classmethod
    def _window_dates(cls, raw: Any) -> Any:
        if isinstance(raw, Mapping) and isinstance(raw.get("requestBody"), Mapping):
            return {**raw, "requestBody": {"startDate": "", "endDate": "", **raw["requestBody"]}}
        return raw


def classify(raw: Mapping[str, Any]) -> str | None:
    """The reporting services' request types; the AWS Solution's profile listing is ``{"region", "authId"}``."""
    if "requestType" not in raw and "requestBody" not in raw and "rule_name" not in raw and "region" in raw:
        return ListProfiles.request_type
    return reports.classify(raw)
