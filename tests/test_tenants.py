"""The Tenant Provisioning Service through the real path: requests on its queue, the onboarding state machine,
CloudFormation stacks, the buckets' events reaching the data lake, the records every service reads."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from amci.inbox import Inbox
from local.cloud import ACCOUNT_ID, LocalCloud
from shared import aws
from tests.support import AMC_ACCOUNT, analyst_grants, answer, ask, queue_idle, send, wait_until
from tests.support import customer_details as _details  # short: every test here writes several


def _tenant_id() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def _ledger_has(cloud: LocalCloud, bucket: str, key: str) -> bool:
    items = aws.table(cloud.outputs["DatalakeObjectsTable"]).scan()["Items"]
    return any(item["bucket"] == bucket and item["key"] == key for item in items)


def _record(cloud: LocalCloud, table: str, key: dict[str, str]) -> dict[str, Any] | None:
    return aws.table(cloud.outputs[table]).get_item(Key=key).get("Item")


def _stack_operations(name: str) -> list[str]:
    events = aws.client("cloudformation").describe_stack_events(StackName=name)["StackEvents"]
    return [e["ResourceStatus"] for e in events
            if e["LogicalResourceId"] == name and e["ResourceStatus"].endswith("_IN_PROGRESS")]


def test_a_new_bucket_is_created_wired_to_the_lake_and_registered(cloud: LocalCloud, inbox: Inbox) -> None:
    tenant = _tenant_id()
    bucket = f"amc-{tenant}-results"

    note = answer(inbox, send(cloud, "tenant", {"customer_details": _details(tenant)}))

    assert note.attributes == {"tenantId": tenant, "service": "tenant", "requestType": "addTenant",
                               "status": "SUCCEEDED"}, note.body
    s3 = aws.client("s3")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]["BlockPublicPolicy"]
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    delivery = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"][0]
    assert delivery["Principal"] == {"AWS": f"arn:aws:iam::{AMC_ACCOUNT}:root"}
    assert s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"]["TargetBucket"] == cloud.outputs[
        "AccessLogsBucket"]
    key = "workflow=top-campaigns/schedule=adhoc/2026-11-27T00:00:00.000Z-top-campaigns.csv"
    s3.put_object(Bucket=bucket, Key=key, Body=b"campaign,impressions\nA,1\n")
    wait_until(lambda: _ledger_has(cloud, bucket, key))
    assert _record(cloud, "TenantsTable", {"customerId": tenant})["status"] == "ACTIVE"
    assert _record(cloud, "WorkflowTenantsTable", {"customerId": tenant})["amcInstanceId"] == "amcdemo0001"
    assert _record(cloud, "DatalakeTenantsTable", {"bucket": bucket})["customerId"] == tenant
    database = aws.client("glue").get_database(Name=f"amci_local_{tenant}")["Database"]["Name"]
    grants = aws.client("lakeformation").list_permissions(Resource={"Database": {"Name": database}})
    assert sorted((g["Principal"]["DataLakePrincipalIdentifier"], sorted(g["Permissions"]))
                  for g in grants["PrincipalResourcePermissions"]) == sorted([
        (cloud.outputs["AnalystRoleArn"], ["DESCRIBE"]),
        (cloud.outputs["StageBJobRoleArn"], ["ALTER", "CREATE_TABLE", "DESCRIBE"])])  # stage B writes its tables


def test_an_existing_bucket_gets_what_the_lake_needs_and_keeps_what_it_had(cloud: LocalCloud, inbox: Inbox) -> None:
    tenant, s3 = _tenant_id(), aws.client("s3")
    bucket = f"amc-{tenant}-existing"
    s3.create_bucket(Bucket=bucket)  # no EventBridge notifications: AWS Solution issue #10
    kept = {"Sid": "TheirOwn", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"},
            "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [kept]}))

    note = answer(inbox, send(cloud, "tenant", {"customer_details": _details(
        tenant, bucket_exists="true", amc={"bucket_name": bucket})}))

    assert note.attributes["status"] == "SUCCEEDED", note.body
    sids = [s["Sid"] for s in json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]]
    assert sids == ["TheirOwn", "AmciAmcDelivery"]
    s3.put_object(Bucket=bucket, Key="workflow=w/schedule=adhoc/x.csv", Body=b"a\n1\n")
    wait_until(lambda: _ledger_has(cloud, bucket, "workflow=w/schedule=adhoc/x.csv"))


def test_a_bucket_of_another_account_gets_a_template_for_its_owner(cloud: LocalCloud, inbox: Inbox,
                                                                   tmp_path: Path) -> None:
    tenant = _tenant_id()

    note = answer(inbox, send(cloud, "tenant", {"customer_details": _details(
        tenant, bucket_exists="true", bucket_account="444455556666", amc={"bucket_name": f"amc-{tenant}-theirs"})}))

    assert note.attributes["status"] == "SUCCEEDED", note.body
    location = note.body["details"]["bucketOwnerTemplate"]
    assert location in note.body["summary"]
    bucket, key = location.removeprefix("s3://").split("/", 1)
    template = json.loads(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    rule = template["Resources"]["ForwardRule"]["Properties"]
    assert rule["EventPattern"]["detail"]["bucket"]["name"] == [f"amc-{tenant}-theirs"]
    assert rule["Targets"][0]["Arn"] == f"arn:aws:events:us-east-1:{ACCOUNT_ID}:event-bus/default"
    reads = json.loads(template["Outputs"]["DataLakeReadStatement"]["Value"])
    assert reads["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"} and "s3:GetObject" in reads["Action"]
    assert note.body["details"]["bucketOwnerTemplateBody"] == template
    bus = json.loads(aws.client("events").describe_event_bus(Name="default")["Policy"])
    granted = next(s for s in bus["Statement"] if s["Sid"] == f"amci-local-tenant-{tenant}")
    assert granted["Condition"] == {"StringEquals": {"events:source": "aws.s3"}}
    written = tmp_path / "bucket-owner.json"
    written.write_text(json.dumps(template))
    lint = subprocess.run([str(Path(sys.executable).with_name("cfn-lint")), str(written)], capture_output=True,
                          text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_re_adding_updates_in_place_and_a_redelivered_request_makes_one_stack_operation(
        cloud: LocalCloud, inbox: Inbox) -> None:
    tenant = _tenant_id()
    request_id = send(cloud, "tenant", {"customer_details": _details(tenant)})
    send(cloud, "tenant", {"customer_details": _details(tenant), "requestId": request_id})  # redelivered
    assert answer(inbox, request_id).attributes["status"] == "SUCCEEDED"

    update_id = send(cloud, "tenant", {"requestType": "updateTenant", "customer_details": _details(
        tenant, customer_name="Renamed", notification_email=f"{tenant}@example.com")})

    updated = answer(inbox, update_id)
    assert updated.attributes["status"] == "SUCCEEDED", updated.body["summary"]
    record = _record(cloud, "TenantsTable", {"customerId": tenant})
    assert (record["customerName"], record["notificationEmail"]) == ("Renamed", f"{tenant}@example.com")
    assert _stack_operations(f"amci-local-tenant-{tenant}") == ["CREATE_IN_PROGRESS"]  # unchanged template: no update
    subscription = aws.client("sns").get_subscription_attributes(SubscriptionArn=record["emailSubscriptionArn"])
    assert json.loads(subscription["Attributes"]["FilterPolicy"]) == {"tenantId": [tenant]}


def test_offboarding_removes_the_wiring_and_keeps_the_data(cloud: LocalCloud, inbox: Inbox) -> None:
    tenant, s3 = _tenant_id(), aws.client("s3")
    bucket = f"amc-{tenant}-results"
    assert ask(cloud, inbox, "tenant", {"customer_details": _details(tenant)}).attributes["status"] == "SUCCEEDED"
    s3.put_object(Bucket=bucket, Key="kept.csv", Body=b"a\n")
    aws.client("scheduler").create_schedule_group(Name=f"amci-local-{tenant}")

    first = answer(inbox, send(cloud, "tenant", {"requestType": "offboardTenant", "customer_id": tenant}))
    again = answer(inbox, send(cloud, "tenant", {"requestType": "offboardTenant", "customer_id": tenant}))

    assert first.attributes["status"] == again.attributes["status"] == "SUCCEEDED"
    assert s3.get_object(Bucket=bucket, Key="kept.csv")["Body"].read() == b"a\n"
    assert _record(cloud, "TenantsTable", {"customerId": tenant})["status"] == "OFFBOARDED"
    assert _record(cloud, "WorkflowTenantsTable", {"customerId": tenant}) is None
    assert _record(cloud, "DatalakeTenantsTable", {"bucket": bucket}) is None
    assert aws.client("lakeformation").list_permissions(Resource={"Database": {"Name": f"amci_local_{tenant}"}})[
        "PrincipalResourcePermissions"] == []  # neither the analyst nor stage B reach its database any more
    groups = [g["Name"] for g in aws.client("scheduler").list_schedule_groups()["ScheduleGroups"]]
    assert f"amci-local-{tenant}" not in groups
    stacks = aws.client("cloudformation").list_stacks()["StackSummaries"]
    assert {s["StackStatus"] for s in stacks if s["StackName"] == f"amci-local-tenant-{tenant}"} == {
        "DELETE_COMPLETE"}


def test_the_accounts_data_lake_admins_stay_through_onboarding_landing_and_offboarding(
        cloud: LocalCloud, inbox: Inbox) -> None:
    lakeformation, tenant = aws.client("lakeformation"), _tenant_id()
    before = lakeformation.get_data_lake_settings()["DataLakeSettings"]
    theirs = {"DataLakePrincipalIdentifier": f"arn:aws:iam::{ACCOUNT_ID}:role/their-lake-admin"}
    lakeformation.put_data_lake_settings(DataLakeSettings={**before, "DataLakeAdmins": [theirs]})
    try:
        assert ask(cloud, inbox, "tenant", {"customer_details": _details(tenant)}).attributes["status"] == "SUCCEEDED"
        aws.client("s3").put_object(Bucket=f"amc-{tenant}-results", Body=b"campaign,impressions\nA,1\n",
                                    Key="workflow=top/schedule=adhoc/2026-11-27T00:00:00.000Z-top.csv")
        wait_until(lambda: analyst_grants(cloud, f"amci_local_{tenant}", "top_adhoc"), 60)  # stage B granted on it
        assert answer(inbox, send(cloud, "tenant", {"requestType": "offboardTenant", "customer_id": tenant})
                      ).attributes["status"] == "SUCCEEDED"

        assert lakeformation.get_data_lake_settings()["DataLakeSettings"]["DataLakeAdmins"] == [theirs]
    finally:
        lakeformation.put_data_lake_settings(DataLakeSettings=before)


def test_get_and_list_answer_on_the_status_topic(cloud: LocalCloud, inbox: Inbox) -> None:
    tenant = _tenant_id()
    answer(inbox, send(cloud, "tenant", {"customer_details": _details(tenant)}))

    got = answer(inbox, send(cloud, "tenant", {"requestType": "getTenant", "customer_id": tenant}))
    listed = answer(inbox, send(cloud, "tenant", {"requestType": "listTenants"}))

    assert got.body["details"]["tenant"]["status"] == "ACTIVE"
    assert tenant in [t["customerId"] for t in listed.body["details"]["tenants"]]


INVALID: list[tuple[str, Callable[[str], dict[str, Any]], str]] = [
    ("customer_id", lambda t: _details(t.upper()), "customer_details.customer_id: expected string should match"),
    ("customer_id too long", lambda t: _details(t * 3), "customer_details.customer_id: expected string should match"),
    ("customer_name", lambda t: _details(t, customer_name=""), "customer_details.customer_name: expected string should"
     " have at least 1 character"),
    ("auth_id", lambda t: _details(t, auth_id="a b"), "customer_details.auth_id: expected string should match"),
    ("bucket_exists", lambda t: _details(t, bucket_exists="maybe"), "customer_details.bucket_exists: expected a valid "
     "boolean"),
    ("bucket_account", lambda t: _details(t, bucket_account="12345"), "customer_details.bucket_account: expected "
     "string should match"),
    ("bucket_region", lambda t: _details(t, bucket_region="mars"), "customer_details.bucket_region: expected string "
     "should match"),
    ("bucket_region unknown", lambda t: _details(t, bucket_region="zz-nowhere-9"), "customer_details.bucket_region: "
     "expected an AWS region where CloudFormation runs"),
    ("platform bucket", lambda t: _details(t, bucket_exists="true", amc={"bucket_name": "amci-local-stage-x"}),
     "customer_details.amc.bucket_name: expected an AMC bucket, not one of the platform's own"),
    ("another stage's bucket", lambda t: _details(t, bucket_exists="true", amc={"bucket_name": "amci-prod-raw-x"}),
     "customer_details.amc.bucket_name: expected an AMC bucket, not one of the platform's own"),
    ("notification_email", lambda t: _details(t, notification_email="nobody"), "customer_details.notification_email:"
     " expected string should match"),
    ("aws_orange_account_id", lambda t: _details(t, amc={"aws_orange_account_id": "x"}),
     "customer_details.amc.aws_orange_account_id: expected string should match"),
    ("bucket_name", lambda t: _details(t, amc={"bucket_name": "Bad_Bucket"}),
     "customer_details.amc.bucket_name: expected a valid S3 bucket name"),
    ("bucket_name_ip", lambda t: _details(t, amc={"bucket_name": "192.168.1.1"}),
     "customer_details.amc.bucket_name: expected a valid S3 bucket name"),
    ("instance_id", lambda t: _details(t, amc={"instance_id": "nope"}), "customer_details.amc.instance_id: expected "
     "string should match"),
    ("advertiser_id", lambda t: _details(t, amc={"amazon_ads_advertiser_id": "ENTITY-1"}),
     "customer_details.amc.amazon_ads_advertiser_id: expected string should match"),
    ("marketplace_id", lambda t: _details(t, amc={"amazon_ads_marketplace_id": "NOWHERE"}),
     "customer_details.amc.amazon_ads_marketplace_id: expected an Amazon marketplace id"),
    ("missing amc", lambda t: {k: v for k, v in _details(t).items() if k != "amc"},
     "customer_details.amc: expected a value: the field is required"),
    ("unknown field", lambda t: _details(t, colour="red"), "customer_details.colour: expected no such field"),
    ("reserved customer id", lambda t: {**_details(t), "customer_id": "platform"},
     "customer_details.customer_id: expected a customer id other than 'platform'"),
    ("existing bucket missing", lambda t: _details(t, bucket_exists="true"), "customer_details.amc.bucket_name: "
     "expected an existing bucket of this account"),
    ("new bucket elsewhere", lambda t: _details(t, bucket_account="444455556666"),
     "customer_details.bucket_exists: expected true for a bucket of another account"),
]


@pytest.mark.parametrize(("rule", "details", "expected"), INVALID, ids=[rule for rule, _, _ in INVALID])
def test_each_validation_rule_rejects_with_a_clear_error_and_creates_nothing(
        cloud: LocalCloud, inbox: Inbox, rule: str, details: Callable[[str], dict[str, Any]], expected: str) -> None:
    tenant = _tenant_id()
    body = {"customer_details": details(tenant)}
    sent_as = body["customer_details"].get("customer_id", tenant)

    note = answer(inbox, send(cloud, "tenant", body))

    assert note.attributes["status"] == "REJECTED"
    assert expected in note.body["summary"], note.body["summary"]
    assert _record(cloud, "TenantsTable", {"customerId": sent_as}) is None
    stacks = aws.client("cloudformation").list_stacks()["StackSummaries"]
    assert not [s for s in stacks if tenant in s["StackName"].lower()]


def test_a_bucket_already_used_by_another_tenant_is_refused(cloud: LocalCloud, inbox: Inbox) -> None:
    first, second = _tenant_id(), _tenant_id()
    answer(inbox, send(cloud, "tenant", {"customer_details": _details(first)}))

    note = answer(inbox, send(cloud, "tenant", {"customer_details": _details(
        second, amc={"bucket_name": f"amc-{first}-results"})}))

    assert note.attributes["status"] == "REJECTED"
    assert f"customer_details.amc.bucket_name: expected a bucket no other tenant uses ({first} does)" in \
        note.body["summary"]


def test_updating_a_tenant_that_does_not_exist_is_refused(cloud: LocalCloud, inbox: Inbox) -> None:
    tenant = _tenant_id()

    note = answer(inbox, send(cloud, "tenant", {"requestType": "updateTenant", "customer_details": _details(tenant)}))

    assert note.attributes["status"] == "REJECTED"
    assert "customer_details.customer_id: expected an onboarded tenant" in note.body["summary"]


def test_twenty_tenants_onboard_concurrently(cloud: LocalCloud, inbox: Inbox) -> None:
    tenants = [_tenant_id() for _ in range(20)]
    with ThreadPoolExecutor(8) as pool:
        request_ids = list(pool.map(lambda t: send(cloud, "tenant", {"customer_details": _details(t)}), tenants))

    notes = [answer(inbox, request_id, timeout_s=120) for request_id in request_ids]

    assert [n.attributes["status"] for n in notes] == ["SUCCEEDED"] * 20, [n.body["summary"] for n in notes
                                                                           if n.attributes["status"] != "SUCCEEDED"]
    s3 = aws.client("s3")
    for tenant in tenants:
        s3.put_object(Bucket=f"amc-{tenant}-results", Key="probe.csv", Body=b"a\n")
    for tenant in tenants:
        wait_until(lambda t=tenant: _ledger_has(cloud, f"amc-{t}-results", "probe.csv"))
        assert _record(cloud, "WorkflowTenantsTable", {"customerId": tenant})
        assert _record(cloud, "DatalakeTenantsTable", {"bucket": f"amc-{tenant}-results"})
    stacks = {s["StackName"] for s in aws.client("cloudformation").list_stacks(
        StackStatusFilter=["CREATE_COMPLETE"])["StackSummaries"]}
    assert {f"amci-local-tenant-{t}" for t in tenants} <= stacks


def test_an_existing_bucket_in_another_region_forwards_its_events(cloud: LocalCloud, inbox: Inbox) -> None:
    tenant = _tenant_id()
    bucket = f"amc-{tenant}-west"
    s3_west = aws.client("s3", "us-west-2")
    s3_west.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})

    note = answer(inbox, send(cloud, "tenant", {"customer_details": _details(
        tenant, bucket_exists="true", bucket_region="us-west-2", amc={"bucket_name": bucket})}))

    assert note.attributes["status"] == "SUCCEEDED", note.body
    west = aws.client("cloudformation", "us-west-2").describe_stacks(StackName=f"amci-local-tenant-{tenant}-us-west-2")
    assert west["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    s3_west.put_object(Bucket=bucket, Key="workflow=w/schedule=adhoc/west.csv", Body=b"a\n1\n")
    wait_until(lambda: _ledger_has(cloud, bucket, "workflow=w/schedule=adhoc/west.csv"))


def test_a_request_redelivered_after_onboarding_finished_changes_nothing(cloud: LocalCloud, inbox: Inbox) -> None:
    tenant = _tenant_id()
    request_id = send(cloud, "tenant", {"customer_details": _details(tenant)})
    assert answer(inbox, request_id).attributes["status"] == "SUCCEEDED"

    send(cloud, "tenant", {"customer_details": _details(tenant), "requestId": request_id})
    wait_until(lambda: queue_idle(cloud.request_queue_url("tenant")), timeout_s=20)

    assert _record(cloud, "TenantsTable", {"customerId": tenant})["status"] == "ACTIVE"
    assert _stack_operations(f"amci-local-tenant-{tenant}") == ["CREATE_IN_PROGRESS"]


def test_an_offboarded_tenant_comes_back_with_its_kept_bucket(cloud: LocalCloud, inbox: Inbox) -> None:
    tenant = _tenant_id()
    answer(inbox, send(cloud, "tenant", {"customer_details": _details(tenant)}))
    answer(inbox, send(cloud, "tenant", {"requestType": "offboardTenant", "customer_id": tenant}))

    as_new = answer(inbox, send(cloud, "tenant", {"customer_details": _details(tenant)}))
    as_existing = answer(inbox, send(cloud, "tenant", {"customer_details": _details(tenant, bucket_exists="true")}))

    assert as_new.attributes["status"] == "REJECTED"
    assert "customer_details.bucket_exists: expected true: the bucket exists already" in as_new.body["summary"]
    assert as_existing.attributes["status"] == "SUCCEEDED", as_existing.body["summary"]
    assert _record(cloud, "TenantsTable", {"customerId": tenant})["status"] == "ACTIVE"


def test_moving_to_another_bucket_and_address_releases_the_old_ones(cloud: LocalCloud, inbox: Inbox) -> None:
    tenant = _tenant_id()
    ask(cloud, inbox, "tenant", {"customer_details": _details(tenant, notification_email=f"a-{tenant}@example.com")})
    first = _record(cloud, "TenantsTable", {"customerId": tenant})["emailSubscriptionArn"]

    moved = answer(inbox, send(cloud, "tenant", {"requestType": "updateTenant", "customer_details": _details(
        tenant, notification_email=f"b-{tenant}@example.com", amc={"bucket_name": f"amc-{tenant}-second"})}))

    assert moved.attributes["status"] == "SUCCEEDED", moved.body["summary"]
    assert _record(cloud, "DatalakeTenantsTable", {"bucket": f"amc-{tenant}-results"}) is None
    assert _record(cloud, "DatalakeTenantsTable", {"bucket": f"amc-{tenant}-second"})["customerId"] == tenant
    topic = cloud.outputs["StatusTopicArn"]
    subscribed = {s["Endpoint"] for s in aws.client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]}
    assert f"b-{tenant}@example.com" in subscribed and f"a-{tenant}@example.com" not in subscribed
    assert _record(cloud, "TenantsTable", {"customerId": tenant})["emailSubscriptionArn"] != first
