"""IAM: every function has a role of its own, whose policy has explicit actions on the stage's own resources; every
AWS call a function makes is allowed by that policy; and nothing is granted that no path needs.

The calls are recorded, not listed by hand. A tour of the platform runs on the local cloud, reaching every function of
every app through its real path (request queues, state machines, S3 events, the schedule; one task invoked directly
with its state machine's input), and each boto3 call made inside a function's invocation is recorded under the
function's name: botocore's ``_make_api_call`` and each deployed handler are wrapped for the tour only, thread pools
carry the function's context into their threads, and what a Lambda container would keep to itself but the one
process shares (credentials read from their secret) is kept per function. Calls the emulator makes inside a call
(a stack's resources, made by CloudFormation on AWS) are not the function's and are left out.

Each call becomes the requests AWS would authorize: action, resource ARN, condition keys (``dynamodb:LeadingKeys``,
``iam:PassedToService``), and the KMS requests it implies when its resource is encrypted with a KMS key
(``kms:ViaService``, ``kms:ResourceAliases``, the key as the emulated account has it); each SQS event source adds
what Lambda's poller does with the function's role. Every request is evaluated against the function's policy as
packaged in ``sam.json``: a statement missing from ``permissions.json`` fails the test, naming the function, action
and resource, and so does a call the mapping here does not know yet. The other way round, a granted action the tour
never uses fails unless ``NOT_REACHED`` names the path that needs it.
"""

from __future__ import annotations

import contextvars
import copy
import fnmatch
import json
import re
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.conditions import ConditionBase, ConditionExpressionBuilder
from botocore.client import BaseClient

from amci import permissions
from amci.inbox import Inbox
from amci.package import package
from amci.stages import SERVICES_DIR
from local.cloud import ACCOUNT_ID, REGION, STAGE, LocalCloud
from local.lambdas import Lambdas
from shared import aws
from shared.amazon import accounts
from shared.config import SERVICES
from tests.support import (
    amc_tenant,
    answer,
    customer_details,
    execution_outcome,
    execution_request,
    offline_packaging,
    send,
    wait_until,
)

PSEUDO = {"${AWS::Partition}": "aws", "${AWS::Region}": REGION, "${AWS::AccountId}": ACCOUNT_ID}
# Actions AWS authorizes on no resource narrower than "*", and the condition key that must bound them (None: none).
RESOURCE_STAR = {
    "xray:PutTraceSegments": None, "xray:PutTelemetryRecords": None,
    "cloudwatch:PutMetricData": "cloudwatch:namespace",
    "lakeformation:GrantPermissions": None, "lakeformation:RevokePermissions": None,  # no resource-level permissions
    "scheduler:ListSchedules": None,
    "kms:Decrypt": "kms:ViaService", "kms:GenerateDataKey": "kms:ViaService",  # the key's ARN is the platform's
}
# Resources no stage names, and why.
NOT_THE_STAGES = {"arn:aws:s3:::*": "a tenant's AMC bucket, checked and wired whatever its name",
                  "arn:aws:s3:::*/workflow=*": "AMC results in a tenant's bucket, whatever its name",
                  "arn:aws:s3:::amci-*": "every stage's platform buckets, denied to the wiring of a tenant's bucket",
                  f"arn:aws:glue:{REGION}:{ACCOUNT_ID}:catalog": "the account's catalog, holding the tenant databases"}
STAGE_NAMES = r"amci-{0}-|amci_{0}_|amci/{0}/|alias/amci-{0}$"  # a stage's own names


# -- the packaged policies -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployed:
    """A function as packaged: its deployed name, its role's logical id and its policy (pseudo parameters
    resolved to the local cloud's account and region)."""

    service: str
    name: str
    role: str
    properties: Mapping[str, Any]
    policy: Mapping[str, Any]


@pytest.fixture(scope="module")
def packaged(cloud: LocalCloud, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every app packaged once for the local stage, offline from the wheelhouse, as the deploy packages it (the
    platform key named by its ARN): its sam.json."""
    out = tmp_path_factory.mktemp("packages")
    with offline_packaging():
        return {service: json.loads(package(service, STAGE, out, platform_key_arn=cloud.outputs["PlatformKeyArn"])
                                    .template_path.read_text()) for service in SERVICES}


@pytest.fixture(scope="module")
def deployed(packaged: dict[str, dict[str, Any]]) -> dict[str, Deployed]:
    found = {}
    for service, template in packaged.items():
        for resource in template["Resources"].values():
            if resource["Type"] != "AWS::Serverless::Function":
                continue
            properties = resource["Properties"]
            role = properties["Role"]["Fn::GetAtt"][0]
            policies = template["Resources"][role]["Properties"]["Policies"]
            assert len(policies) == 1, f"{role}: one inline policy expected"
            found[properties["FunctionName"]] = Deployed(service, properties["FunctionName"], role, properties,
                                                         resolved(policies[0]["PolicyDocument"]))
    return found


def resolved(value: Any, pseudo: Mapping[str, str] = PSEUDO) -> Any:
    """``value`` with every ``Fn::Sub`` of pseudo parameters replaced by its string."""
    if isinstance(value, dict):
        if set(value) == {"Fn::Sub"}:
            text = value["Fn::Sub"]
            for name, replacement in pseudo.items():
                text = text.replace(name, replacement)
            assert "${" not in text, f"unresolved in {value}"
            return text
        assert not any(k.startswith("Fn::") or k == "Ref" for k in value), f"unexpected intrinsic {value}"
        return {k: resolved(v, pseudo) for k, v in value.items()}
    if isinstance(value, list):
        return [resolved(v, pseudo) for v in value]
    return value


def statements(policy: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(policy["Statement"])


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# -- the policies' shape -------------------------------------------------------------------------------------------


def test_every_function_has_a_role_of_its_own(packaged: dict[str, dict[str, Any]]) -> None:
    for service, template in packaged.items():
        resources = template["Resources"]
        functions = {k: r for k, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
        roles = [f["Properties"]["Role"]["Fn::GetAtt"] for f in functions.values()]
        assert all(arn_of[1] == "Arn" and resources[arn_of[0]]["Type"] == "AWS::IAM::Role" for arn_of in roles)
        assert len({role for role, _ in roles}) == len(functions), f"{service}: a role shared by functions"
        assert {k for k, r in resources.items() if r["Type"] == "AWS::IAM::Role"} == {role for role, _ in roles}
        names = {f["Properties"]["FunctionName"] for f in functions.values()}
        assert names == {f"amci-{service.replace('_', '-')}-{STAGE}-{name}"
                         for name in permissions.load(SERVICES_DIR / service).functions}


def test_no_action_is_a_wildcard(deployed: dict[str, Deployed]) -> None:
    wild = [(f.name, s["Sid"], action) for f in deployed.values() for s in statements(f.policy)
            for action in as_list(s["Action"]) if "*" in action]
    assert not wild
    assert all(s["Effect"] in ("Allow", "Deny") and "NotAction" not in s and "NotResource" not in s
               for f in deployed.values() for s in statements(f.policy))


def test_resource_star_only_for_actions_that_take_no_other_and_bounded_where_they_can_be(
        deployed: dict[str, Deployed]) -> None:
    for function in deployed.values():
        for statement in statements(function.policy):
            if "*" not in as_list(statement["Resource"]):
                continue
            assert as_list(statement["Resource"]) == ["*"], f"{function.name} {statement['Sid']}"
            for action in as_list(statement["Action"]):
                assert action in RESOURCE_STAR, f"{function.name} {statement['Sid']}: {action} on *"
                bound = RESOURCE_STAR[action]
                keys = {key for block in statement.get("Condition", {}).values() for key in block}
                assert bound is None or bound in keys, f"{function.name} {statement['Sid']}: {action} needs {bound}"


def test_resources_are_the_stages_own(cloud: LocalCloud, deployed: dict[str, Deployed]) -> None:
    stage_names = re.compile(STAGE_NAMES.format(STAGE))
    for function in deployed.values():
        for statement in statements(function.policy):
            for resource in as_list(statement["Resource"]):
                if statement["Sid"] == "UsePlatformKey":  # a key's ARN holds no name: the stage's key, by its ARN
                    assert resource == cloud.outputs["PlatformKeyArn"], function.name
                elif statement["Sid"] == "WriteOwnLogs":  # its own log group, no other function's
                    assert resource.startswith(f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:/aws/lambda/"
                                               f"{function.name}"), resource
                    assert resource.removesuffix(":*").endswith(function.name), resource
                elif resource != "*" and resource not in NOT_THE_STAGES:
                    assert stage_names.search(resource), f"{function.name} {statement['Sid']}: {resource}"
                    assert ":*:*:" not in resource, f"{function.name}: {resource} names no account"
            for value in _condition_values(statement, "kms:ResourceAliases"):
                assert value == f"alias/amci-{STAGE}"


def test_any_stage_gets_policies_naming_its_own_resources() -> None:
    stage = "qa7"
    stage_names = re.compile(STAGE_NAMES.format(stage))
    for service in SERVICES:
        declared = permissions.load(SERVICES_DIR / service)
        for function in declared.functions:
            name = permissions.function_name(f"amci-{service.replace('_', '-')}", stage, function)
            policy = resolved(declared.policy(function, stage, name, traced=True))
            text = json.dumps(policy)
            assert "local" not in text and "prod" not in text, f"{name}: {text}"
            assert [s["Sid"] for s in statements(policy)][-1] == "Tracing"
            for statement in statements(policy):
                for resource in as_list(statement["Resource"]):
                    assert (resource == "*" or resource in NOT_THE_STAGES or stage_names.search(resource)
                            or resource.endswith((f"/aws/lambda/{name}", f"/aws/lambda/{name}:*"))), resource


def test_the_platform_key_is_named_by_its_arn_and_used_only_through_the_services_declared(
        cloud: LocalCloud, deployed: dict[str, Deployed]) -> None:
    uses = [s for f in deployed.values() for s in statements(f.policy) if s["Sid"] == "UsePlatformKey"]
    assert uses and all(s["Resource"] == cloud.outputs["PlatformKeyArn"] for s in uses)
    assert all(set(s["Condition"]) == {"StringEquals"} and s["Condition"]["StringEquals"]["kms:ViaService"]
               for s in uses)
    unknown = permissions.load(SERVICES_DIR / "workflow").policy("on_request", STAGE, "f", traced=False)
    (bounded,) = [s for s in statements(unknown) if s["Sid"] == "UsePlatformKey"]  # amci package: no ARN yet
    assert bounded["Resource"] == "*" and _condition_values(bounded, "kms:ResourceAliases") == [f"alias/amci-{STAGE}"]


def test_wiring_a_tenants_bucket_never_reaches_a_platform_bucket(cloud: LocalCloud,
                                                                 deployed: dict[str, Deployed]) -> None:
    (wiring,) = [f for f in deployed.values() if "WireExistingBuckets" in {s["Sid"] for s in statements(f.policy)}]
    platform = [cloud.outputs[name] for name in ("RawBucket", "ReportsBucket", "StageBucket", "AccessLogsBucket")]
    platform.append(f"amci-other{STAGE}-raw-{ACCOUNT_ID}-{REGION}")  # another stage's, in the same account
    for action in ("s3:PutBucketPolicy", "s3:PutBucketNotification"):
        assert allowed(wiring.policy, Request(action, "arn:aws:s3:::amc-customer-kept"))  # any tenant's bucket
        reached = [bucket for bucket in platform if allowed(wiring.policy, Request(action, f"arn:aws:s3:::{bucket}"))]
        assert reached == [], action


def test_tracing_is_allowed_exactly_where_the_stage_traces(deployed: dict[str, Deployed]) -> None:
    for function in deployed.values():
        traced = function.properties.get("Tracing") == "Active"
        assert traced == any(s["Sid"] == "Tracing" for s in statements(function.policy)), function.name


def test_permissions_are_refused_with_a_wildcard_an_unknown_or_an_unused_statement(tmp_path: Path) -> None:
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / permissions.FILE).write_text(json.dumps({
        "statements": {"Everything": {"Effect": "Perhaps", "Action": ["s3:*"],
                                      "Resource": "arn:${AWS::Partition}:s3:::amci-${Stage}-x"},
                       "Unused": {"Action": ["sqs:SendMessage"], "Resource": "arn:${Nowhere}"}},
        "functions": {"f": {"statements": ["Everything", "Missing"], "platformKeyVia": ["ec2"]}}}))

    with pytest.raises(permissions.PermissionsError) as refused:
        permissions.load(tmp_path)

    message = str(refused.value)
    for expected in ("Everything: actions must be explicit, not s3:*", "Effect is Allow or Deny, not Perhaps",
                     "Unused: unknown placeholders Nowhere",
                     "function f: no statement Missing", "not ec2", "statements no function uses: Unused"):
        assert expected in message


def test_tenant_stacks_carry_the_cost_allocation_tags(tour: Recorder) -> None:
    created = [c for c in tour.calls if c.operation in ("CreateStack", "UpdateStack")
               and c.function == f"amci-tenant-{STAGE}-onboarding_deploy"]
    assert created
    for call in created:
        tags = {t["Key"]: t["Value"] for t in call.params["Tags"]}
        assert tags["amci:stage"] == STAGE and tags["amci:component"] == "tenant-stack", call.params["StackName"]
        assert call.params["StackName"].startswith(f"amci-{STAGE}-tenant-{tags['amci:tenant']}")


def _condition_values(statement: Mapping[str, Any], key: str) -> list[Any]:
    return [v for block in statement.get("Condition", {}).values() for k, values in block.items() if k == key
            for v in as_list(values)]


# -- the calls each function makes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    function: str  # the deployed name
    service: str  # botocore's name for it
    operation: str
    region: str
    params: Mapping[str, Any]


_running: contextvars.ContextVar[str | None] = contextvars.ContextVar("amci_iam_function", default=None)
_in_call: contextvars.ContextVar[bool] = contextvars.ContextVar("amci_iam_in_call", default=False)


class Recorder:
    """The boto3 calls made inside function invocations, by function; and which functions were invoked."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.invoked: set[str] = set()
        self._lock = threading.Lock()

    @contextmanager
    def installed(self, lambdas: Lambdas) -> Iterator[Recorder]:
        """Record while the block runs: every deployed function's handler wrapped, boto3 calls noted."""
        make_api_call, submit = BaseClient._make_api_call, ThreadPoolExecutor.submit
        recorder = self

        def recorded_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            function = _running.get()
            if function is None or _in_call.get():  # not a function's, or the emulator's own (a stack's resources)
                return make_api_call(client, operation, params)
            token = _in_call.set(True)
            try:
                return make_api_call(client, operation, params)
            finally:  # after the call: boto3's resources have filled in the low-level parameters by then
                _in_call.reset(token)
                recorder._add(Call(function, client.meta.service_model.service_name, operation,
                                   client.meta.region_name, {k: v for k, v in params.items() if k != "Body"}))

        def recorded(name: str, handler: Any) -> Any:
            def invoke(event: Any, context: Any) -> Any:
                with recorder._lock:
                    recorder.invoked.add(name)
                token = _running.set(name)
                try:
                    return handler(event, context)
                finally:
                    _running.reset(token)
            return invoke

        def submit_in_context(pool: ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            # A function's own threads (S3 multipart uploads) work for the function, as in Lambda.
            return submit(pool, contextvars.copy_context().run, fn, *args, **kwargs)

        deployed = dict(lambdas.functions)
        sp_source = sys.modules["amci_local_apps.sp_reporting.chalicelib.source"]  # as local/apps.py keeps it
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(BaseClient, "_make_api_call", recorded_call)
            patch.setattr(ThreadPoolExecutor, "submit", submit_in_context)
            # What a Lambda container keeps for itself and the one process of the local cloud shares between
            # functions (credentials read from their secret, clients holding them), kept per function instead: each
            # function's own first read of a secret is then its own call.
            patch.setattr(accounts, "_providers", _PerFunction())
            patch.setattr(sp_source, "client", _per_function(sp_source.client.__wrapped__))
            for name, function in deployed.items():
                patch.setitem(lambdas.functions, name, replace(function, handler=recorded(name, function.handler)))
            yield self

    def _add(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)


class _PerFunction(dict[Any, Any]):
    """A dict whose keys are the running function's own."""

    def __contains__(self, key: object) -> bool:
        return super().__contains__((_running.get(), key))

    def __getitem__(self, key: Any) -> Any:
        return super().__getitem__((_running.get(), key))

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__((_running.get(), key), value)


def _per_function(make: Any) -> Any:
    """``make``, cached per running function and arguments."""
    made, lock = _PerFunction(), threading.Lock()

    def cached(*args: Any) -> Any:
        with lock:
            if args not in made:
                made[args] = make(*args)
            return made[args]
    return cached


def _customer(customer_id: str, bucket: str, **fields: Any) -> dict[str, Any]:
    return {"customer_details": customer_details(customer_id, customer_name=f"IAM {customer_id}", bucket_exists="true",
                                                 amc={"bucket_name": bucket}, **fields)}


def _succeeded(inbox: Inbox, request_ids: list[str], timeout_s: float = 90) -> None:
    for request_id in request_ids:
        note = answer(inbox, request_id, timeout_s)
        assert note.attributes["status"] == "SUCCEEDED", note.body


@pytest.fixture(scope="module")
def tour(cloud: LocalCloud, inbox: Inbox, fast_amc: None, fast_ads: None) -> Recorder:
    """Every function of every app reached once or more, through the local cloud, with its calls recorded."""
    s3, suffix = aws.client("s3"), uuid.uuid4().hex[:8]
    with Recorder().installed(cloud.lambdas) as recorder:
        diagnoses = [send(cloud, service, {"requestType": "diagnose"}) for service in SERVICES]
        rejected = [send(cloud, service, {"requestType": "nonsense"}) for service in SERVICES]  # quarantined

        # Tenants: a new bucket (on an AMC instance of its own, with a workflow), an existing one, another account's.
        customer, _ = amc_tenant(cloud, inbox, notification_email=f"iam-{suffix}@example.com")
        existing = f"iamx{suffix}"
        s3.create_bucket(Bucket=f"amc-{existing}-kept")
        waiting = [send(cloud, "tenant", _customer(existing, f"amc-{existing}-kept")),
                   send(cloud, "tenant", _customer(f"iamy{suffix}", f"amc-iamy{suffix}-theirs",
                                                   bucket_account="444455556666"))]

        # Workflows: an execution, a schedule managed by name, listings, a sync.
        execution = send(cloud, "workflow", execution_request(customer))
        schedule = {"requestType": "createSchedule", "customerId": customer, "scheduleName": f"iam{suffix}",
                    "scheduleExpression": "cron(0 3 * * ? *)", "executionRequest": execution_request(customer)}
        waiting.append(send(cloud, "workflow", schedule))

        # Reports: one of each API, a schedule each, Ads profiles.
        profile = str(cloud.sandbox.account.profile_id)  # a new one would take the id other tests expect next
        ads = send(cloud, "ads_reporting", {"profileId": profile, "region": "North America", "requestBody": {
            "startDate": "TODAY(-2)", "endDate": "TODAY(-1)", "configuration": {
                "adProduct": "SPONSORED_PRODUCTS", "groupBy": ["campaign"], "reportTypeId": "spCampaigns",
                "columns": ["campaignId", "impressions"], "timeUnit": "SUMMARY", "format": "JSON"}}})
        sp_body = {"reportType": "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
                   "marketplaceIds": ["ATVPDKIKX0DER"], "dataStartTime": "2024-06-01T00:00:00Z",
                   "dataEndTime": "2024-06-02T00:00:00Z"}  # a day no other test asks for
        sp = send(cloud, "sp_reporting", {"requestBody": sp_body})
        for service, request in (("ads_reporting", {"profileId": profile, "region": "North America", "requestBody": {
                "startDate": "TODAY(-1)", "endDate": "TODAY(-1)", "configuration": {
                    "adProduct": "SPONSORED_PRODUCTS", "groupBy": ["campaign"], "reportTypeId": "spCampaigns",
                    "columns": ["campaignId"], "timeUnit": "SUMMARY", "format": "JSON"}}}),
                                 ("sp_reporting", {"requestBody": sp_body})):
            waiting.append(send(cloud, service, {"requestType": "createSchedule", "scheduleName": f"iam{suffix}",
                                                 "scheduleExpression": "rate(1 day)", "reportRequest": request}))
        waiting.append(send(cloud, "ads_reporting", {"requestType": "listProfiles", "region": "North America"}))
        _succeeded(inbox, diagnoses + waiting)
        for request_id in rejected:
            assert answer(inbox, request_id).attributes["status"] == "REJECTED"
        for service, request_id in zip(SERVICES, diagnoses, strict=True):  # delivered again: found, not restarted
            send(cloud, service, {"requestType": "diagnose", "requestId": request_id})
        handlers = {f"amci-{service.replace('_', '-')}-{STAGE}-on_request" for service in SERVICES}
        wait_until(lambda: handlers <= {c.function for c in recorder.calls if c.operation == "DescribeExecution"})

        # The lake (besides the reports and the AMC result): an AMC file in the tenant's bucket; redrives, listings.
        s3.put_object(Bucket=f"amc-{customer}-results", Key="workflow=iam/schedule=adhoc/2026-01-01T00:00:00Z-iam.csv",
                      Body=b"campaign,impressions\nBrand,10\n")
        waiting = [send(cloud, "datalake", {"requestType": "listDatasets"}),
                   send(cloud, "datalake", {"requestType": "redrive", "stage": "a", "limit": 1}),
                   send(cloud, "datalake", {"requestType": "redrive", "stage": "b", "limit": 1}),
                   send(cloud, "tenant", {"requestType": "getTenant", "customer_id": customer}),
                   send(cloud, "tenant", {"requestType": "listTenants"}),
                   send(cloud, "tenant", {**_customer(existing, f"amc-{existing}-kept"),
                                          "requestType": "updateTenant"}),
                   send(cloud, "workflow", {"requestType": "disableSchedule", "scheduleName": f"iam{suffix}"}),
                   send(cloud, "workflow", {"requestType": "listSchedules", "customerId": customer}),
                   send(cloud, "workflow", {"requestType": "listExecutions", "customerId": customer}),
                   send(cloud, "workflow", {"requestType": "syncExecutions", "customerId": customer}),
                   send(cloud, "ads_reporting", {"requestType": "disableSchedule", "scheduleName": f"iam{suffix}"}),
                   send(cloud, "ads_reporting", {"requestType": "deleteSchedule", "scheduleName": f"iam{suffix}"}),
                   send(cloud, "sp_reporting", {"requestType": "deleteSchedule", "scheduleName": f"iam{suffix}"}),
                   send(cloud, "sp_reporting", {"requestType": "listReports"})]
        _succeeded(inbox, waiting)
        for request_id in (ads, sp):
            assert answer(inbox, request_id, 90).attributes["status"] == "SUCCEEDED"
        assert execution_outcome(inbox, execution).attributes["status"] == "SUCCEEDED"
        wait_until(lambda: any(c.operation == "StartJobRun" for c in recorder.calls), 60)  # stage B

        # A failed update as the onboarding state machine reports it, then the tenant offboarded.
        record = aws.table(cloud.outputs["TenantsTable"]).get_item(Key={"customerId": customer})["Item"]
        cloud.lambdas.invoke(f"amci-tenant-{STAGE}-onboarding_failed", {
            "tenantId": customer, "requestId": f"iam-{suffix}", "tenant": record["tenant"],
            "error": {"Error": "StackFailed", "Cause": "a rehearsal"}})
        # One after the other: offboarding removes the tenant's schedule group, and with it the schedule to delete
        _succeeded(inbox, [send(cloud, "workflow", {"requestType": "deleteSchedule", "scheduleName": f"iam{suffix}"})])
        _succeeded(inbox, [send(cloud, "tenant", {"requestType": "offboardTenant", "customer_id": customer})])
    return recorder


def test_the_tour_reaches_every_function(deployed: dict[str, Deployed], tour: Recorder) -> None:
    assert set(deployed) <= tour.invoked
    assert set(deployed) <= {call.function for call in tour.calls}  # and each made AWS calls


@pytest.fixture(scope="module")
def requested(deployed: dict[str, Deployed], tour: Recorder) -> dict[str, list[Request]]:
    """What AWS would authorize for each function: its calls' requests, its SQS event sources'."""
    account = Emulated()
    found = {name: event_source_requests(function, account) for name, function in deployed.items()}
    unknown = set()
    for call in tour.calls:
        if call.function not in deployed:  # a test app's function (tests/apps), not packaged
            continue
        requests = iam_requests(call, account)
        if requests is None:
            unknown.add(f"{call.service}.{call.operation}")
        found[call.function] += requests or []
    assert not unknown, f"calls with no IAM mapping in this test: {sorted(unknown)}"
    return found


def test_every_call_a_function_makes_is_allowed_by_its_own_policy(deployed: dict[str, Deployed],
                                                                  requested: dict[str, list[Request]]) -> None:
    denied = {f"{name}: {r.action} on {r.resource} {dict(r.context) or ''}"
              for name, requests in requested.items() for r in requests if not allowed(deployed[name].policy, r)}
    assert not denied, "not allowed:\n" + "\n".join(sorted(denied))


# Permissions the tour does not use, and the path that does ("*": any function). Anything else a policy grants and
# the tour never uses fails the test below: a permission no code needs is to be removed.
NOT_REACHED = {
    ("*", "UsePlatformKey", "kms:GenerateDataKey"): "granted with kms:Decrypt, bounded by the services it goes through",
    ("*", "AmazonCredentials", "secretsmanager:PutSecretValue"): "a refreshed Login with Amazon token is written back",
    ("on_request", "ReportRecords", "dynamodb:Query"): "listing reports and schedules (the tour lists SP's)",
    ("on_request", "ReportSchedules", "scheduler:GetSchedule"): "enabling, disabling a schedule (the tour: Ads')",
    ("on_request", "ReportSchedules", "scheduler:UpdateSchedule"): "enabling, disabling, updating a schedule",
    ("on_request", "Records", "dynamodb:UpdateItem"): "a sync finding an execution AMC reports differently",
    ("on_request", "RegisterDatasets", "dynamodb:PutItem"): "registering a dataset (other tests count the datasets)",
    ("*", "ReadDatasets", "dynamodb:GetItem"): "routing a registered dataset's file (the built-in ones are in code)",
    ("on_request", "QueueForStageA", "sqs:SendMessage"): "redriving stage A's dead letters (the tour has none)",
    ("on_request", "RedriveDeadLetters", "sqs:DeleteMessage"): "redriving dead letters (the tour has none)",
    ("on_request", "RequeueStageB", "dynamodb:PutItem"): "redriving stage B's dead letters (the tour has none)",
    ("report_download", "WriteReportFiles", "s3:AbortMultipartUpload"): "a multipart copy that fails is aborted",
    ("report_download", "WriteReportFiles", "s3:DeleteObjectVersion"): "a copy whose checksum is wrong is deleted",
    ("on_object_event", "IntakeLedger", "dynamodb:GetItem"): "a repeated event whose routing did not finish",
    ("on_stage_a", "PublishStatus", "sns:Publish"): "a malformed file is quarantined and its owner told",
    ("on_stage_a", "ReadIntakeObjects", "s3:GetObject"): "an object of an unversioned bucket",
    ("on_stage_a", "FindDeletedIntakeObjects", "s3:ListBucket"): "an object deleted before stage A read it: S3 says "
                                                                  "NoSuchKey, not AccessDenied, to a lister",
    ("on_stage_a", "WritePreStage", "s3:AbortMultipartUpload"): "a multipart upload that fails is aborted",
    ("stage_b_batches", "BatchStagedFiles", "dynamodb:GetItem"): "the run of a batch still claimed is looked up",
    ("stage_b_batches", "RunStageB", "glue:GetJobRun"): "the run of a batch still claimed is looked up",
    ("stage_b_batches", "BatchStagedFiles", "dynamodb:DeleteItem"): "a file out of attempts leaves the pipeline",
    ("stage_b_batches", "DeadLetterStageB", "sqs:GetQueueUrl"): "a file out of attempts is dead-lettered",
    ("stage_b_batches", "DeadLetterStageB", "sqs:SendMessage"): "a file out of attempts is dead-lettered",
    ("stage_b_batches", "PutLakeMetrics", "cloudwatch:PutMetricData"): "a failed stage B run is counted (RunsFailed)",
    ("onboarding_deploy", "DeployTenantStacks", "cloudformation:UpdateStack"): "a tenant whose stack changes",
    ("onboarding_deploy", "DeployTenantStacks", "cloudformation:DeleteStack"): "a failed creation, deleted to retry",
    ("onboarding_deploy", "DeployTenantStacks", "cloudformation:TagResource"): "tagging the stacks it creates",
    ("onboarding_register", "ClaimBuckets", "dynamodb:DeleteItem"): "a tenant moving to another bucket",
    ("onboarding_register", "SubscribeEmail", "sns:Unsubscribe"): "a tenant changing its address",
}


def test_every_permission_is_used_or_known_to_serve_a_path_the_tour_does_not_take(
        deployed: dict[str, Deployed], requested: dict[str, list[Request]]) -> None:
    unused = []
    for name, function in deployed.items():
        short = name.removeprefix(f"amci-{function.service.replace('_', '-')}-{STAGE}-")
        for statement in statements(function.policy):
            if statement["Sid"] in ("WriteOwnLogs", "Tracing") or statement["Effect"] == "Deny":  # Lambda's and
                continue  # X-Ray's use of the role; a deny grants nothing
            for action in as_list(statement["Action"]):
                used = any(r.action == action and _matches(statement, r) for r in requested[name])
                if not used and not {(short, statement["Sid"], action), ("*", statement["Sid"], action)} & set(
                        NOT_REACHED):
                    unused.append(f"{name}: {statement['Sid']} {action}")
    assert not unused, "granted, never used by the tour, not in NOT_REACHED:\n" + "\n".join(unused)


# -- calls as IAM requests ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: Mapping[str, Any] = field(default_factory=dict)


def arn(service: str, resource: str, region: str = REGION, account: str = ACCOUNT_ID) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


class Emulated:
    """What the emulated account says about a resource: the KMS key encrypting it, a table's keys, a secret's ARN."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], Any] = {}

    def _cached(self, kind: str, name: str, look_up: Any) -> Any:
        if (kind, name) not in self._cache:
            self._cache[kind, name] = look_up()
        return self._cache[kind, name]

    def key_use(self, action: str, service: str, region: str, key: str | None) -> list[Request]:
        """The KMS request a service makes with the caller's permissions when it uses ``key`` for it."""
        if not key:
            return []
        if ":alias/" in key or key.startswith("alias/"):
            aliases = [key[key.index("alias/"):]]
            key_id = self._alias_targets().get(aliases[0], aliases[0])
        else:
            key_id = key.rsplit("/", 1)[-1]
            aliases = sorted(alias for alias, target in self._alias_targets().items() if target == key_id)
        return [Request(f"kms:{action}", arn("kms", f"key/{key_id}", region),
                        {"kms:ViaService": f"{service}.{region}.amazonaws.com", "kms:ResourceAliases": aliases})]

    def _alias_targets(self) -> dict[str, str]:
        return self._cached("kms", "aliases", lambda: {
            a["AliasName"]: a.get("TargetKeyId") for a in aws.client("kms").list_aliases()["Aliases"]})

    def queue_key(self, name: str) -> str | None:
        def look_up() -> str | None:
            sqs = aws.client("sqs")
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"].get("KmsMasterKeyId")
        return self._cached("queue", name, look_up)

    def topic_key(self, topic_arn: str) -> str | None:
        return self._cached("topic", topic_arn, lambda: aws.client("sns").get_topic_attributes(
            TopicArn=topic_arn)["Attributes"].get("KmsMasterKeyId"))

    def bucket_key(self, bucket: str) -> str | None:
        def look_up() -> str | None:
            s3 = aws.client("s3")
            try:
                rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
            except s3.exceptions.ClientError:
                return None
            default = rules[0]["ApplyServerSideEncryptionByDefault"]
            return default.get("KMSMasterKeyID") if default["SSEAlgorithm"] == "aws:kms" else None
        return self._cached("bucket", bucket, look_up)

    def table(self, name: str) -> dict[str, Any]:
        return self._cached("table", name, lambda: aws.client("dynamodb").describe_table(TableName=name)["Table"])

    def partition_key(self, name: str, index: str | None) -> str:
        table = self.table(name)
        schema = next(i["KeySchema"] for i in table.get("GlobalSecondaryIndexes", []) + table.get(
            "LocalSecondaryIndexes", []) if i["IndexName"] == index) if index else table["KeySchema"]
        return next(k["AttributeName"] for k in schema if k["KeyType"] == "HASH")

    def table_key(self, name: str) -> str | None:
        sse = self.table(name).get("SSEDescription") or {}
        return sse.get("KMSMasterKeyArn") if sse.get("SSEType") == "KMS" else None

    def secret(self, secret_id: str) -> tuple[str, str | None]:
        def look_up() -> tuple[str, str | None]:
            secrets = aws.client("secretsmanager")
            try:
                found = secrets.describe_secret(SecretId=secret_id)
            except secrets.exceptions.ResourceNotFoundException:
                return arn("secretsmanager", f"secret:{secret_id}-AbCdEf"), None
            return found["ARN"], found.get("KmsKeyId")
        return self._cached("secret", secret_id, look_up)


def iam_requests(call: Call, account: Emulated) -> list[Request] | None:
    """What AWS authorizes for ``call``; None for a call this test does not know (which fails it)."""
    handler = _HANDLERS.get(call.service)
    return handler(call, account) if handler else None


def _sqs(call: Call, account: Emulated) -> list[Request] | None:
    p = call.params
    name = p["QueueName"] if "QueueName" in p else p["QueueUrl"].rstrip("/").rsplit("/", 1)[-1]
    action = call.operation.removesuffix("Batch")
    if action not in ("GetQueueUrl", "SendMessage", "ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility",
                      "GetQueueAttributes"):
        return None
    kms = {"SendMessage": "GenerateDataKey", "ReceiveMessage": "Decrypt"}.get(action)
    return [Request(f"sqs:{action}", arn("sqs", name, call.region)),
            *(account.key_use(kms, "sqs", call.region, account.queue_key(name)) if kms else [])]


def _sns(call: Call, account: Emulated) -> list[Request] | None:
    p = call.params
    topic = p.get("TopicArn") or p.get("SubscriptionArn", "").rsplit(":", 1)[0]
    if call.operation not in ("Publish", "Subscribe", "Unsubscribe", "GetTopicAttributes"):
        return None
    found = [Request(f"sns:{call.operation}", topic)]
    if call.operation == "Publish":  # a publisher to an encrypted topic needs both
        key = account.topic_key(topic)
        found += account.key_use("GenerateDataKey", "sns", call.region, key)
        found += account.key_use("Decrypt", "sns", call.region, key)
    return found


_DYNAMODB_WRITES = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                    "ConditionCheck": "ConditionCheckItem"}


def _dynamodb(call: Call, account: Emulated) -> list[Request] | None:
    p, op = call.params, call.operation
    if op == "TransactWriteItems":
        items = [(_DYNAMODB_WRITES[kind], spec) for item in p["TransactItems"] for kind, spec in item.items()]
    elif op in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "DescribeTable"):
        items = [(op, p)]
    else:
        return None
    found = []
    for action, spec in items:
        table, index = spec["TableName"], spec.get("IndexName")
        resource = arn("dynamodb", f"table/{table}" + (f"/index/{index}" if index else ""), call.region)
        leading = _leading_keys(action, spec, account.partition_key(table, index))
        found.append(Request(f"dynamodb:{action}", resource,
                             {"dynamodb:LeadingKeys": leading} if leading is not None else {}))
        if action != "DescribeTable":
            found += account.key_use("Decrypt", "dynamodb", call.region, account.table_key(table))
    return found


def _leading_keys(action: str, spec: Mapping[str, Any], partition_key: str) -> list[str] | None:
    if action in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem"):
        return [_plain((spec.get("Key") or spec["Item"])[partition_key])]
    if action != "Query":
        return None
    expression, names, values = spec["KeyConditionExpression"], spec.get("ExpressionAttributeNames", {}), \
        spec.get("ExpressionAttributeValues", {})
    if isinstance(expression, ConditionBase):
        built = ConditionExpressionBuilder().build_expression(expression, is_key_condition=True)
        expression, names, values = built.condition_expression, {**names, **built.attribute_name_placeholders}, \
            {**values, **built.attribute_value_placeholders}
    return [_plain(values[value]) for name, value in re.findall(r"([#\w.]+)\s*=\s*(:\w+)", expression)
            if names.get(name, name) == partition_key]


def _plain(value: Any) -> Any:
    """A DynamoDB value as given to boto3's resource, or typed as its client takes it (``{"S": "x"}``)."""
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("S", "N", "B"):
        return next(iter(value.values()))
    return value


_S3_BUCKET = {"HeadBucket": "ListBucket", "ListObjects": "ListBucket", "ListObjectsV2": "ListBucket",
              "GetBucketNotificationConfiguration": "GetBucketNotification",
              "PutBucketNotificationConfiguration": "PutBucketNotification",
              "GetBucketPolicy": "GetBucketPolicy", "PutBucketPolicy": "PutBucketPolicy"}
_S3_OBJECT = {"GetObject": "GetObject", "HeadObject": "GetObject", "PutObject": "PutObject",
              "CreateMultipartUpload": "PutObject", "UploadPart": "PutObject", "CompleteMultipartUpload": "PutObject",
              "AbortMultipartUpload": "AbortMultipartUpload", "DeleteObject": "DeleteObject"}
_S3_KEY_USE = {"GetObject": ["Decrypt"], "HeadObject": ["Decrypt"], "PutObject": ["GenerateDataKey"],
               "CreateMultipartUpload": ["GenerateDataKey", "Decrypt"]}


def _s3(call: Call, account: Emulated) -> list[Request] | None:
    p, op = call.params, call.operation
    if op in _S3_BUCKET:
        return [Request(f"s3:{_S3_BUCKET[op]}", f"arn:aws:s3:::{p['Bucket']}")]
    if op not in _S3_OBJECT:
        return None
    action = _S3_OBJECT[op]
    if p.get("VersionId") and action in ("GetObject", "DeleteObject"):
        action += "Version"
    key = account.bucket_key(p["Bucket"])
    return [Request(f"s3:{action}", f"arn:aws:s3:::{p['Bucket']}/{p['Key']}"),
            *(r for use in _S3_KEY_USE.get(op, []) for r in account.key_use(use, "s3", call.region, key))]


def _states(call: Call, account: Emulated) -> list[Request] | None:
    p = call.params
    resource = p.get("stateMachineArn") or p.get("executionArn")
    if call.operation not in ("StartExecution", "DescribeExecution", "DescribeStateMachine"):
        return None
    return [Request(f"states:{call.operation}", resource)]


def _scheduler(call: Call, account: Emulated) -> list[Request] | None:
    p, op = call.params, call.operation
    if op == "ListSchedules":
        return [Request("scheduler:ListSchedules", "*")]
    if op in ("CreateScheduleGroup", "GetScheduleGroup", "DeleteScheduleGroup"):
        group = arn("scheduler", f"schedule-group/{p['Name']}", call.region)
        tagged = [Request("scheduler:TagResource", group)] if p.get("Tags") else []
        return [Request(f"scheduler:{op}", group), *tagged]
    if op not in ("CreateSchedule", "UpdateSchedule", "GetSchedule", "DeleteSchedule"):
        return None
    found = [Request(f"scheduler:{op}", arn("scheduler", f"schedule/{p.get('GroupName') or 'default'}/{p['Name']}",
                                           call.region))]
    if op in ("CreateSchedule", "UpdateSchedule"):
        found.append(Request("iam:PassRole", p["Target"]["RoleArn"],
                             {"iam:PassedToService": "scheduler.amazonaws.com"}))
        for use in ("GenerateDataKey", "Decrypt"):
            found += account.key_use(use, "scheduler", call.region, p.get("KmsKeyArn"))
    return found


def _secretsmanager(call: Call, account: Emulated) -> list[Request] | None:
    use = {"GetSecretValue": "Decrypt", "PutSecretValue": "GenerateDataKey"}.get(call.operation)
    if use is None:
        return None
    secret, key = account.secret(call.params["SecretId"])
    return [Request(f"secretsmanager:{call.operation}", secret),
            *account.key_use(use, "secretsmanager", call.region, key)]


def _cloudformation(call: Call, account: Emulated) -> list[Request] | None:
    p, op = call.params, call.operation
    if op not in ("CreateStack", "UpdateStack", "DeleteStack", "DescribeStacks", "GetTemplate"):
        return None
    name = p["StackName"]
    stack = name if name.startswith("arn:") else arn("cloudformation", f"stack/{name}/{uuid.UUID(int=0)}",
                                                     call.region)
    found = [Request(f"cloudformation:{op}", stack)]
    if p.get("RoleARN"):
        found.append(Request("iam:PassRole", p["RoleARN"], {"iam:PassedToService": "cloudformation.amazonaws.com"}))
    return found


def _cloudwatch(call: Call, account: Emulated) -> list[Request] | None:
    if call.operation != "PutMetricData":
        return None
    return [Request("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": call.params["Namespace"]})]


def _glue(call: Call, account: Emulated) -> list[Request] | None:
    p, op = call.params, call.operation
    if op in ("StartJobRun", "GetJobRun"):
        return [Request(f"glue:{op}", arn("glue", f"job/{p['JobName']}", call.region))]
    if op in ("CreateDatabase", "GetDatabase"):
        name = p["DatabaseInput"]["Name"] if op == "CreateDatabase" else p["Name"]
        return [Request(f"glue:{op}", arn("glue", "catalog", call.region)),
                Request(f"glue:{op}", arn("glue", f"database/{name}", call.region))]
    return None


def _lakeformation(call: Call, account: Emulated) -> list[Request] | None:
    """A grant or revoke also needs the Glue resource it names to be readable by the caller (Lake Formation's
    "IAM permissions required to grant or revoke Lake Formation permissions")."""
    if call.operation not in ("GrantPermissions", "RevokePermissions"):
        return None
    found = [Request(f"lakeformation:{call.operation}", "*")]
    resource, catalog = call.params["Resource"], arn("glue", "catalog", call.region)
    if "Database" in resource:
        database = resource["Database"]["Name"]
        found += [Request("glue:GetDatabase", r) for r in (catalog, arn("glue", f"database/{database}", call.region))]
    if "Table" in resource:
        database, table = resource["Table"]["DatabaseName"], resource["Table"].get("Name", "*")
        found += [Request("glue:GetTable", r) for r in (catalog, arn("glue", f"database/{database}", call.region),
                                                       arn("glue", f"table/{database}/{table}", call.region))]
    return found


_HANDLERS = {"sqs": _sqs, "sns": _sns, "dynamodb": _dynamodb, "s3": _s3, "stepfunctions": _states,
             "scheduler": _scheduler, "secretsmanager": _secretsmanager, "cloudformation": _cloudformation,
             "glue": _glue, "lakeformation": _lakeformation, "cloudwatch": _cloudwatch}


def event_source_requests(function: Deployed, account: Emulated) -> list[Request]:
    """What Lambda's SQS poller does with the function's role, for each of its SQS event sources."""
    found = []
    for event in function.properties.get("Events", {}).values():
        if event["Type"] != "SQS":
            continue
        queue = resolved(event["Properties"]["Queue"])
        name = queue.rsplit(":", 1)[-1]
        found += [Request(f"sqs:{action}", queue) for action in ("ReceiveMessage", "DeleteMessage",
                                                                 "GetQueueAttributes")]
        found += account.key_use("Decrypt", "sqs", REGION, account.queue_key(name))
    return found


# -- evaluating a request against a policy -----------------------------------------------------------------------


def allowed(policy: Mapping[str, Any], request: Request) -> bool:
    """Whether an Allow statement of ``policy`` matches ``request`` and no Deny statement does."""
    matching = {statement["Effect"] for statement in statements(policy) if _matches(statement, request)}
    return matching == {"Allow"}


def _matches(statement: Mapping[str, Any], request: Request) -> bool:
    if not any(fnmatch.fnmatchcase(request.action.lower(), a.lower()) for a in as_list(statement["Action"])):
        return False
    if not any(_arn_matches(pattern, request.resource) for pattern in as_list(statement["Resource"])):
        return False
    return all(_condition(operator, key, as_list(values), request.context.get(key))
               for operator, block in statement.get("Condition", {}).items() for key, values in block.items())


def _arn_matches(pattern: str, resource: str) -> bool:
    """IAM's matching: ``*`` and ``?`` within each of the first five segments of an ARN, anything in the rest."""
    if pattern == "*":
        return True
    wanted, given = pattern.split(":", 5), resource.split(":", 5)
    return len(wanted) == len(given) == 6 and all(fnmatch.fnmatchcase(g, w) for w, g in zip(wanted, given,
                                                                                              strict=True))


def _condition(operator: str, key: str, values: list[Any], given: Any) -> bool:
    qualifier, _, test = operator.rpartition(":")
    compare = {"StringEquals": lambda v, g: v == g, "StringLike": lambda v, g: fnmatch.fnmatchcase(g, v),
               "ArnLike": lambda v, g: _arn_matches(v, g), "ArnEquals": lambda v, g: v == g}.get(test)
    assert compare is not None, f"this test cannot evaluate the operator {operator}"
    if qualifier == "ForAllValues":  # every value given is allowed (none given: true)
        return all(any(compare(v, g) for v in values) for g in as_list(given or []))
    if qualifier == "ForAnyValue":
        return any(compare(v, g) for v in values for g in as_list(given or []))
    assert not qualifier, f"this test cannot evaluate the operator {operator}"
    return given is not None and not isinstance(given, list) and any(compare(v, given) for v in values)


def test_the_evaluation_refuses_what_a_policy_does_not_allow() -> None:
    policy = {"Statement": [
        {"Sid": "A", "Effect": "Allow", "Action": ["dynamodb:GetItem"],
         "Resource": f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/amci-local-report-records",
         "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["ads_reporting"]}}},
        {"Sid": "K", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": "*",
         "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/amci-local"},
                       "StringEquals": {"kms:ViaService": [f"sqs.{REGION}.amazonaws.com"]}}}]}
    table = arn("dynamodb", "table/amci-local-report-records")

    assert allowed(policy, Request("dynamodb:GetItem", table, {"dynamodb:LeadingKeys": ["ads_reporting"]}))
    assert not allowed(policy, Request("dynamodb:GetItem", table, {"dynamodb:LeadingKeys": ["sp_reporting"]}))
    assert not allowed(policy, Request("dynamodb:PutItem", table, {"dynamodb:LeadingKeys": ["ads_reporting"]}))
    assert not allowed(policy, Request("dynamodb:GetItem", arn("dynamodb", "table/amci-local-report-records2")))
    assert not allowed(policy, Request("dynamodb:GetItem", arn("dynamodb", "table/amci-local-report-records",
                                                               account="210987654321")))
    key = arn("kms", "key/1234")
    via = {"kms:ViaService": f"sqs.{REGION}.amazonaws.com", "kms:ResourceAliases": ["alias/amci-local"]}
    assert allowed(policy, Request("kms:Decrypt", key, via))
    assert not allowed(policy, Request("kms:Decrypt", key, {**via, "kms:ViaService": f"s3.{REGION}.amazonaws.com"}))
    assert not allowed(policy, Request("kms:Decrypt", key, {**via, "kms:ResourceAliases": []}))
    assert not allowed(policy, Request("kms:GenerateDataKey", key, via))


def test_a_missing_permission_is_found_in_the_calls_a_function_makes(deployed: dict[str, Deployed],
                                                                    cloud: LocalCloud) -> None:
    # The report download's policy without its S3 statement: the copy of a report would be refused.
    download = deployed[f"amci-ads-reporting-{STAGE}-report_download"]
    policy = copy.deepcopy(dict(download.policy))
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "WriteReportFiles"]
    bucket = f"amci-{STAGE}-reports-{ACCOUNT_ID}-{REGION}"
    call = Call(download.name, "s3", "PutObject", REGION, {"Bucket": bucket, "Key": "adtech/ads_report/t/x.json.gz"})

    requests = iam_requests(call, Emulated())

    assert requests is not None and all(allowed(download.policy, r) for r in requests)
    assert [r.action for r in requests if not allowed(policy, r)] == ["s3:PutObject"]
