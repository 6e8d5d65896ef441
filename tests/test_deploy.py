"""``amci deploy`` and ``amci destroy`` against the emulated account, with a stage of their own.

The stacks go through moto's own CloudFormation, as a deploy to AWS goes through AWS's: the local cloud's completion
of stacks (``local/cloudformation.py``) knows only the types tenant stacks use, so it is set aside for this module.
moto's CloudFormation then creates what it supports (KMS keys, topics, queues, buckets and their encryption, tables,
roles, rules, state machines, Lambda functions, event source mappings and permissions, dashboards) and skips silently
what it does not: Glue databases, secrets, Lake Formation locations, schedule groups, bucket and queue policies,
a state machine's ``DefinitionS3Location`` (its definition stays empty), and bucket settings other than encryption.
Neither has it CloudWatch alarms, AppRegistry applications, attribute groups and their associations, nor Glue jobs,
which the monitoring stack needs (its alarms notify the status topic; ``Fn::GetAtt`` on a skipped application fails
the stack; a skipped Glue job leaves out the platform's output the monitoring stack takes as a parameter): these
types are made here by the local cloud's provisioner (``local/provision.py``, which ``tests/test_monitoring.py``
checks) from the properties moto resolved (:class:`Provisioned`). Five other gaps of moto's are closed here, as
``local/cloudformation.py`` closes others: executing a change set leaves the stack's template, parameters, outputs
and tags as they were before it; a change set that changes only the stack's tags is taken for one without changes,
and an update of the stack's tags only is refused (on AWS both re-tag the stack's resources); a KMS key's policy is
stored as a dict, which fails every later call on the key; and deleting a stack deletes its keys at once, where
CloudFormation schedules their deletion (which a destroy that keeps the data cancels). moto runs each stack
operation at once, so no ``*_IN_PROGRESS`` state is ever waited for, and it fails no resource the way CloudFormation
would (no failed stack to report here).

The apps, templates and state machine definitions are copies (``tmp_path``), so the repository's ``config.json``
files are never written; the apps are packaged offline from the wheelhouse, as in test_packaging.py.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result
from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing as cfn_parsing
from moto.cloudformation.responses import CloudFormationResponse

from amci import deploy as domain
from amci.cli import main
from amci.stages import SERVICES_DIR, config_path, output_variable
from local import provision
from local.cloud import ACCOUNT_ID, LocalCloud
from local.cloudformation import _schedule_key_deletions as schedule_key_deletions
from shared import aws
from shared.config import SERVICES
from tests.support import offline_packaging

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS::")  # moto's skips, listed above
STAGE = "dt" + secrets.token_hex(4)  # 10 characters: a letter, then lowercase letters and digits
MOTO_SKIPS = {"AWS::Glue::Database", "AWS::SecretsManager::Secret", "AWS::LakeFormation::Resource",
              "AWS::Scheduler::ScheduleGroup", "AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy"}
STACKS = [domain.bootstrap_stack(STAGE), domain.platform_stack(STAGE)] + [
    domain.app_stack(STAGE, service) for service in SERVICES] + [domain.monitoring_stack(STAGE)]
COMPONENTS = ["bootstrap", "platform", *SERVICES, "monitoring"]  # each stack's amci:component tag


class Provisioned:
    """A resource of a type moto's CloudFormation has no model for, made by the local cloud's provisioner, with the
    attributes it returns for ``Ref`` and ``Fn::GetAtt``. Its undo is deleting alarms and Glue jobs; moto's AppRegistry
    deletes nothing (no call to), so an application stays in the emulated account after its stack."""

    TYPES = ("AWS::CloudWatch::Alarm", "AWS::Glue::Job", *(f"AWS::ServiceCatalogAppRegistry::{kind}" for kind in (
        "Application", "AttributeGroup", "AttributeGroupAssociation", "ResourceAssociation")))
    UNDO: dict[str, Callable[[str], Any]] = {
        "AWS::CloudWatch::Alarm": lambda name: aws.client("cloudwatch").delete_alarms(AlarmNames=[name]),
        "AWS::Glue::Job": lambda name: aws.client("glue").delete_job(JobName=name)}

    def __init__(self, kind: str, attributes: dict[str, Any]) -> None:
        self.kind, self.attributes = kind, attributes

    @property
    def physical_resource_id(self) -> str:
        return str(self.attributes["Ref"])

    def get_cfn_attribute(self, name: str) -> Any:
        return self.attributes[name]

    def delete(self, account_id: str, region_name: str) -> None:
        if self.kind in self.UNDO:
            self.UNDO[self.kind](self.physical_resource_id)

    @classmethod
    def create_from_cloudformation_json(cls, name: str, spec: dict[str, Any], account_id: str, region_name: str,
                                        **kwargs: Any) -> Provisioned:
        kind = kwargs["ResourceType"]
        return cls(kind, provision._CREATORS[kind](name, spec.get("Properties", {}), aws.client))

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: Provisioned, new_resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str) -> Provisioned:
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name,
                                                   ResourceType=original_resource.kind)


# moto's own, each completed below (see the module's docstring)
_MOTO_APPLY = cfn_models.ChangeSet.apply
_MOTO_CREATE_CHANGE_SET = cfn_models.CloudFormationBackend.create_change_set
_MOTO_VALIDATE_UPDATE = CloudFormationResponse._validate_different_update
_MOTO_DELETE_STACK = cfn_models.CloudFormationBackend.delete_stack


def _apply(change_set: Any) -> None:
    _MOTO_APPLY(change_set)
    stack = change_set.stack
    stack.template = change_set.template
    stack._parse_template()
    stack.parameters = change_set.parameters
    stack.output_map = stack._create_output_map()
    if change_set.tags:  # a change set without tags keeps the stack's
        stack.tags = change_set.tags
    for resource in stack.resource_map._parsed_resources.values():
        if type(resource).__name__ == "Key" and isinstance(getattr(resource, "policy", None), dict):
            resource.policy = json.dumps(resource.policy)


def _create_change_set(backend: Any, *args: Any, **kwargs: Any) -> tuple[str, str]:
    change_set_id, stack_id = _MOTO_CREATE_CHANGE_SET(backend, *args, **kwargs)
    change_set = backend.change_sets[change_set_id]
    if change_set.status == "FAILED" and change_set.tags and change_set.tags != change_set.stack.tags:
        change_set.status, change_set.execution_status, change_set.status_reason = "CREATE_COMPLETE", "AVAILABLE", None
    return change_set_id, stack_id


def _validate_update(response: Any, incoming: Any, body: str, stack: Any) -> None:
    tags = {t["Key"]: t["Value"] for t in response._get_param("Tags", [])}
    if not tags or tags == stack.tags:
        _MOTO_VALIDATE_UPDATE(response, incoming, body, stack)


def _delete_stack(backend: Any, name_or_stack_id: str) -> None:
    stack = next((s for s in backend.stacks.values() if name_or_stack_id in (s.name, s.stack_id)), None)
    if stack is not None:
        schedule_key_deletions(stack, stack.template_dict["Resources"])
    _MOTO_DELETE_STACK(backend, name_or_stack_id)


@pytest.fixture(scope="module")
def moto_cloudformation(cloud: LocalCloud) -> Iterator[None]:
    """moto's CloudFormation as it is, its gaps closed and its missing types provisioned (module docstring)."""
    cloud.cloudformation.uninstall()
    try:
        with pytest.MonkeyPatch.context() as patch:  # undone before the local cloud's own patch is back
            patch.setattr(cfn_models.ChangeSet, "apply", _apply)
            patch.setattr(cfn_models.CloudFormationBackend, "create_change_set", _create_change_set)
            patch.setattr(CloudFormationResponse, "_validate_different_update", _validate_update)
            patch.setattr(cfn_models.CloudFormationBackend, "delete_stack", _delete_stack)
            for kind in Provisioned.TYPES:
                patch.setitem(cfn_parsing.get_model_map(), kind, Provisioned)
            yield
    finally:
        cloud.cloudformation.install()


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> domain.Sources:
    """Copies of the apps (with their cached dependency zips) and of infra/; the shared library as it is."""
    root = tmp_path_factory.mktemp("deploy")
    shutil.copytree(SERVICES_DIR, root / "services", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(domain.SOURCES.infra, root / "infra")
    return domain.Sources(root / "infra", root / "services", domain.SOURCES.shared)


@pytest.fixture(scope="module")
def stage(moto_cloudformation: None, sources: domain.Sources,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Result]]:
    """``amci COMMAND --stage <this module's>`` in this process: offline packaging, the copies as sources;
    whatever is left of the stage at the end (a test failed half-way) is deleted, data included."""
    out = tmp_path_factory.mktemp("packages")
    with offline_packaging() as patch:
        patch.setattr(domain, "SOURCES", sources)

        def run(command: str, *args: str, input: str | None = None) -> Result:
            extra = ["--out", str(out)] if command == "deploy" and "--dry-run" not in args else []
            return CliRunner().invoke(main, [command, "--stage", STAGE, *extra, *args], input=input,
                                      catch_exceptions=False, env={"COLUMNS": "200", "AMCI_STAGE": None})

        yield run
        domain.destroy(boto3.Session(), STAGE, delete_data=True, sources=sources)


@pytest.fixture(scope="module")
def deployed(stage: Callable[..., Result]) -> dict[str, Any]:
    result = stage("deploy", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_deploy_creates_the_bootstrap_the_platform_a_stack_per_app_and_the_monitoring(
        deployed: dict[str, Any]) -> None:
    assert [(s["stack"], s["status"]) for s in deployed["stacks"]] == [(name, "CREATE_COMPLETE") for name in STACKS]
    cfn = aws.client("cloudformation")
    described = {name: cfn.describe_stacks(StackName=name)["Stacks"][0] for name in STACKS}
    assert {name: stack["StackStatus"] for name, stack in described.items()} == dict.fromkeys(STACKS, "CREATE_COMPLETE")
    assert [_tags(name) for name in STACKS] == [
        {"amci:stage": STAGE, "amci:component": component} for component in COMPONENTS]
    parameters = _parameters(domain.platform_stack(STAGE))
    bucket = f"amci-{STAGE}-artifacts-{ACCOUNT_ID}-us-east-1"  # the name the apps' policies expect
    assert parameters["ArtifactBucket"] == deployed["artifactBucket"] == bucket
    assert parameters["ArtifactPrefix"] == deployed["artifactPrefix"]
    s3 = aws.client("s3")
    for name in ("statemachines/report.asl.json", "glue/stage_b.py", "glue/convert.py", "glue/shared.zip",
                 "glue/lake_transforms.zip"):
        folder, file = name.split("/")
        s3.head_object(Bucket=deployed["artifactBucket"], Key=f"{folder}/{deployed['artifactPrefix']}{file}")


def test_the_roles_that_create_the_lakes_databases_may_create_them_in_lake_formation(
        deployed: dict[str, Any], cloud: LocalCloud) -> None:
    held = aws.client("lakeformation").list_permissions(Resource={"Catalog": {}})["PrincipalResourcePermissions"]
    creators = sorted(g["Principal"]["DataLakePrincipalIdentifier"] for g in held
                      if "CREATE_DATABASE" in g["Permissions"] and f"/amci-{STAGE}-" in g["Principal"][
                          "DataLakePrincipalIdentifier"])

    tenant_databases = _functions(cloud)[f"amci-tenant-{STAGE}-onboarding_register"]["Role"]  # by its policy
    assert creators == sorted([deployed["outputs"]["StageBJobRoleArn"], tenant_databases])


def test_every_function_is_named_as_its_state_machines_call_it_with_the_outputs_recorded(
        deployed: dict[str, Any], sources: domain.Sources, cloud: LocalCloud) -> None:
    functions = _functions(cloud)
    outputs = deployed["outputs"]
    recorded = {output_variable(name): value for name, value in outputs.items()}
    for service in SERVICES:
        config = json.loads(config_path(service, sources.services).read_text())
        variables = config["stages"][STAGE]["environment_variables"]
        assert variables["STAGE"] == STAGE and variables["STATUS_TOPIC_ARN"] == outputs["StatusTopicArn"]
        assert {k: v for k, v in variables.items() if k in recorded} == {k: recorded[k] for k in variables
                                                                        if k in recorded}
        assert set(variables) - set(recorded) <= {"STAGE", "LOG_LEVEL"} | _skipped_outputs(sources)
        mine = {name: f for name, f in functions.items() if name.startswith(f"{config['app_name']}-{STAGE}-")}
        assert len(mine) >= 6, service
        for name, function in mine.items():
            assert function["Environment"]["Variables"] == variables, name
            assert function["Runtime"] == "python3.11"
        # the repository's own configuration was not touched
        assert STAGE not in json.loads(config_path(service).read_text())["stages"]
    for task in ("tenant-{}-onboarding_deploy", "workflow-{}-execution_poll", "ads-reporting-{}-report_download",
                 "sp-reporting-{}-report_finish", "datalake-{}-diagnostics_probe", "datalake-{}-notify"):
        assert "amci-" + task.format(STAGE) in functions
    assert functions[f"amci-datalake-{STAGE}-on_stage_a"]["Timeout"] == 300  # the function's own settings


def test_every_sqs_mapping_reports_batch_item_failures(deployed: dict[str, Any], cloud: LocalCloud) -> None:
    mappings = {m["FunctionArn"].rsplit(":", 1)[1]: m
                for m in _lambda(cloud).list_event_source_mappings()["EventSourceMappings"]
                if f"-{STAGE}-" in m["FunctionArn"]}
    expected = {f"amci-{s.replace('_', '-')}-{STAGE}-on_request": f"amci-{STAGE}-{s.replace('_', '-')}-requests"
                for s in SERVICES}
    expected |= {f"amci-datalake-{STAGE}-on_object_event": f"amci-{STAGE}-datalake-object-events",
                 f"amci-datalake-{STAGE}-on_stage_a": f"amci-{STAGE}-datalake-stage-a"}
    assert {name: m["EventSourceArn"].rsplit(":", 1)[1] for name, m in mappings.items()} == expected
    assert all(m["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for m in mappings.values())
    assert mappings[f"amci-datalake-{STAGE}-on_stage_a"]["BatchSize"] == 1
    for queue in expected.values():
        aws.client("sqs").get_queue_url(QueueName=queue)  # the platform stack's queue


def test_the_scheduled_function_has_its_rule_and_may_be_invoked_by_it(deployed: dict[str, Any],
                                                                    cloud: LocalCloud) -> None:
    function = _functions(cloud)[f"amci-datalake-{STAGE}-stage_b_batches"]
    events = aws.client("events")
    rules = events.list_rule_names_by_target(TargetArn=function["FunctionArn"])["RuleNames"]
    assert len(rules) == 1
    rule = events.describe_rule(Name=rules[0])
    assert (rule["ScheduleExpression"], rule["State"]) == ("rate(1 minute)", "ENABLED")
    policy = json.loads(_lambda(cloud).get_policy(FunctionName=function["FunctionName"])["Policy"])
    assert [s["Principal"] for s in policy["Statement"]] == [{"Service": "events.amazonaws.com"}]


def test_the_monitoring_stack_alarms_to_the_status_topic_and_groups_the_stacks(deployed: dict[str, Any]) -> None:
    topic = deployed["outputs"]["StatusTopicArn"]
    cloudwatch = aws.client("cloudwatch")
    body = json.loads(cloudwatch.get_dashboard(DashboardName=f"amci-{STAGE}")["DashboardBody"])
    alarms = cloudwatch.describe_alarms(AlarmNamePrefix=f"amci-{STAGE}-")["MetricAlarms"]
    assert len(alarms) == 8 + 3 * len(SERVICES)  # a dead-letter queue's each; an app's errors, throttles, failures
    assert {(tuple(a["AlarmActions"]), tuple(a["OKActions"])) for a in alarms} == {((topic,), (topic,))}
    (widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert sorted(widget["properties"]["alarms"]) == sorted(a["AlarmArn"] for a in alarms)
    associated = aws.client("servicecatalog-appregistry").list_associated_resources(
        application=f"amci-{STAGE}")["resources"]
    assert sorted(r["name"] for r in associated) == sorted(STACKS)
    given = _parameters(domain.monitoring_stack(STAGE))
    assert (given["StatusTopicArn"], given["DatalakeStageBJob"]) == (topic, deployed["outputs"]["DatalakeStageBJob"])


def test_a_second_deploy_without_changes_changes_nothing_and_keeps_the_application_tag(
        deployed: dict[str, Any], stage: Callable[..., Result]) -> None:
    cfn = aws.client("cloudformation")
    application = cfn.describe_stacks(StackName=domain.monitoring_stack(STAGE))["Stacks"][0]["Outputs"]
    (tag,) = [o["OutputValue"] for o in application if o["OutputKey"] == "ApplicationTagValue"]
    for name in STACKS:  # as AppRegistry tags each stack it associates: an update of the stack, its tags only
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        body = cfn.get_template(StackName=name)["TemplateBody"]
        declared = (domain.load_template(body) if isinstance(body, str) else body).get("Parameters", {})
        cfn.update_stack(StackName=name, UsePreviousTemplate=True, Capabilities=list(domain.IAM),
                         Parameters=domain.stack_parameters(declared, {}, stack),  # moto knows no other previous
                         Tags=[*stack["Tags"], {"Key": "awsApplication", "Value": tag}])

    result = stage("deploy", "--json")

    assert result.exit_code == 0, result.output
    again = json.loads(result.stdout)
    assert [(s["stack"], s["status"]) for s in again["stacks"]] == [(name, "NO_CHANGES") for name in STACKS]
    assert [_tags(name) for name in STACKS] == [
        {"amci:stage": STAGE, "amci:component": component, "awsApplication": tag} for component in COMPONENTS]
    assert again["artifactPrefix"] == deployed["artifactPrefix"]  # the same files, the same keys
    assert _change_sets_left() == []


def test_a_changed_definition_is_planned_then_deployed_under_a_new_key(
        deployed: dict[str, Any], stage: Callable[..., Result], sources: domain.Sources) -> None:
    definition = sources.infra / "statemachines" / "diagnostics.asl.json"
    changed = {**json.loads(definition.read_text()), "Comment": f"changed by {__name__}"}
    definition.write_text(json.dumps(changed, indent=2))

    planned = stage("deploy", "--dry-run", "--services", "tenant")
    assert planned.exit_code == 0, planned.output
    assert f"Plan for stage {STAGE}" in planned.stdout and "update" in planned.stdout
    assert _parameters(domain.platform_stack(STAGE))["ArtifactPrefix"] == deployed["artifactPrefix"]  # unchanged
    assert _change_sets_left() == []

    result = stage("deploy", "--services", "tenant", "--json")
    assert result.exit_code == 0, result.output
    updated = json.loads(result.stdout)
    assert [(s["stack"], s["status"]) for s in updated["stacks"]] == [
        (STACKS[0], "NO_CHANGES"), (STACKS[1], "UPDATE_COMPLETE"), (domain.app_stack(STAGE, "tenant"), "NO_CHANGES"),
        (domain.monitoring_stack(STAGE), "UPDATE_COMPLETE")]  # its Version is the artifacts' prefix
    prefix = updated["artifactPrefix"]
    assert prefix != deployed["artifactPrefix"]
    assert _parameters(domain.platform_stack(STAGE))["ArtifactPrefix"] == prefix
    stored = aws.client("s3").get_object(Bucket=deployed["artifactBucket"],
                                         Key=f"statemachines/{prefix}diagnostics.asl.json")["Body"].read()
    assert json.loads(stored) == changed


def test_destroy_asks_first(deployed: dict[str, Any], stage: Callable[..., Result]) -> None:
    result = stage("destroy", input="n\n")

    assert result.exit_code == 1
    assert "the platform's buckets will be kept" in result.output
    assert aws.client("cloudformation").describe_stacks(StackName=STACKS[1])["Stacks"]


def test_destroy_deletes_the_stacks_and_keeps_the_data(deployed: dict[str, Any], stage: Callable[..., Result],
                                                       cloud: LocalCloud) -> None:
    s3 = aws.client("s3")
    outputs = deployed["outputs"]
    s3.put_object(Bucket=outputs["StageBucket"], Key="lake/table/part-0.parquet", Body=b"data")

    result = stage("destroy", "--yes", "--json")

    assert result.exit_code == 0, result.output
    done = json.loads(result.stdout)
    assert {s["stack"]: s["status"] for s in done["results"]} == dict.fromkeys(STACKS, "DELETE_COMPLETE")
    assert [s["status"] for s in done["results"]].count("BUCKETS_RETAINED") == 1
    cfn = aws.client("cloudformation")
    live = {s["StackName"] for s in cfn.list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"}
    assert not live & set(STACKS)
    data = [outputs[name] for name in ("RawBucket", "ReportsBucket", "StageBucket", "AccessLogsBucket")]
    assert sorted(done["kept"]) == sorted(data)
    assert s3.get_object(Bucket=outputs["StageBucket"], Key="lake/table/part-0.parquet")["Body"].read() == b"data"
    assert done["kept_key"] and aws.client("kms").describe_key(KeyId=done["kept_key"])["KeyMetadata"]["Enabled"]
    assert not domain.bucket_exists(s3, deployed["artifactBucket"])
    assert not [name for name in _functions(cloud) if f"-{STAGE}-" in name]


def test_destroy_with_delete_data_deletes_the_kept_buckets(deployed: dict[str, Any],
                                                           stage: Callable[..., Result]) -> None:
    result = stage("destroy", "--yes", "--delete-data")

    assert result.exit_code == 0, result.output
    for name in ("RawBucket", "ReportsBucket", "StageBucket", "AccessLogsBucket"):
        assert f"deleted: s3://{deployed['outputs'][name]}" in result.output
        assert not domain.bucket_exists(aws.client("s3"), deployed["outputs"][name])


def test_a_bucket_that_receives_a_late_access_log_is_emptied_again_and_deleted(cloud: LocalCloud) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")  # its own, for the delivery below
    bucket = f"amci-{STAGE}-late-logs"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="raw/2026-01-01-00-00-00-EARLY", Body=b"log")
    delivered = []

    def deliver_late(**_: Any) -> None:  # S3 delivering a log between the emptying and the delete
        if len(delivered) < 2:
            delivered.append(aws.client("s3").put_object(Bucket=bucket, Key=f"raw/LATE-{len(delivered)}", Body=b"log"))

    s3.meta.events.register("before-call.s3.DeleteBucket", deliver_late)
    domain.delete_bucket(s3, bucket, wait_s=0)

    assert len(delivered) == 2 and not domain.bucket_exists(s3, bucket)  # two refusals, then deleted
    gone = f"amci-{STAGE}-late-forever"
    s3.create_bucket(Bucket=gone)

    def deliver_always(**_: Any) -> None:  # a handler's answer would be taken for S3's
        aws.client("s3").put_object(Bucket=gone, Key="LATE", Body=b"log")

    s3.meta.events.register("before-call.s3.DeleteBucket", deliver_always)
    with pytest.raises(domain.DeployError, match=f"s3://{gone} received objects each time it was emptied"):
        domain.delete_bucket(s3, gone, attempts=3, wait_s=0)
    domain.delete_bucket(aws.client("s3"), gone)  # once deliveries stop


@pytest.mark.parametrize(("args", "message"), [
    ((), "Which stage?"),
    (("--stage", "local"), "the local cloud's"),
    (("--stage", "Prod_1"), "lowercase letters and digits"),
    (("--stage", "dtx", "--services", "tenant,billing"), "unknown billing"),
    (("--stage", "dtx", "--param", "ArtifactPrefix=x/"), "set by the deploy itself"),
    (("--stage", "dtx", "--param", "NotifyEmail=ops@example.com"), "not a parameter of infra/platform.yaml"),
])
def test_a_deploy_used_wrongly_exits_2_and_says_why(amci: Callable[..., Result], args: tuple[str, ...],
                                                     message: str) -> None:
    result = amci("deploy", *args, env={"AMCI_STAGE": None})

    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_an_artifact_prefix_names_the_content_of_every_file(sources: domain.Sources) -> None:
    artifacts = domain.platform_artifacts(sources)
    assert domain.platform_artifacts(sources).prefix == artifacts.prefix  # shared.zip is built the same each time
    for name in artifacts.files:
        changed = domain.Artifacts({**artifacts.files, name: artifacts.files[name] + b"\n"})
        assert changed.prefix != artifacts.prefix, name
    assert set(artifacts.keys()) == {f"{n.split('/')[0]}/{artifacts.prefix}{n.split('/')[1]}" for n in artifacts.files}


def _skipped_outputs(sources: domain.Sources) -> set[str]:
    """The variables of the platform's outputs that moto leaves out: those of resources it skips."""
    template = domain.load_template((sources.infra / "platform.yaml").read_text())
    return {output_variable(name) for name, output in template["Outputs"].items()
            if isinstance(output["Value"], dict) and template["Resources"].get(output["Value"].get("Ref"), {}).get(
                "Type") in MOTO_SKIPS}


def _change_sets_left() -> list[str]:
    """Change sets neither executed nor deleted (moto lists executed ones, AWS does not)."""
    cfn = aws.client("cloudformation")
    return [s["ChangeSetName"] for name in STACKS for s in cfn.list_change_sets(StackName=name)["Summaries"]
            if s["ExecutionStatus"] != "EXECUTE_COMPLETE"]


def _tags(stack: str) -> dict[str, str]:
    described = aws.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {t["Key"]: t["Value"] for t in described["Tags"]}


def _parameters(stack: str) -> dict[str, str]:
    described = aws.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}


def _lambda(cloud: LocalCloud) -> Any:
    """Lambda as moto knows it: in the local cloud, this process's Lambda calls go to the apps, not to moto."""
    return boto3.client("lambda", endpoint_url=cloud.aws_endpoint_url, region_name="us-east-1")


def _functions(cloud: LocalCloud) -> dict[str, dict[str, Any]]:
    pages = _lambda(cloud).get_paginator("list_functions").paginate()
    return {f["FunctionName"]: f for page in pages for f in page["Functions"]}


def test_the_monitoring_stack_gets_every_parameter_from_the_platform_outputs(cloud: LocalCloud) -> None:
    template = domain.Template((domain.SOURCES.infra / "monitoring.yaml").read_text())

    parameters = domain.monitoring_parameters(template, "prod", "0a1b2c/", cloud.outputs)

    assert set(parameters) == set(template.parameters)
    assert (parameters["Stage"], parameters["Version"]) == ("prod", "0a1b2c")
    assert parameters["StatusTopicArn"] == cloud.outputs["StatusTopicArn"]
