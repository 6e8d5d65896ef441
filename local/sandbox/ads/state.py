"""Amazon Ads' state: the advertising profiles of each region and the reporting v3 reports, whose status follows
the clock (PENDING -> PROCESSING -> COMPLETED or FAILED, apis.md §3.2), worked out when a report is read.

Run-time knobs (``sandbox.ads`` forwards them): ``timings`` (seconds in each status, the download URL's life),
``rows_per_report`` (exact rows of every report created while set) or ``bytes_per_report`` (about that many
bytes once decompressed), ``Profile.report_rows`` (one profile's reports), and ``lose_create_responses`` (the
next creations take effect but answer 5xx, as when a gateway times out after the backend acted).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from local.sandbox.ads import data
from local.sandbox.errors import SandboxError
from local.sandbox.files import Files, StoredFile
from shared.amazon.ads import REPORT_TYPES, ReportType

PENDING, PROCESSING, COMPLETED, FAILED = "PENDING", "PROCESSING", "COMPLETED", "FAILED"
_ORDER = {PENDING: 0, PROCESSING: 1, COMPLETED: 2, FAILED: 2}
FAULT_OUTCOMES = (FAILED,)  # what a fault can make of a report: Amazon's reports end COMPLETED or FAILED
FAILURE_REASON = "Report generation failed due to an internal error. Please retry"
EXACT_SIZE_MAX_ROWS = 100_000  # fileSize is worked out (by generating the file once) up to this many rows
REPORT_CONTENT_TYPE = "application/octet-stream"  # what the report bucket serves a .json.gz with
FORMATS = ("GZIP_JSON",)


class AdsError(SandboxError):
    def __init__(self, status: int, detail: str, code: str | None = None) -> None:
        super().__init__(status, detail, code=code or str(status))


@dataclass
class Timings:
    """Seconds a report spends in PENDING and in PROCESSING, and how long a download URL lives."""

    pending_s: float = 2.0
    processing_s: float = 3.0
    url_expires_s: int = 3600




@dataclass(frozen=True)
class Profile:
    """An advertising account in one marketplace (``GET /v2/profiles``)."""

    profile_id: int
    region: str  # na | eu | fe
    country_code: str
    currency_code: str
    timezone: str
    marketplace_id: str
    account_id: str
    account_type: str  # seller | vendor | agency
    account_name: str
    daily_budget: float | None = None  # sellers only
    valid_payment_method: bool | None = None  # vendors only
    report_rows: int | None = None  # rows of each of this profile's reports (else the state's setting)

    def as_json(self) -> dict[str, Any]:
        info: dict[str, Any] = {"marketplaceStringId": self.marketplace_id, "id": self.account_id,
                                "type": self.account_type, "name": self.account_name}
        if self.valid_payment_method is not None:
            info["validPaymentMethod"] = self.valid_payment_method
        body: dict[str, Any] = {"profileId": self.profile_id, "countryCode": self.country_code,
                                "currencyCode": self.currency_code}
        if self.daily_budget is not None:
            body["dailyBudget"] = self.daily_budget
        return {**body, "timezone": self.timezone, "accountInfo": info}


@dataclass
class Report:
    report_id: str
    profile_id: int
    name: str | None
    start_date: date
    end_date: date
    configuration: dict[str, Any]
    identity: str  # profile, dates and configuration: what makes two requests duplicates
    spec: data.ReportSpec
    outcome: str  # COMPLETED or FAILED, decided at creation
    created_at: float
    status: str = PENDING
    updated_at: float = 0.0
    generated_at: float | None = None
    file_name: str | None = None
    file_size: int | None = None

    @property
    def active(self) -> bool:
        return self.status in (PENDING, PROCESSING)


class AdsState:
    def __init__(self, files: Files, clock: Callable[[], float] = time.time) -> None:
        self.files = files
        self.clock = clock
        self.timings = Timings()
        self.rows_per_report: int | None = None
        self.bytes_per_report: int | None = None
        self.profiles: dict[str, list[Profile]] = {"na": [], "eu": [], "fe": []}
        self.reports: dict[str, Report] = {}
        self._lost_responses: list[int] = []
        self._lock = threading.RLock()

    # -- profiles ------------------------------------------------------------------------------------------------

    def add_profile(self, profile: Profile) -> Profile:
        with self._lock:
            if self.find_profile(profile.profile_id) is not None:
                raise ValueError(f"profile {profile.profile_id} exists already")
            self.profiles[profile.region].append(profile)
        return profile

    def remove_profile(self, profile_id: int) -> None:
        with self._lock:
            for region, profiles in self.profiles.items():
                self.profiles[region] = [p for p in profiles if p.profile_id != profile_id]

    def set_report_rows(self, profile_id: int, rows: int | None) -> Profile:
        """Make each report of this profile ``rows`` long (None: the state's setting again)."""
        with self._lock:
            profile = self.find_profile(profile_id)
            if profile is None:
                raise KeyError(profile_id)
            changed = replace(profile, report_rows=rows)
            self.profiles[profile.region] = [changed if p is profile else p for p in self.profiles[profile.region]]
            return changed

    def find_profile(self, profile_id: int, region: str | None = None) -> Profile | None:
        regions = [region] if region else list(self.profiles)
        return next((p for r in regions for p in self.profiles.get(r, []) if p.profile_id == profile_id), None)

    def list_profiles(self, region: str, profile_types: set[str] | None = None,
                      valid_payment_method: bool | None = None) -> list[Profile]:
        with self._lock:
            found = list(self.profiles[region])
        if profile_types:
            found = [p for p in found if p.account_type in profile_types]
        if valid_payment_method is not None:
            found = [p for p in found if bool(p.valid_payment_method) == valid_payment_method]
        return found

    def scope(self, region: str, header: str | None) -> Profile:
        """The profile the ``Amazon-Advertising-API-Scope`` header names, in this region."""
        if not header:
            raise AdsError(401, "Scope header is missing", "UNAUTHORIZED")
        profile = self.find_profile(int(header), region) if header.strip().isdigit() else None
        if profile is None:
            raise AdsError(401, "No matching advertiser found for scope", "UNAUTHORIZED")
        return profile

    # -- reports -------------------------------------------------------------------------------------------------

    def create_report(self, profile: Profile, body: Any, outcome: Callable[[], str | None]) -> Report:
        """A new PENDING report; 400 when the request is invalid, 425 when an identical one is still running.

        ``outcome`` is asked only when the report is created: FAILED (a fault's; see FAULT_OUTCOMES) makes the
        report fail, None lets it complete."""
        start, end, configuration = validate(body, self._today())
        identity = json.dumps([profile.profile_id, str(start), str(end), configuration], sort_keys=True)
        with self._lock:
            for existing in self.reports.values():
                if existing.identity == identity and self._refresh(existing).active:
                    raise AdsError(425, f"The Request is a duplicate of : {existing.report_id}")
            now = self.clock()
            report = Report(str(uuid.uuid4()), profile.profile_id, body.get("name"), start, end, configuration,
                            identity, self._spec(profile, start, end, configuration, identity),
                            outcome() or COMPLETED, created_at=now, updated_at=now)
            self.reports[report.report_id] = report
            return report

    def get_report(self, profile: Profile, report_id: str) -> Report:
        report = self._find(profile, report_id)
        if report.status == COMPLETED and report.file_name is None:
            self._publish(report)
        return report

    def delete_report(self, profile: Profile, report_id: str) -> Report:
        """Cancel a report; only one still PENDING can be."""
        with self._lock:
            report = self._find(profile, report_id)
            if report.status != PENDING:
                raise AdsError(400, f"Report {report_id} is {report.status}: only a PENDING report can be deleted")
            del self.reports[report_id]
            return report

    def lose_create_responses(self, times: int = 1, status: int = 502) -> None:
        """The next ``times`` creations take effect, but their callers get ``status`` instead of the report."""
        with self._lock:
            self._lost_responses.extend([status] * times)

    def take_lost_response(self) -> int | None:
        with self._lock:
            return self._lost_responses.pop(0) if self._lost_responses else None

    def settings(self) -> dict[str, Any]:
        timings = self.timings
        return {"pending_s": timings.pending_s, "processing_s": timings.processing_s,
                "url_expires_s": timings.url_expires_s, "rows_per_report": self.rows_per_report,
                "bytes_per_report": self.bytes_per_report}

    def update_settings(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change the knobs named in ``changes`` (the keys of :meth:`settings`)."""
        unknown = set(changes) - set(self.settings())
        if unknown:
            raise AdsError(400, f"unknown settings {sorted(unknown)}; expected any of {sorted(self.settings())}")
        timing_keys = ("pending_s", "processing_s", "url_expires_s")
        for key, value in changes.items():  # all checked before any is applied
            if (value is None and key in timing_keys) or (value is not None and (
                    isinstance(value, bool) or not isinstance(value, int | float) or value < 0)):
                raise AdsError(400, f"{key} must be a non-negative number (got {value!r})")
        for key, value in changes.items():
            if key in timing_keys:
                setattr(self.timings, key, int(value) if key == "url_expires_s" else float(value))
            else:
                setattr(self, key, None if value is None else int(value))
        return self.settings()

    # -- inner workings ------------------------------------------------------------------------------------------

    def _find(self, profile: Profile, report_id: str) -> Report:
        with self._lock:
            report = self.reports.get(report_id)
            if report is None or report.profile_id != profile.profile_id:
                raise AdsError(404, "Not Found")
            return self._refresh(report)

    def _refresh(self, report: Report) -> Report:
        """Move the report on to where the clock says it is (never back, whatever the timings become)."""
        timings, now = self.timings, self.clock()
        processing_at = report.created_at + timings.pending_s
        done_at = processing_at + timings.processing_s
        due = report.outcome if now >= done_at else PROCESSING if now >= processing_at else PENDING
        if _ORDER[due] <= _ORDER[report.status]:
            return report
        report.status, report.updated_at = due, min(now, done_at if due == report.outcome else processing_at)
        if due == COMPLETED:
            report.generated_at = report.updated_at
        return report

    def _publish(self, report: Report) -> None:
        """Put the report's file where its URL points; its size is known up to EXACT_SIZE_MAX_ROWS rows.

        Outside the lock (sizing generates the file once), so two first readers may both do it: same result."""
        spec = report.spec
        size = data.size(spec) if spec.rows <= EXACT_SIZE_MAX_ROWS else None
        millis = int((report.generated_at or 0) * 1000)
        name = f"ads/{report.report_id}-{millis}/report-{report.report_id}-{millis}.json.gz"
        self.files.put(name, StoredFile(lambda: data.chunks(spec), REPORT_CONTENT_TYPE, size=size))
        report.file_size, report.file_name = size, name

    def _spec(self, profile: Profile, start: date, end: date, configuration: dict[str, Any],
              identity: str) -> data.ReportSpec:
        time_unit = configuration["timeUnit"]
        spec = data.ReportSpec(tuple(configuration["columns"]), time_unit, start, end, rows=0,
                               group_by=tuple(configuration["groupBy"]), currency=profile.currency_code,
                               seed=data.seed_of(identity))
        if profile.report_rows is not None:
            rows = profile.report_rows
        elif self.rows_per_report is not None:
            rows = self.rows_per_report
        elif self.bytes_per_report is not None:
            rows = data.rows_for_bytes(spec, self.bytes_per_report)
        else:
            rows = data.default_rows(time_unit, start, end)
        return replace(spec, rows=rows)

    def _today(self) -> date:
        return datetime.fromtimestamp(self.clock(), UTC).date()


def validate(body: Any, today: date) -> tuple[date, date, dict[str, Any]]:
    """The request's dates and its configuration as echoed (``filters`` null when absent); AdsError 400 if bad."""
    if not isinstance(body, dict):
        raise AdsError(400, "The request body must be a JSON object")
    start, end = _date(body, "startDate"), _date(body, "endDate")
    configuration = body.get("configuration")
    if not isinstance(configuration, dict):
        raise AdsError(400, "configuration is required and must be an object")
    configuration = {**configuration, "filters": configuration.get("filters")}
    type_id = configuration.get("reportTypeId")
    if type_id not in REPORT_TYPES:
        raise AdsError(400, f"configuration reportTypeId {type_id!r} is not a valid report type; expected one of "
                            f"{', '.join(sorted(REPORT_TYPES))}")
    report_type = REPORT_TYPES[type_id]
    _check_configuration(configuration, type_id, report_type)
    _check_dates(start, end, today, type_id, report_type)
    return start, end, configuration


def _date(body: dict[str, Any], key: str) -> date:
    value = body.get(key)
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise AdsError(400, f"{key} is required in the format YYYY-MM-DD (got {value!r})") from None


def _check_configuration(configuration: dict[str, Any], type_id: str, report_type: ReportType) -> None:
    for key in ("groupBy", "columns"):
        value = configuration.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise AdsError(400, f"configuration {key} must be a non-empty list of strings (got {value!r})")
    if configuration.get("adProduct") != report_type.ad_product:
        raise AdsError(400, f"configuration adProduct {configuration.get('adProduct')!r} is not valid for "
                            f"reportTypeId {type_id}: expected {report_type.ad_product}")
    time_unit = configuration.get("timeUnit")
    if time_unit not in report_type.time_units:
        raise AdsError(400, f"configuration timeUnit {time_unit!r} is not valid for reportTypeId {type_id}: "
                            f"expected {' or '.join(report_type.time_units)}")
    if configuration.get("format") not in FORMATS:
        raise AdsError(400, f"configuration format {configuration.get('format')!r} is not supported: expected "
                            f"{' or '.join(FORMATS)}")
    if report_type.group_by is not None:
        invalid = [g for g in configuration["groupBy"] if g not in report_type.group_by]
        if invalid:
            raise AdsError(400, f"configuration groupBy {', '.join(invalid)} is not valid for reportTypeId "
                                f"{type_id}; allowed: {', '.join(sorted(report_type.group_by))}")
    wrong = {"DAILY": {"startDate", "endDate"}, "SUMMARY": {"date"}}[time_unit] & set(configuration["columns"])
    if wrong:
        raise AdsError(400, f"configuration columns {', '.join(sorted(wrong))} cannot be used with timeUnit "
                            f"{time_unit}")
    filters = configuration["filters"]
    if filters is not None and not (isinstance(filters, list) and all(
            isinstance(f, dict) and isinstance(f.get("field"), str) and isinstance(f.get("values"), list)
            for f in filters)):
        raise AdsError(400, "configuration filters must be a list of {\"field\": string, \"values\": [...]}")


def _check_dates(start: date, end: date, today: date, type_id: str, report_type: ReportType) -> None:
    if end < start:
        raise AdsError(400, f"endDate {end} is before startDate {start}")
    days = (end - start).days + 1
    if days > report_type.max_days:
        raise AdsError(400, f"The date range of {days} days exceeds the maximum of {report_type.max_days} days "
                            f"for reportTypeId {type_id}")
    oldest = today - timedelta(days=report_type.retention_days)
    if start < oldest:
        raise AdsError(400, f"startDate {start} is older than the {report_type.retention_days} days of data "
                            f"kept for reportTypeId {type_id} (earliest {oldest})")
