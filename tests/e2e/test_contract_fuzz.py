"""Property-based fuzzing of every request contract: whatever arrives on a service's request queue is either a valid
contract or a REJECTED answer naming each bad field and what was expected, never a crash.

The pure tests take each app's own request router (its route table and ``classify``, imported from its
``app.py``) and parse through the router's own path (``RequestRouter._parse`` and the route's ``Contract.parse``).
The real-path test sends a few of the generated bad requests through the local cloud: each gets one REJECTED
notification naming the field, and none an ERROR.
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
import os
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amci.inbox import Inbox
from amci.stages import SERVICES_DIR
from local.apps import stage_config
from local.cloud import LocalCloud
from shared.contracts import ContractError, FieldError
from shared.requests import RequestRouter
from tests.support import answer, execution_request, send

SERVICES = ("tenant", "workflow", "ads_reporting", "sp_reporting", "datalake")
FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# -- the services' own routers -------------------------------------------------------------------------------------


@functools.cache
def router(service: str) -> RequestRouter:
    """The request router of ``service``'s app, imported as Lambda would (its stage variables set), its ``app`` and
    ``chalicelib`` modules then kept under a private prefix so that the next app imports its own."""
    project = SERVICES_DIR / service
    variables = stage_config(project, "local").environment_variables

    def pop() -> dict[str, Any]:
        return {name: sys.modules.pop(name) for name in list(sys.modules)
                if name == "app" or name == "chalicelib" or name.startswith("chalicelib.")}

    saved, missing = pop(), [key for key in variables if key not in os.environ]
    os.environ.update({key: str(variables[key]) for key in missing})
    sys.path.insert(0, str(project))
    try:
        module = importlib.import_module("app")
    finally:
        sys.path.remove(str(project))
        for key in missing:
            os.environ.pop(key, None)
        for name, loaded in pop().items():
            sys.modules[f"amci_fuzz_apps.{service}.{name}"] = loaded
        sys.modules.update(saved)
    return module.service.router


# -- valid requests of every type (as the tests and README send them) ----------------------------------------------

CUSTOMER = "acme-1"
US = "ATVPDKIKX0DER"
DIAGNOSE = {"requestType": "diagnose", "repeat": 2, "intervalSeconds": 1}
AMC = {"aws_orange_account_id": "111122223333", "bucket_name": "amc-acme-1-results", "instance_id": "amcabc12345",
       "amazon_ads_advertiser_id": "ADV123", "amazon_ads_marketplace_id": US}
ADS_REPORT = {"profileId": "123456", "region": "North America", "customerId": CUSTOMER, "tableName": "sp_campaigns",
              "requestBody": {"startDate": "TODAY(-2)", "endDate": "TODAY(-1)", "configuration": {
                  "adProduct": "SPONSORED_PRODUCTS", "groupBy": ["campaign"], "columns": ["impressions", "clicks"],
                  "reportTypeId": "spCampaigns", "timeUnit": "SUMMARY", "format": "JSON"}}}
SP_REPORT = {"region": "North America", "authId": "default", "tablePrefix": "sales", "requestBody": {
    "reportType": "GET_SALES_AND_TRAFFIC_REPORT", "reportOptions": {"dateGranularity": "DAY"},
    "dataStartTime": "2026-09-01", "dataEndTime": "2026-09-03", "marketplaceIds": [US]}}
EXECUTION = execution_request(CUSTOMER)


def _report_schedules(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("createSchedule", {"requestType": "createSchedule", "scheduleName": "daily", "timezone": "Europe/Berlin",
                            "scheduleExpression": "cron(0 6 * * ? *)", "reportRequest": report}),
        ("createSchedule", {"requestType": "updateSchedule", "scheduleName": "daily",
                            "scheduleExpression": "rate(1 day)", "reportRequest": report, "enabled": False}),
        ("createSchedule", {"report_request": report, "schedule_expression": "rate(5 minutes)", "rule_name": "r5",
                            "rule_description": "every five minutes", "state": "DISABLED"}),
        ("deleteSchedule", {"requestType": "deleteSchedule", "scheduleName": "daily"}),
        ("deleteSchedule", {"rule_name": "daily"}),
        ("enableSchedule", {"requestType": "enableSchedule", "scheduleName": "daily"}),
        ("disableSchedule", {"requestType": "disableSchedule", "scheduleName": "daily"}),
        ("listSchedules", {"requestType": "listSchedules"}),
        ("listReports", {"requestType": "listReports", "status": "SUCCEEDED", "customerId": CUSTOMER, "limit": 5}),
    ]


EXAMPLES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "tenant": [
        ("addTenant", {"customer_details": {"customer_id": CUSTOMER, "customer_name": "Acme", "bucket_exists": "false",
                                            "amc": AMC}}),
        ("updateTenant", {"requestType": "updateTenant", "requestId": "r-1", "customer_details": {
            "customer_id": CUSTOMER, "customer_name": "Acme Inc", "auth_id": "acme", "bucket_exists": True,
            "bucket_account": "123456789012", "bucket_region": "us-east-1", "notification_email": "ops@acme.example",
            "max_concurrent_executions": 5, "amc": AMC}}),
        ("getTenant", {"requestType": "getTenant", "customer_id": CUSTOMER}),
        ("listTenants", {"requestType": "listTenants"}),
        ("offboardTenant", {"requestType": "offboardTenant", "customer_id": CUSTOMER}),
        ("diagnose", DIAGNOSE),
    ],
    "workflow": [
        ("workflowRequest", {"customerId": CUSTOMER, "workflowRequest": {"requestType": "createWorkflow",
                                                                          "workflowDefinition": {
                                                                              "workflowId": "top",
                                                                              "sqlQuery": "SELECT 1"}}}),
        ("workflowRequest", {"customerId": CUSTOMER, "workflowRequest": {"requestType": "getWorkflow",
                                                                          "workflowId": "top"}}),
        ("listWorkflows", {"requestType": "listWorkflows", "customerId": CUSTOMER}),
        ("createExecution", EXECUTION),
        ("cancelExecution", {"requestType": "cancelExecution", "customerId": CUSTOMER,
                             "workflowExecutionId": "abc-123"}),
        ("getExecutionStatus", {"requestType": "getExecutionStatus", "customerId": CUSTOMER,
                                "workflowExecutionId": "abc-123", "createExecutionRequest": {}}),
        ("listExecutions", {"requestType": "listExecutions", "customerId": CUSTOMER, "status": "RUNNING",
                            "limit": 10}),
        ("syncExecutions", {"requestType": "syncExecutions", "customerId": CUSTOMER, "days": 3}),
        ("createSchedule", {"requestType": "createSchedule", "customerId": CUSTOMER, "scheduleName": "daily",
                            "scheduleExpression": "rate(1 day)", "timezone": "America/New_York",
                            "executionRequest": EXECUTION}),
        ("createSchedule", {"execution_request": EXECUTION, "schedule_expression": "custom(W 0 9)",
                            "rule_name": "weekly"}),
        ("updateSchedule", {"requestType": "updateSchedule", "customerId": CUSTOMER, "scheduleName": "daily",
                            "scheduleExpression": "cron(0 6 * * ? *)", "executionRequest": EXECUTION}),
        ("deleteSchedule", {"requestType": "deleteSchedule", "customerId": CUSTOMER, "scheduleName": "daily"}),
        ("deleteSchedule", {"rule_name": "weekly"}),
        ("enableSchedule", {"requestType": "enableSchedule", "customerId": CUSTOMER, "scheduleName": "daily"}),
        ("disableSchedule", {"requestType": "disableSchedule", "customerId": CUSTOMER, "scheduleName": "daily"}),
        ("listSchedules", {"requestType": "listSchedules", "customerId": CUSTOMER}),
        ("backfillExecutions", {"requestType": "backfillExecutions", "customerId": CUSTOMER,
                                "startDate": "2026-09-01", "endDate": "2026-09-03", "windowDays": 1,
                                "createExecutionRequest": {"workflowId": "top", "ignoreDataGaps": True}}),
        ("resubmitBackfill", {"requestType": "resubmitBackfill", "customerId": CUSTOMER, "backfillId": "bf-1"}),
        ("diagnose", DIAGNOSE),
    ],
    "ads_reporting": [
        ("createReport", ADS_REPORT),
        ("createReport", {**ADS_REPORT, "profileId": 123456, "region": "NA", "requestType": "createReport"}),
        *_report_schedules(ADS_REPORT),
        ("listProfiles", {"region": ["North America", "Europe", "APAC"], "authId": None}),
        ("listProfiles", {"requestType": "listProfiles", "region": "EU", "authId": "default"}),
        ("backfillReports", {**ADS_REPORT, "requestType": "backfillReports", "startDate": "2026-09-01",
                             "endDate": "TODAY(-1)", "requestBody": {"configuration": ADS_REPORT["requestBody"][
                                 "configuration"]}}),
        ("diagnose", DIAGNOSE),
    ],
    "sp_reporting": [
        ("createReport", SP_REPORT),
        ("createReport", {"requestBody": SP_REPORT["requestBody"]}),
        *_report_schedules(SP_REPORT),
        ("diagnose", DIAGNOSE),
    ],
    "datalake": [
        ("registerDataset", {"requestType": "registerDataset", "team": "ops", "dataset": "weather",
                             "stageA": "lake_transforms.weather:stage_a", "minItems": 2, "maxItems": 10,
                             "maxWaitSeconds": 60}),
        ("listDatasets", {"requestType": "listDatasets"}),
        ("redrive", {"requestType": "redrive", "stage": "b", "limit": 10}),
        ("diagnose", DIAGNOSE),
    ],
}


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON value: dict keys and list indexes, the value itself first."""
    yield prefix
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield from _paths(item, (*prefix, key))


# -- strategies ----------------------------------------------------------------------------------------------------

UNITS = ("minute", "minutes", "hour", "hours", "day", "days", "week", "year")
texts = st.text(max_size=40) | st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["", " ", "\x00", "null", "NaN", "../..", "a" * 65, "é☃𝄞", "TODAY(-99999999999)", "today(1)", "UTC", "NA",
     "2026-02-30", "9999-12-31T23:59:59Z", "rate(0 days)", "cron(* * * * * *)", "at(2026-13-01T00:00:00)",
     "custom(H 0 0)"])
# Schedule expressions and relative dates, the strings the contracts parse further themselves.
grammar = (st.builds(lambda n, unit: f"rate({n} {unit})", st.integers(-10, 10**30), st.sampled_from(UNITS))
           | st.builds(lambda n: f"TODAY({n})", st.integers(-10**20, 10**20))
           | st.builds(lambda parts: f"cron({' '.join(parts)})",
                       st.lists(st.sampled_from(["*", "?", "0", "59", "99", "L", "1#9", "MON-FRI", "1/0", "-1", "W"]),
                                min_size=5, max_size=7))
           | st.builds(lambda kind, a, b: f"custom({kind} {a} {b})", st.sampled_from("HDWMX"),
                       st.integers(-5, 100), st.integers(-5, 100)))
numbers = (st.integers(-2**70, 2**70) | st.floats() | st.sampled_from([0, -1, 1, 2**63, -2**63, 1e308, 0.5]))
scalars = st.none() | st.booleans() | numbers | texts | grammar
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    texts, inner, max_size=4), max_leaves=12)
huge = st.builds(lambda char, n: char * n, st.sampled_from(["x", "é", "𝄞", "\\", '"']), st.integers(1_000, 200_000))


def request_types(service: str) -> list[str]:
    return sorted({*router(service).routes, *(t for t, _ in EXAMPLES[service]),
                   *(e.get("requestType") for _, e in EXAMPLES[service] if "requestType" in e)})


@st.composite
def shaped(draw: st.DrawFn, service: str) -> Any:
    """A dict with the service's own field names (top-level and nested), holding anything."""
    names = sorted({*_keys([e for _, e in EXAMPLES[service]]),
                    *(f for r in router(service).routes.values() for f in r.contract.model_fields)})
    body = draw(st.dictionaries(st.sampled_from(names), json_values | st.dictionaries(
        st.sampled_from(names), json_values, max_size=6), max_size=8))
    if draw(st.booleans()):
        body["requestType"] = draw(st.sampled_from(request_types(service)) | json_values)
    return body


@st.composite
def mutated(draw: st.DrawFn, service: str) -> Any:
    """A valid example of ``service`` with one to three things wrong with it."""
    body: Any = copy.deepcopy(draw(st.sampled_from([e for _, e in EXAMPLES[service]])))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(body))))
        operation = draw(st.sampled_from(["drop", "retype", "huge", "unicode", "negative", "nest", "extra",
                                          "grammar", "requestType"]))
        if operation == "requestType":
            path, value = ("requestType",), draw(st.sampled_from([
                *request_types(service), *(t for s in SERVICES for t, _ in EXAMPLES[s])]) | json_values)
        elif operation == "extra":
            path = (*path, draw(texts))
            value = draw(json_values)
        else:
            value = {"retype": json_values, "huge": huge, "unicode": st.text(st.characters(codec="utf-8"), min_size=1),
                     "negative": st.integers(-2**70, -1) | st.floats(max_value=-1e-9),
                     "grammar": grammar, "drop": st.none(), "nest": st.none()}[operation]
            value = draw(value)
        if not path:  # the whole body
            body = [body] if operation == "nest" else value
            continue
        parent = body
        for key in path[:-1]:
            parent = parent[key]
        last = path[-1]
        if not isinstance(parent, dict | list):
            continue
        if isinstance(parent, list) and not (isinstance(last, int) and last < len(parent)):
            continue
        if operation == "drop":
            del parent[last]
        elif operation == "nest":
            parent[last] = draw(st.sampled_from([[parent[last]], {"value": parent[last]}]))
        else:
            parent[last] = value
    return body


# Fields the contracts parse further themselves (schedule expressions, time zones, dates).
GRAMMAR_FIELDS = ("scheduleExpression", "schedule_expression", "timezone", "timeWindowTimeZone", "timeWindowStart",
                  "timeWindowEnd", "startDate", "endDate")
GRAMMAR_SERVICES = tuple(s for s in SERVICES if any(p and p[-1] in GRAMMAR_FIELDS
                                                     for _, e in EXAMPLES[s] for p in _paths(e)))


@st.composite
def with_grammar(draw: st.DrawFn, service: str) -> Any:
    """A valid example of ``service`` with a schedule expression, time zone or date replaced."""
    body = copy.deepcopy(draw(st.sampled_from([e for _, e in EXAMPLES[service]
                                               if any(p and p[-1] in GRAMMAR_FIELDS for p in _paths(e))])))
    path = draw(st.sampled_from([p for p in _paths(body) if p and p[-1] in GRAMMAR_FIELDS]))
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = draw(grammar | texts)
    return body


# -- what every answer must be -------------------------------------------------------------------------------------


def assert_clear(error: ContractError, service: str) -> None:
    """A rejection names each bad field and what it expected, in its errors and in its one-line summary."""
    assert isinstance(error.contract, str) and error.contract in {*router(service).routes, "unknown"}, error
    assert error.errors, f"a rejection without errors: {error}"
    for field_error in error.errors:
        assert isinstance(field_error, FieldError), field_error
        assert isinstance(field_error.field, str) and field_error.field.strip(), error
        assert isinstance(field_error.expected, str) and field_error.expected.strip(), error
        assert f"{field_error.field}: expected {field_error.expected}" in str(error)
    json.dumps(error.as_dict())


def parse(service: str, body: str) -> Any:
    """``body`` as the service parses it: its contract, or the ContractError it answers with. Any other exception
    is a crash, and propagates."""
    service_router = router(service)
    try:
        raw, route = service_router._parse(body)
        request = route.contract.parse(raw)
    except ContractError as error:
        assert_clear(error, service)
        return error
    assert isinstance(request, route.contract)
    return request


def check(service: str, value: Any) -> ContractError | None:
    """Parse ``value`` sent as a message body: None when it is a valid request, else its clear rejection."""
    outcome = parse(service, value if isinstance(value, str) else json.dumps(value))
    return outcome if isinstance(outcome, ContractError) else None


# -- the pure, fast properties -------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_every_example_is_a_valid_request_of_its_type(service: str) -> None:
    for request_type, example in EXAMPLES[service]:
        raw, route = router(service)._parse(json.dumps(example))
        assert route.contract.request_type == request_type
        route.contract.parse(raw)
        assert check(service, example) is None


@pytest.mark.parametrize("service", SERVICES)
@FUZZ
@given(body=st.text(max_size=60) | json_values.map(json.dumps) | st.just(""))
def test_any_message_body_is_a_request_or_a_clear_rejection(service: str, body: str) -> None:
    check(service, body)


@pytest.mark.parametrize("service", SERVICES)
@FUZZ
@given(data=st.data())
def test_any_object_with_the_services_fields_is_a_request_or_a_clear_rejection(service: str, data: Any) -> None:
    check(service, data.draw(shaped(service)))


@pytest.mark.parametrize("service", SERVICES)
@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_a_broken_valid_request_is_a_request_or_a_clear_rejection(service: str, data: Any) -> None:
    check(service, data.draw(mutated(service)))


@pytest.mark.parametrize("service", GRAMMAR_SERVICES)
@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_any_schedule_expression_time_zone_or_date_is_accepted_or_clearly_rejected(service: str, data: Any) -> None:
    check(service, data.draw(with_grammar(service)))


@pytest.mark.parametrize(("service", "schedule"), [
    ("workflow", {"requestType": "createSchedule", "customerId": CUSTOMER, "scheduleName": "daily",
                  "scheduleExpression": "rate(1000000000 days)", "executionRequest": EXECUTION}),
    ("ads_reporting", {"requestType": "createSchedule", "scheduleName": "daily",
                       "scheduleExpression": "rate(1000000000 days)", "reportRequest": ADS_REPORT}),
    ("sp_reporting", {"rule_name": "daily", "schedule_expression": "rate(1000000000 days)",
                      "report_request": SP_REPORT}),
])
def test_a_rate_beyond_what_python_counts_is_a_clear_rejection(service: str, schedule: dict[str, Any]) -> None:
    """Found by the fuzzing above: the smallest rate past ``timedelta``'s 999999999 days."""
    check(service, schedule)


# -- the real path -------------------------------------------------------------------------------------------------

REAL_PATH_SAMPLES = 5


def bad_requests(service: str, count: int = REAL_PATH_SAMPLES) -> list[tuple[dict[str, Any], ContractError]]:
    """The first ``count`` broken requests (each with a valid request id) that ``service`` rejects, drawn
    deterministically, small enough for SQS."""
    found: list[tuple[dict[str, Any], ContractError]] = []

    @settings(max_examples=200, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(body=mutated(service))
    def collect(body: Any) -> None:
        if len(found) >= count or not isinstance(body, dict):
            return
        body = {**body, "requestId": f"fuzz-{len(found)}-{uuid.uuid4().hex[:12]}"}
        text = json.dumps(body)
        outcome = parse(service, text)
        if isinstance(outcome, ContractError) and len(text) < 100_000:
            found.append((body, outcome))

    collect()
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_broken_requests_through_the_local_cloud_are_rejected_once_naming_the_field(
        cloud: LocalCloud, inbox: Inbox, service: str) -> None:
    requests = bad_requests(service)
    assert len(requests) == REAL_PATH_SAMPLES
    sent = [(send(cloud, service, body), error) for body, error in requests]
    for request_id, error in sent:
        note = answer(inbox, request_id, 60)
        assert note.attributes["status"] == "REJECTED", note.body
        assert note.attributes["service"] == service
        for field_error in error.errors:
            assert f"{field_error.field}: expected" in note.body["summary"], note.body["summary"]
    answer(inbox, send(cloud, service, dict(DIAGNOSE)), 60)  # sent after them all, answered after them all
    for request_id, _ in sent:
        mine = [n for n in inbox.drain() if n.body.get("request_id") == request_id]
        assert [n.attributes["status"] for n in mine] == ["REJECTED"], [n.body for n in mine]
