"""Selling Partner reporting requests. The AWS Solution's shapes are accepted unchanged: a report request
``{"region", "authId", "tablePrefix", "requestBody"}`` (``authId`` is honoured) and a schedule ``{"report_request",
"schedule_expression", "rule_name", ...}``; the operations it lacked (schedule management, report lists) use
``requestType`` like every other service."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator, model_validator

from shared import reports
from shared.amazon.regions import MARKETPLACES, marketplace_region, region_of

TABLE_PREFIX = r"^[A-Za-z0-9_.-]{1,128}$"  # a key segment in the reports bucket: no '/'


class SpReportRequest(reports.ReportRequest):
    """A Reports 2021-06-30 report; ``requestBody`` is Amazon's CreateReportSpecification. ``region`` (North
    America, Europe or Far East; NA, EU, FE) is the marketplaces' when not given; ``tablePrefix`` defaults to
    ``{region}-{reportType}``."""

    region: str | None = None
    tablePrefix: str | None = Field(None, pattern=TABLE_PREFIX)

    @field_validator("requestBody")
    @classmethod
    def _specification(cls, body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body.get("reportType"), str) or not body["reportType"]:
            raise ValueError("reportType: a report type such as GET_SALES_AND_TRAFFIC_REPORT")
        marketplaces = body.get("marketplaceIds")
        if not isinstance(marketplaces, list) or not marketplaces or not all(isinstance(m, str) for m in marketplaces):
            raise ValueError("marketplaceIds: a list of marketplace ids such as ATVPDKIKX0DER")
        unknown = [m for m in marketplaces if m not in MARKETPLACES]
        if unknown:
            raise ValueError(f"marketplaceIds: known marketplace ids (unknown: {', '.join(unknown)})")
        if len({marketplace_region(m) for m in marketplaces}) > 1:
            raise ValueError("marketplaceIds: marketplaces of one region (request each region separately)")
        options = body.get("reportOptions", {})
        if not isinstance(options, Mapping) or not all(isinstance(v, str) for v in options.values()):
            raise ValueError("reportOptions: an object of strings")
        return body

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        """Named one way (NA, EU, FE) whatever the spelling, so that one table is not split three ways."""
        try:
            return region_of(value).value if value is not None else None
        except ValueError:
            raise ValueError("North America, Europe or Far East (NA, EU, FE)") from None

    @model_validator(mode="after")
    def _region_matches(self) -> SpReportRequest:
        if self.region is not None and marketplace_region(self.requestBody["marketplaceIds"][0]).value != self.region:
            raise ValueError(f"region: the marketplaces' region ({self.region} holds none of them)")
        return self


class SpSchedule(reports.ReportSchedule):
    reportRequest: SpReportRequest
