"""SP-API Reports 2021-06-30 over HTTP, on each regional host (``/sp/{na|eu|fe}``): createReport, getReports,
getReport, cancelReport and getReportDocument, as the official model describes them.

Every call is authorised by its ``x-amz-access-token`` (403 ``Unauthorized`` otherwise), then counted against the
operation's token bucket for that app (429 ``QuotaExceeded`` when empty); every answer carries
``x-amzn-RateLimit-Limit`` and ``x-amzn-RequestId``, and errors come as ``{"errors": [{code, message, details}]}``.
Run-time settings: ``limits`` (operation -> (rate, burst)) and ``timings`` (see ``state.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request

from local.sandbox.auth import authorized_client
from local.sandbox.http import Reply, SandboxError
from local.sandbox.sp.state import (
    OUTCOMES,
    STATUSES,
    ReportsQuery,
    SpError,
    SpState,
    Timings,
    from_next_token,
    invalid,
    parse_time,
    split_list,
)

if TYPE_CHECKING:
    from local.sandbox import Sandbox

REGIONS = ("na", "eu", "fe")
BASE = "/<region>/reports/2021-06-30"
QUOTA_MESSAGE = "You exceeded your quota for the requested resource."
DENIED_MESSAGE = "Access to requested resource is denied."


class SpApi:
    name = "sp"
    prefix = "/sp"
    routes = [(f"{BASE}/reports", "POST", "createReport"), (f"{BASE}/reports", "GET", "getReports"),
              (f"{BASE}/reports/<report_id>", "GET", "getReport"),
              (f"{BASE}/reports/<report_id>", "DELETE", "cancelReport"),
              (f"{BASE}/documents/<document_id>", "GET", "getReportDocument")]

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.state = SpState(sandbox.files, lambda: sandbox.faults.take_outcome(self.name, "createReport"))
        sandbox.faults.produces(self.name, "createReport", OUTCOMES)

    @property
    def limits(self) -> dict[str, tuple[float, float]]:
        """Each operation's (rate per second, burst); set entries to change them (a changed one starts full)."""
        return self.state.limits

    @property
    def timings(self) -> Timings:
        return self.state.timings

    def error_body(self, status: int, code: str | None, message: str) -> dict[str, Any]:
        if status == 403:
            return _errors(code or "Unauthorized", DENIED_MESSAGE, message)
        if status == 429:
            return _errors("QuotaExceeded", QUOTA_MESSAGE, "")
        return _errors(code or str(status), message, "")

    # -- operations ------------------------------------------------------------------------------------------

    def create_report(self, request: Request, region: str) -> Reply:
        def create(client: str) -> Reply:
            if not request.is_json:
                raise SpError(415, "UnsupportedMediaType", "The request must be application/json.")
            body = request.get_json(silent=True)
            if not isinstance(body, dict):
                raise invalid("The request body must be a CreateReportSpecification JSON object.")
            return Reply({"reportId": self.state.create_report(region, client, body)}, status=202)

        return self._serve("createReport", request, region, create)

    def get_reports(self, request: Request, region: str) -> Reply:
        return self._serve("getReports", request, region,
                           lambda client: Reply(self.state.get_reports(region, client, _reports_query(request))))

    def get_report(self, request: Request, region: str, report_id: str) -> Reply:
        return self._serve("getReport", request, region,
                           lambda client: Reply(self.state.get_report(region, client, report_id)))

    def cancel_report(self, request: Request, region: str, report_id: str) -> Reply:
        def cancel(client: str) -> Reply:
            self.state.cancel_report(region, client, report_id)
            return Reply(b"")

        return self._serve("cancelReport", request, region, cancel)

    def get_report_document(self, request: Request, region: str, document_id: str) -> Reply:
        encoded = request.args.get("enableContentEncodingUrlHeader", "").lower() == "true"
        return self._serve("getReportDocument", request, region, lambda client: Reply(
            self.state.get_report_document(region, client, document_id, encoded)))

    # -- what every operation does ---------------------------------------------------------------------------

    def _serve(self, operation: str, request: Request, region: str, answer: Callable[[str], Reply]) -> Reply:
        """Check the host, the token and the quota, answer, and add the headers every answer carries."""
        limit = self.state.limits.get(operation)
        headers = {"x-amzn-RequestId": str(uuid.uuid4())}
        if limit is not None:
            headers["x-amzn-RateLimit-Limit"] = f"{limit[0]:g}"
        try:
            if region not in REGIONS:
                raise SpError(404, "NotFound", f"There is no Selling Partner API host for region {region!r}.")
            client = authorized_client(request, self.sandbox.lwa, header="x-amz-access-token", status=403,
                                       code="Unauthorized")
            if not self.state.take_token(client, operation):
                raise SpError(429, "QuotaExceeded", QUOTA_MESSAGE)
            reply = answer(client)
        except SandboxError as exc:  # SpError included
            exc.headers = {**headers, **exc.headers}
            raise
        reply.headers = {**headers, **reply.headers}
        return reply


def _reports_query(request: Request) -> ReportsQuery:
    """getReports' query: ``nextToken`` alone, or ``reportTypes`` and the other filters."""
    args = request.args
    if "nextToken" in args:
        if len(args) > 1:
            raise invalid("nextToken must be the only parameter: the other filters come with it.")
        return from_next_token(args["nextToken"])
    report_types = split_list(args.getlist("reportTypes"))
    if not 1 <= len(report_types) <= 10:
        raise invalid("reportTypes is required (1 to 10 report types) unless nextToken is given.")
    statuses = split_list(args.getlist("processingStatuses"))
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        raise invalid(f"processingStatuses must be among {', '.join(STATUSES)}; got {', '.join(unknown)}")
    marketplaces = split_list(args.getlist("marketplaceIds"))
    if len(marketplaces) > 10:
        raise invalid("marketplaceIds takes at most 10 marketplace ids.")
    return ReportsQuery(report_types, statuses, marketplaces, _page_size(args.get("pageSize")),
                        _epoch(args.get("createdSince"), "createdSince"),
                        _epoch(args.get("createdUntil"), "createdUntil"))


def _page_size(value: str | None) -> int:
    if value is None:
        return 10
    if not value.isdigit() or not 1 <= int(value) <= 100:
        raise invalid(f"pageSize must be an integer from 1 to 100, got {value!r}")
    return int(value)


def _epoch(value: str | None, name: str) -> float | None:
    return parse_time(value, name).timestamp() if value is not None else None


def _errors(code: str, message: str, details: str) -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message, "details": details}]}
