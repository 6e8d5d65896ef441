"""Deploying a stage to AWS, and taking it down again (README "Deploying to AWS").

A deploy is, in order (DESIGN.md §3.9):

1. the bootstrap stack ``amci-<stage>-bootstrap`` (``infra/bootstrap.yaml``): the artifact bucket;
2. the artifacts the platform stack refers to (state machine definitions, the data lake's Glue job files), uploaded
   under a folder named by their content hash, ``ArtifactPrefix``: a changed file changes the stack's parameters,
   so CloudFormation updates what uses it (under fixed keys it never would);
3. the platform stack ``amci-<stage>`` (``infra/platform.yaml``);
4. its outputs recorded into each app's ``.chalice/config.json`` stage (a new stage is made from ``prod``'s);
5. each app packaged (``amci.package``), its zip uploaded under its content hash, its SAM template turned into plain
   CloudFormation here (``samtranslator``, offline), so that one template deploys to AWS and to moto alike, and
   deployed as the stack ``amci-<stage>-<service>``.

Every stack goes through a change set: one without changes is a success that touches nothing. Templates are uploaded
too (content-keyed, under ``templates/``), as CloudFormation takes at most 51,200 bytes inline.

A destroy deletes the app stacks, then the platform stack, then the bootstrap stack. The platform's buckets are kept
(marked ``DeletionPolicy: Retain`` first, by a change set that changes nothing else) and so is the key their objects
are encrypted with (its deletion, which CloudFormation schedules, cancelled), unless the data is to be deleted too:
then, once the stack is gone, the buckets' access logging is turned off and each is emptied, versions included, and
deleted here rather than by CloudFormation: S3 delivers access logs late, so the access-log bucket can receive
objects after it was emptied, and a bucket delete that finds it not empty empties it again and retries.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import re
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from amci.permissions import as_list
from amci.stages import SERVICES_DIR, config_path, ensure_stage, record_outputs, stack_outputs
from shared.aws import error_code
from shared.config import SERVICES

ROOT = SERVICES_DIR.parent
INLINE_TEMPLATE_LIMIT = 51_200  # bytes CloudFormation takes as TemplateBody
IAM = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM")
STAGE_NAME = re.compile(r"^[a-z][a-z0-9]{1,11}$")  # platform.yaml's Stage parameter
DEPLOY_SETS = frozenset({"Stage", "ArtifactBucket", "ArtifactPrefix"})  # platform parameters the deploy decides
_NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
_NO_STACK = "does not exist"
_FAILED_EVENT = re.compile(r"_FAILED$")


class DeployError(RuntimeError):
    """A stack operation failed; ``reasons`` are CloudFormation's, one per failed resource."""

    def __init__(self, message: str, reasons: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.reasons = list(reasons)


@dataclass(frozen=True)
class Sources:
    """Where a deploy takes its templates, apps and library from (a copy, in tests)."""

    infra: Path = ROOT / "infra"
    services: Path = SERVICES_DIR
    shared: Path = ROOT / "shared"
    transforms: Path = ROOT / "lake_transforms"  # custom datasets' stage A and B (the Glue job imports them)


SOURCES = Sources()


@dataclass(frozen=True)
class Change:
    action: str  # Add, Modify, Remove
    logical_id: str
    resource_type: str
    replacement: str = ""  # True, False, Conditional (Modify only)


@dataclass(frozen=True)
class StackResult:
    stack: str
    status: str  # CloudFormation's final status, NO_CHANGES, or for a plan: CREATE, UPDATE
    seconds: float = 0.0
    changes: tuple[Change, ...] = ()


@dataclass(frozen=True)
class Progress:
    """How a deploy tells where it is: ``status`` for what it waits on now, ``finished`` for each stack done,
    ``warn`` for what the deployer must do by hand."""

    status: Callable[[str], None] = lambda _: None
    finished: Callable[[StackResult], None] = lambda _: None
    warn: Callable[[str], None] = lambda _: None


def bootstrap_stack(stage: str) -> str:
    return f"amci-{stage}-bootstrap"


def platform_stack(stage: str) -> str:
    return f"amci-{stage}"


def app_stack(stage: str, service: str) -> str:
    return f"amci-{stage}-{service.replace('_', '-')}"  # stack names take no underscore


def monitoring_stack(stage: str) -> str:
    return f"amci-{stage}-monitoring"  # infra/monitoring.yaml, deployed after the apps


OWN_TAG_PREFIX = "amci:"  # the stack tags the deploy sets; any other tag of a stack is kept as it is


def stack_tags(stage: str, component: str) -> dict[str, str]:
    """The tags of a stack, which CloudFormation gives every resource of it that takes tags (cost allocation)."""
    return {"amci:stage": stage, "amci:component": component}


# -- templates ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A template as CloudFormation will read it: inline, or from the artifact bucket."""

    body: str
    url: str | None = None

    @cached_property
    def parsed(self) -> dict[str, Any]:
        return load_template(self.body)

    @property
    def parameters(self) -> dict[str, Any]:
        return self.parsed.get("Parameters", {})

    @property
    def resources(self) -> dict[str, Any]:
        return self.parsed["Resources"]

    def location(self) -> dict[str, str]:
        if self.url:
            return {"TemplateURL": self.url}
        if len(self.body.encode()) > INLINE_TEMPLATE_LIMIT:
            raise DeployError(f"a template of {len(self.body.encode())} bytes needs the artifact bucket")
        return {"TemplateBody": self.body}


def load_template(text: str) -> dict[str, Any]:
    """A JSON or YAML template written with long-form intrinsics (``Fn::Sub``, not ``!Sub``), as ours are."""
    return yaml.safe_load(text)


def staged_template(s3: Any, bucket: str | None, body: str) -> Template:
    """``body`` uploaded to the artifact bucket under its content hash (inline only when there is no bucket)."""
    if bucket is None:
        return Template(body)
    key = f"templates/{_digest(body.encode())}.template"
    put_if_absent(s3, bucket, key, body.encode())
    return Template(body, s3_url(s3, bucket, key))


def s3_url(s3: Any, bucket: str, key: str) -> str:
    region = s3.meta.region_name
    return f"https://{bucket}.s3.{region}.amazonaws.com/{key}"


# -- artifacts ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Artifacts:
    """The files the platform stack refers to, by their key under ``ArtifactPrefix`` (``glue/stage_b.py``)."""

    files: Mapping[str, bytes]

    @property
    def prefix(self) -> str:
        """The folder named by the content of every file: ``ArtifactPrefix``."""
        listing = "".join(f"{name}\0{_digest(body)}\n" for name, body in sorted(self.files.items()))
        return _digest(listing.encode())[:16] + "/"

    def keys(self) -> dict[str, bytes]:
        """Each file under its content-keyed key: ``statemachines/<prefix>report.asl.json``."""
        found = {}
        for name, body in self.files.items():
            folder, file = name.split("/", 1)
            found[f"{folder}/{self.prefix}{file}"] = body
        return found


def platform_artifacts(sources: Sources = SOURCES) -> Artifacts:
    files = {f"statemachines/{path.name}": path.read_bytes()
             for path in sorted((sources.infra / "statemachines").glob("*.asl.json"))}
    for script in ("stage_b.py", "convert.py"):
        files[f"glue/{script}"] = (sources.services / "datalake" / "glue" / script).read_bytes()
    files["glue/shared.zip"] = library_zip(sources.shared)
    files["glue/lake_transforms.zip"] = library_zip(sources.transforms)
    return Artifacts(files)


def library_zip(directory: Path) -> bytes:
    """The shared library as Glue's ``--extra-py-files`` takes it; the same files make the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            info = zipfile.ZipInfo(f"{directory.name}/{path.relative_to(directory).as_posix()}", (1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def package_digest(zip_path: Path) -> str:
    """A package's content hash: its files' names, modes and bytes (not the zip's timestamps)."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(zip_path) as archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            digest.update(f"{info.filename}\0{info.external_attr}\0".encode())
            digest.update(hashlib.sha256(archive.read(info)).digest())
    return digest.hexdigest()[:32]


def put_if_absent(s3: Any, bucket: str, key: str, body: bytes) -> bool:
    """Upload a content-keyed object unless it is there already; True when uploaded."""
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return False
    except s3.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
            raise
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return True


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


# -- the apps ----------------------------------------------------------------------------------------------------


def app_template(sam: Mapping[str, Any], code_bucket: str, code_key: str, app_name: str, stage: str,
                 region: str) -> dict[str, Any]:
    """The app's SAM template (``chalice package``'s ``sam.json``) as plain CloudFormation, its code in the
    artifact bucket and each function named as ``chalice deploy`` names it, ``{app}-{stage}-{function}`` (the
    state machines call the task functions by these names)."""
    template = copy.deepcopy(dict(sam))
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            properties = resource["Properties"]
            properties["CodeUri"] = {"Bucket": code_bucket, "Key": code_key}
            name = f"{app_name}-{stage}-{_function_name(logical_id, properties['Handler'])}"
            properties.setdefault("FunctionName", name)
            if len(properties["FunctionName"]) > 64:
                raise DeployError(f"{properties['FunctionName']}: Lambda takes at most 64 characters")
    return to_cloudformation(template, region)


def _function_name(logical_id: str, handler: str) -> str:
    """The Chalice name of the function behind ``logical_id`` (Chalice camel-cases it): the handler's own name
    when it maps back, as it does unless a function was registered under another name."""
    from chalice.utils import to_cfn_resource_name

    for candidate in (handler.rsplit(".", 1)[-1], re.sub(r"(?<!^)(?=[A-Z])", "_", logical_id).lower()):
        if to_cfn_resource_name(candidate) == logical_id:
            return candidate
    raise DeployError(f"{logical_id}: cannot tell its Chalice function name from handler {handler}")


def to_cloudformation(sam: Mapping[str, Any], region: str) -> dict[str, Any]:
    """Apply the SAM transform here, offline: moto has no transforms, and the template CloudFormation gets is the
    one tests check. Chalice gives each function its own role, so no managed policy needs looking up."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    translator = Translator({}, Parser(), boto_session=boto3.session.Session(region_name=region))
    try:
        return translator.translate(copy.deepcopy(dict(sam)), parameter_values={}, get_managed_policy_map=dict)
    finally:
        translator.metrics.publish()  # to nowhere (offline), but published: no warning that it was not


# -- stacks ------------------------------------------------------------------------------------------------------


@dataclass
class Stacks:
    """CloudFormation stacks changed through change sets and waited for, with progress."""

    cfn: Any
    progress: Progress = field(default_factory=Progress)
    poll_s: float = 5.0
    timeout_s: float = 3 * 3600
    role_arn: str | None = None

    def describe(self, name: str) -> dict[str, Any] | None:
        try:
            return self.cfn.describe_stacks(StackName=name)["Stacks"][0]
        except self.cfn.exceptions.ClientError as exc:
            if _NO_STACK in str(exc):
                return None
            raise

    def outputs(self, name: str) -> dict[str, str]:
        stack = self.describe(name)
        return stack_outputs({"Outputs": stack.get("Outputs") or []}) if stack else {}

    def resources(self, name: str) -> list[dict[str, Any]]:
        """The stack's resource summaries, every page."""
        pages = self.cfn.get_paginator("list_stack_resources").paginate(StackName=name)
        return [r for page in pages for r in page["StackResourceSummaries"]]

    def physical_ids(self, name: str) -> dict[str, str]:
        """Each resource's physical id by its logical id."""
        return {r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for r in self.resources(name)}

    def deploy(self, name: str, template: Template, parameters: Mapping[str, str] | None = None,
               capabilities: Sequence[str] = (), tags: Mapping[str, str] | None = None) -> StackResult:
        """Create or update ``name``; a change set without changes is a success (``NO_CHANGES``). ``tags``:
        the stack's (None keeps those it has)."""
        started = time.monotonic()
        existing = self._ready(name)
        change_set = self._change_set(name, template, parameters or {}, capabilities, existing, tags)
        if change_set is None:
            return self._finished(StackResult(name, "NO_CHANGES", time.monotonic() - started))
        self.cfn.execute_change_set(ChangeSetName=change_set["ChangeSetId"])
        status = self._wait(name, change_set["StackId"], started)
        if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            raise DeployError(f"{name}: {status}", self.failures(change_set["StackId"], started))
        return self._finished(StackResult(name, status, time.monotonic() - started, _changes(change_set)))

    def plan(self, name: str, template: Template, parameters: Mapping[str, str] | None = None,
             capabilities: Sequence[str] = (), tags: Mapping[str, str] | None = None) -> StackResult:
        """What :meth:`deploy` would change, from a change set that is deleted again (a stack that does not exist
        yet is not asked about: every resource of its template would be added)."""
        existing = self.describe(name)
        if existing is None or existing["StackStatus"] in ("REVIEW_IN_PROGRESS", "ROLLBACK_COMPLETE"):
            added = tuple(Change("Add", lid, spec["Type"]) for lid, spec in template.resources.items())
            return StackResult(name, "CREATE", changes=added)
        change_set = self._change_set(name, template, parameters or {}, capabilities, existing, tags)
        if change_set is None:
            return StackResult(name, "NO_CHANGES")
        self.cfn.delete_change_set(ChangeSetName=change_set["ChangeSetId"])
        return StackResult(name, "UPDATE", changes=_changes(change_set))

    def delete(self, name: str) -> StackResult:
        started = time.monotonic()
        existing = self.describe(name)
        if existing is None:
            return self._finished(StackResult(name, "ABSENT"))
        self.cfn.delete_stack(StackName=existing["StackId"], **({"RoleARN": self.role_arn} if self.role_arn else {}))
        status = self._wait(name, existing["StackId"], started)
        if status != "DELETE_COMPLETE":
            raise DeployError(f"{name}: {status}", self.failures(existing["StackId"], started))
        return self._finished(StackResult(name, status, time.monotonic() - started))

    def failures(self, stack_id: str, since: float) -> list[str]:
        """Why resources failed, oldest first, as CloudFormation's events tell."""
        cutoff = time.time() - (time.monotonic() - since) - 60
        events = []
        for page in self.cfn.get_paginator("describe_stack_events").paginate(StackName=stack_id):
            events += [e for e in page["StackEvents"] if e["Timestamp"].timestamp() >= cutoff]
        failed = [e for e in reversed(events) if _FAILED_EVENT.search(e["ResourceStatus"])]
        return [f"{e['LogicalResourceId']} ({e['ResourceType']}): {e.get('ResourceStatusReason', '')}"
                for e in failed] or ["CloudFormation gave no reason: see the stack's events"]

    def _finished(self, result: StackResult) -> StackResult:
        self.progress.finished(result)
        return result

    def _ready(self, name: str) -> dict[str, Any] | None:
        """The stack as it can be changed now: waits out an operation in progress, and deletes what is left of a
        creation that failed or was never executed (CloudFormation updates neither)."""
        existing = self.describe(name)
        if existing and existing["StackStatus"].endswith("_IN_PROGRESS") and \
                existing["StackStatus"] != "REVIEW_IN_PROGRESS":
            self._wait(name, existing["StackId"], time.monotonic())
            existing = self.describe(name)
        if existing and existing["StackStatus"] in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "REVIEW_IN_PROGRESS"):
            self.progress.status(f"{name}: deleting what is left of a failed creation ({existing['StackStatus']})")
            self.cfn.delete_stack(StackName=existing["StackId"])
            self._wait(name, existing["StackId"], time.monotonic())
            existing = None
        return existing

    def _change_set(self, name: str, template: Template, parameters: Mapping[str, str],
                    capabilities: Sequence[str], existing: dict[str, Any] | None,
                    tags: Mapping[str, str] | None = None) -> dict[str, Any] | None:
        """A change set ready to execute, or None when it would change nothing."""
        args: dict[str, Any] = {
            "StackName": name, "ChangeSetName": f"amci-{uuid.uuid4().hex[:12]}",
            "ChangeSetType": "UPDATE" if existing else "CREATE", "Capabilities": list(capabilities),
            "Parameters": stack_parameters(template.parameters, parameters, existing), **template.location()}
        if self.role_arn:
            args["RoleARN"] = self.role_arn
        if tags is not None:
            args["Tags"] = [{"Key": key, "Value": value} for key, value in sent_tags(tags, existing).items()]
        self.progress.status(f"{name}: creating a change set")
        try:
            created = self.cfn.create_change_set(**args)
        except self.cfn.exceptions.ClientError as exc:
            if any(text in str(exc) for text in _NO_CHANGES):
                return None
            raise
        described = self._wait_for_change_set(name, created["Id"])
        if described["Status"] == "FAILED":
            reason = described.get("StatusReason", "")
            if any(text in reason for text in _NO_CHANGES):
                self.cfn.delete_change_set(ChangeSetName=created["Id"])
                return None
            raise DeployError(f"{name}: its change set failed", [reason])
        return described

    def _wait_for_change_set(self, name: str, change_set_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout_s
        while True:
            described = self._described_change_set(change_set_id)
            if described["Status"] in ("CREATE_COMPLETE", "FAILED") or time.monotonic() > deadline:
                return described
            self.progress.status(f"{name}: change set {described['Status']}")
            time.sleep(self.poll_s)

    def _described_change_set(self, change_set_id: str) -> dict[str, Any]:
        pages = list(self.cfn.get_paginator("describe_change_set").paginate(ChangeSetName=change_set_id))
        return {**pages[0], "Changes": [c for page in pages for c in page.get("Changes", [])]}

    def _wait(self, name: str, stack_id: str, started: float) -> str:
        """Wait until the stack's operation ends; its final status."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            stack = self.cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
            status = stack["StackStatus"]
            if not status.endswith("_IN_PROGRESS") or time.monotonic() > deadline:
                return status
            self.progress.status(f"{name}: {status} ({time.monotonic() - started:.0f}s){self._latest(stack_id)}")
            time.sleep(self.poll_s)

    def _latest(self, stack_id: str) -> str:
        events = self.cfn.describe_stack_events(StackName=stack_id)["StackEvents"]
        return f", {events[0]['LogicalResourceId']} {events[0]['ResourceStatus']}" if events else ""


def sent_tags(tags: Mapping[str, str], existing: Mapping[str, Any] | None) -> dict[str, str]:
    """The tags a change set gives the stack: the deploy's own (``amci:*``) as given, and every other tag the stack
    carries kept. A change set's tags replace the stack's, and AppRegistry tags each stack it associates with
    ``awsApplication`` (infra/monitoring.yaml): left out, the next deploy would take the stack out of the application
    (and never find a stage without changes). ``aws:`` tags are CloudFormation's, not ours to send."""
    kept = {t["Key"]: t["Value"] for t in (existing or {}).get("Tags", [])
            if not t["Key"].startswith((OWN_TAG_PREFIX, "aws:"))}
    return {**kept, **tags}


def stack_parameters(declared: Mapping[str, Any], given: Mapping[str, str],
                     existing: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The parameters of a change set: those given, and for an update every other one the stack has set to
    something else than its default, kept as it is (CloudFormation would otherwise reset it to the default)."""
    unknown = set(given) - set(declared)
    if unknown:
        raise DeployError(f"unknown parameters: {', '.join(sorted(unknown))} (known: {', '.join(declared)})")
    found = [{"ParameterKey": key, "ParameterValue": str(value)} for key, value in given.items()]
    previous = {p["ParameterKey"]: p.get("ParameterValue") for p in (existing or {}).get("Parameters", [])}
    for key, spec in declared.items():
        default = str(spec["Default"]) if "Default" in spec else None
        if key not in given and key in previous and previous[key] != default:
            found.append({"ParameterKey": key, "UsePreviousValue": True})
    return found


def _changes(change_set: Mapping[str, Any]) -> tuple[Change, ...]:
    found = []
    for change in change_set.get("Changes", []):
        resource = change.get("ResourceChange", {})
        found.append(Change(resource.get("Action", ""), resource.get("LogicalResourceId", ""),
                            resource.get("ResourceType", ""), str(resource.get("Replacement", ""))))
    return tuple(found)


# -- deploy ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    """What a deploy (or its plan) did, stack by stack, and where the stage is."""

    stage: str
    region: str
    results: list[StackResult]
    artifact_bucket: str | None = None
    artifact_prefix: str = ""
    outputs: Mapping[str, str] = field(default_factory=dict)
    configs: list[Path] = field(default_factory=list)  # the apps' config.json files written


def deploy(session: Any, stage: str, *, services: Sequence[str] = SERVICES,
           parameters: Mapping[str, str] | None = None, sources: Sources = SOURCES, out_dir: Path | None = None,
           role_arn: str | None = None, progress: Progress | None = None, poll_s: float = 5.0,
           monitoring: bool = True) -> Deployment:
    """Deploy (or update) stage ``stage``: bootstrap, artifacts, platform, each app in ``services``, and with
    ``monitoring`` the monitoring stack once every app's stack exists (it watches and groups them all)."""
    from amci.package import package

    check_stage(stage)
    progress = progress or Progress()
    stacks = Stacks(session.client("cloudformation"), progress, poll_s, role_arn=role_arn)
    s3 = session.client("s3")
    results = [stacks.deploy(bootstrap_stack(stage), Template((sources.infra / "bootstrap.yaml").read_text()),
                             {"Stage": stage}, tags=stack_tags(stage, "bootstrap"))]
    bucket = stacks.outputs(bootstrap_stack(stage))["ArtifactBucket"]
    artifacts = upload_artifacts(s3, bucket, platform_artifacts(sources), progress)
    platform = staged_template(s3, bucket, (sources.infra / "platform.yaml").read_text())
    results.append(stacks.deploy(platform_stack(stage), platform, {
        **(parameters or {}), "Stage": stage, "ArtifactBucket": bucket, "ArtifactPrefix": artifacts.prefix}, IAM,
        stack_tags(stage, "platform")))
    outputs = stacks.outputs(platform_stack(stage))
    out_dir = out_dir or ROOT / "build" / "deploy" / stage
    creators = [outputs["StageBJobRoleArn"]]
    roles = creators[0].rsplit("/", 1)[0]  # the apps' roles share the account, partition and path of the platform's
    for service in services:
        progress.status(f"{service}: recording the platform's outputs, packaging")
        configure_app(service, stage, outputs, sources.services)
        built = package(service, stage, out_dir, project_dir=sources.services / service,
                        platform_key_arn=outputs.get("PlatformKeyArn"))
        template = packaged_template(s3, bucket, service, stage, built.zip_path, built.template_path, sources)
        results.append(stacks.deploy(app_stack(stage, service), template, {}, IAM, stack_tags(stage, service)))
        if wanted := database_creator_roles(template):
            made = stacks.physical_ids(app_stack(stage, service))
            creators += [f"{roles}/{made[role]}" for role in wanted]
    grant_database_creation(session.client("lakeformation"), creators, progress)
    if monitoring and all(stacks.describe(app_stack(stage, service)) for service in SERVICES):
        monitoring = staged_template(s3, bucket, (sources.infra / "monitoring.yaml").read_text())
        results.append(stacks.deploy(monitoring_stack(stage), monitoring,
                                     monitoring_parameters(monitoring, stage, artifacts.prefix, outputs), (),
                                     stack_tags(stage, "monitoring")))
    return Deployment(stage, s3.meta.region_name, results, bucket, artifacts.prefix, outputs,
                      [config_path(service, sources.services) for service in services])


def database_creator_roles(template: Template) -> list[str]:
    """The template's roles that may create Glue databases (the tenant functions' making each tenant's)."""
    return [logical for logical, resource in template.resources.items() if resource["Type"] == "AWS::IAM::Role"
            and any(_creates_databases(statement) for policy in resource["Properties"].get("Policies", [])
                    for statement in policy["PolicyDocument"]["Statement"])]


def _creates_databases(statement: Mapping[str, Any]) -> bool:
    return statement.get("Effect", "Allow") == "Allow" and "glue:CreateDatabase" in as_list(statement.get("Action"))


def grant_database_creation(lakeformation: Any, roles: Sequence[str], progress: Progress) -> None:
    """Lake Formation's CREATE_DATABASE on the catalog for the roles that create the lake's databases, which an
    account without IAMAllowedPrincipals defaults requires. Through the API: CloudFormation's Catalog resource
    fails the stack it creates (cloudformation-coverage-roadmap#2159). A grant held already is a no-op. A deployer
    who is no data lake administrator is told what to ask of one, as accounts with the defaults need nothing."""
    for role in roles:
        try:
            lakeformation.grant_permissions(Principal={"DataLakePrincipalIdentifier": role},
                                            Resource={"Catalog": {}}, Permissions=["CREATE_DATABASE"])
        except lakeformation.exceptions.AccessDeniedException:
            progress.warn(f"Lake Formation refused the grant (the deployer is no data lake administrator): if the "
                          f"account's new databases lack IAMAllowedPrincipals, a data lake administrator must grant "
                          f"CREATE_DATABASE on the catalog to {role}")


def monitoring_parameters(template: Template, stage: str, version: str,
                          outputs: Mapping[str, str]) -> dict[str, str]:
    """The monitoring stack's parameters: each is named as the platform output it takes."""
    return {**{name: outputs[name] for name in template.parameters if name in outputs}, "Stage": stage,
            "Version": version.rstrip("/") or "unversioned"}


def check_stage(stage: str) -> None:
    if not STAGE_NAME.match(stage):
        raise ValueError(f"stage {stage!r}: 2 to 12 lowercase letters and digits, starting with a letter")
    if stage == "local":
        raise ValueError("stage local is the local cloud's: choose another name")


def upload_artifacts(s3: Any, bucket: str, artifacts: Artifacts, progress: Progress) -> Artifacts:
    for key, body in artifacts.keys().items():
        progress.status(f"uploading {key}")
        put_if_absent(s3, bucket, key, body)
    return artifacts


def configure_app(service: str, stage: str, outputs: Mapping[str, str], services_dir: Path) -> None:
    """The app's stage (made from ``prod``'s when new) with the platform stack's outputs recorded."""
    ensure_stage(service, stage, services_dir)
    record_outputs(service, stage, outputs, services_dir)


def packaged_template(s3: Any, bucket: str, service: str, stage: str, zip_path: Path, sam_path: Path,
                      sources: Sources, upload_code: bool = True) -> Template:
    """The app's stack template, its package uploaded under its content hash (``upload_code=False``: only named)."""
    key = f"apps/{service}/{package_digest(zip_path)}.zip"
    if upload_code:
        put_if_absent(s3, bucket, key, zip_path.read_bytes())
    app_name = json.loads(config_path(service, sources.services).read_text())["app_name"]
    template = app_template(json.loads(sam_path.read_text()), bucket, key, app_name, stage, s3.meta.region_name)
    return staged_template(s3, bucket, json.dumps(template, indent=1, sort_keys=True))


def plan(session: Any, stage: str, *, work_dir: Path, services: Sequence[str] = SERVICES,
         parameters: Mapping[str, str] | None = None, sources: Sources = SOURCES, role_arn: str | None = None,
         progress: Progress | None = None) -> Deployment:
    """What :func:`deploy` would do, from change sets deleted again; nothing is changed but the templates
    uploaded for CloudFormation to read. The apps are packaged in a copy under ``work_dir``, so their
    ``config.json`` stay as they are. With ``role_arn`` CloudFormation makes the change sets as that role, as
    :func:`deploy` would."""
    import shutil

    from amci.package import package

    check_stage(stage)
    stacks = Stacks(session.client("cloudformation"), progress or Progress(), role_arn=role_arn)
    s3 = session.client("s3")
    bucket = stacks.outputs(bootstrap_stack(stage)).get("ArtifactBucket")
    results = [stacks.plan(bootstrap_stack(stage), Template((sources.infra / "bootstrap.yaml").read_text()),
                           {"Stage": stage}, tags=stack_tags(stage, "bootstrap"))]
    artifacts = platform_artifacts(sources)
    platform = staged_template(s3, bucket, (sources.infra / "platform.yaml").read_text())
    given = {**(parameters or {}), "Stage": stage, "ArtifactBucket": bucket or "-", "ArtifactPrefix": artifacts.prefix}
    results.append(stacks.plan(platform_stack(stage), platform, given, IAM, stack_tags(stage, "platform")))
    outputs = stacks.outputs(platform_stack(stage))
    for service in services:
        name = app_stack(stage, service)
        if not (bucket and outputs and stacks.describe(name)):
            results.append(StackResult(name, "CREATE"))
            continue
        stacks.progress.status(f"{service}: packaging a copy, to compare")
        copy_dir = work_dir / "services" / service
        shutil.copytree(sources.services / service, copy_dir, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
        configure_app(service, stage, outputs, work_dir / "services")
        built = package(service, stage, work_dir / "packages", project_dir=copy_dir,
                        platform_key_arn=outputs.get("PlatformKeyArn"))
        template = packaged_template(s3, bucket, service, stage, built.zip_path, built.template_path,
                                     Sources(sources.infra, work_dir / "services", sources.shared), upload_code=False)
        results.append(stacks.plan(name, template, {}, IAM, stack_tags(stage, service)))
    return Deployment(stage, s3.meta.region_name, results, bucket, artifacts.prefix, outputs)


# -- destroy -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Teardown:
    """What a destroy did: the stacks deleted, the buckets kept or deleted, the key kept, the tenants' stacks left."""

    stage: str
    results: list[StackResult]
    kept: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    kept_key: str | None = None
    tenant_stacks: list[str] = field(default_factory=list)


def destroy(session: Any, stage: str, *, delete_data: bool = False, sources: Sources = SOURCES,
            role_arn: str | None = None, progress: Progress | None = None, poll_s: float = 5.0) -> Teardown:
    """Delete the stage's monitoring stack (when there is one), app stacks, platform stack and bootstrap stack.
    The platform's buckets (and the key their objects are encrypted with) are kept unless ``delete_data``; tenants'
    buckets are never touched."""
    stacks = Stacks(session.client("cloudformation"), progress or Progress(), poll_s, role_arn=role_arn)
    s3 = session.client("s3")
    results = [stacks.delete(monitoring_stack(stage))]
    results += [stacks.delete(app_stack(stage, service)) for service in reversed(SERVICES)]
    buckets, key = data_resources(session, stacks, stage, sources)
    artifact_bucket = stacks.outputs(bootstrap_stack(stage)).get("ArtifactBucket")
    if stacks.describe(platform_stack(stage)):  # kept by CloudFormation even when deleted after: see the docstring
        retained = retain_data(stacks, s3, artifact_bucket, stage)
        if retained:
            results.append(retained)
    results.append(stacks.delete(platform_stack(stage)))
    if delete_data:
        for bucket in buckets:
            stop_access_logging(s3, bucket)
        for bucket in buckets:
            stacks.progress.status(f"emptying and deleting {bucket}")
            delete_bucket(s3, bucket, wait_s=poll_s * 4)
        if key:
            schedule_key_deletion(session.client("kms"), key)
    elif key:
        keep_key(session.client("kms"), key)
    if artifact_bucket:
        stacks.progress.status(f"emptying {artifact_bucket}")
        empty_bucket(s3, artifact_bucket)
    results.append(stacks.delete(bootstrap_stack(stage)))
    kept = [] if delete_data else [bucket for bucket in buckets if bucket_exists(s3, bucket)]
    return Teardown(stage, results, kept, list(buckets) if delete_data else [], None if delete_data else key,
                    tenant_stacks(stacks.cfn, stage))


def data_resources(session: Any, stacks: Stacks, stage: str,
                   sources: Sources = SOURCES) -> tuple[list[str], str | None]:
    """The platform's buckets that exist, and its key: from the stack, or, once it is gone (a destroy that kept
    them), from the bucket names the template gives."""
    described = stacks.describe(platform_stack(stage))
    if described:
        resources = stacks.resources(described["StackId"])
        buckets = [r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::S3::Bucket"]
        keys = [r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::KMS::Key"]
        return [b for b in buckets if b], (keys[0] if keys else None)
    account = session.client("sts").get_caller_identity()["Account"]
    s3 = session.client("s3")
    names = template_bucket_names(load_template((sources.infra / "platform.yaml").read_text()), stage, account,
                                  s3.meta.region_name)
    return [name for name in names if bucket_exists(s3, name)], None


def template_bucket_names(template: Mapping[str, Any], stage: str, account: str, region: str) -> list[str]:
    """The names the template gives its buckets (``{"Fn::Sub": "amci-${Stage}-raw-${AWS::AccountId}-..."}``)."""
    values = {"Stage": stage, "AWS::AccountId": account, "AWS::Region": region}
    names = []
    for spec in template["Resources"].values():
        name = spec.get("Properties", {}).get("BucketName") if spec["Type"] == "AWS::S3::Bucket" else None
        if isinstance(name, dict) and isinstance(name.get("Fn::Sub"), str):
            names.append(re.sub(r"\$\{([^}]+)\}", lambda m: values.get(m.group(1), m.group(0)), name["Fn::Sub"]))
    return [name for name in names if "${" not in name]


def retain_data(stacks: Stacks, s3: Any, bucket: str | None, stage: str) -> StackResult | None:
    """Mark the platform stack's buckets ``DeletionPolicy: Retain`` (the deployed template, nothing else changed),
    so that deleting the stack keeps them; None when they already are."""
    name = platform_stack(stage)
    body = stacks.cfn.get_template(StackName=name, TemplateStage="Original")["TemplateBody"]
    template = copy.deepcopy(body) if isinstance(body, dict) else load_template(body)
    marked = [lid for lid, spec in template["Resources"].items()
              if spec["Type"] == "AWS::S3::Bucket" and spec.get("DeletionPolicy") != "Retain"]
    if not marked:
        return None
    for lid in marked:
        template["Resources"][lid]["DeletionPolicy"] = "Retain"
    stacks.progress.status(f"{name}: marking {', '.join(marked)} to be kept")
    result = stacks.deploy(name, staged_template(s3, bucket, json.dumps(template, indent=1)), {}, IAM)
    return replace(result, status="BUCKETS_RETAINED")


def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every object version and delete marker; the number deleted (0 for a bucket that is gone)."""
    count = 0
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                      for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
            for start in range(0, len(doomed), 1000):
                s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed[start:start + 1000], "Quiet": True})
            count += len(doomed)
    except s3.exceptions.NoSuchBucket:
        return 0
    return count


def stop_access_logging(s3: Any, bucket: str) -> None:
    """Turn the bucket's server access logging off (a bucket that is gone has none)."""
    with contextlib.suppress(s3.exceptions.NoSuchBucket):
        s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={})


def delete_bucket(s3: Any, bucket: str, attempts: int = 6, wait_s: float = 20.0) -> None:
    """Empty and delete a bucket, unless it is gone already. A bucket that received objects since it was emptied
    (access logs S3 delivers late, up to hours after the request) is emptied again, up to ``attempts`` times, ``wait_s``
    apart."""
    for attempt in range(1, attempts + 1):
        if not bucket_exists(s3, bucket):
            return
        empty_bucket(s3, bucket)
        try:
            s3.delete_bucket(Bucket=bucket)
            return
        except s3.exceptions.ClientError as exc:
            if error_code(exc) != "BucketNotEmpty":
                raise
            if attempt == attempts:
                raise DeployError(f"s3://{bucket} received objects each time it was emptied ({attempts} times)", [
                    "S3 still delivers access logs to it: from tenants' buckets (offboard them first) or late ones; "
                    "run the destroy with --delete-data again later"]) from None
        time.sleep(wait_s)


def bucket_exists(s3: Any, bucket: str) -> bool:
    try:
        s3.head_bucket(Bucket=bucket)
        return True
    except s3.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise


def keep_key(kms: Any, key_id: str) -> None:
    """Cancel the deletion CloudFormation scheduled for the key the kept buckets' objects are encrypted with (a
    key whose deletion is cancelled is disabled: enable it again)."""
    try:
        state = kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]
    except kms.exceptions.NotFoundException:
        return
    if state == "PendingDeletion":
        kms.cancel_key_deletion(KeyId=key_id)
        kms.enable_key(KeyId=key_id)


def schedule_key_deletion(kms: Any, key_id: str) -> None:
    """Schedule the deletion of a key the stack kept (CloudFormation schedules it for a key it deletes)."""
    try:
        state = kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]
    except kms.exceptions.NotFoundException:
        return
    if state not in ("PendingDeletion", "PendingReplicaDeletion"):
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=30)


def tenant_stacks(cfn: Any, stage: str) -> list[str]:
    """The tenants' stacks of the stage still there (offboarding deletes them; a destroy does not)."""
    prefix = f"amci-{stage}-tenant-"
    found = []
    for page in cfn.get_paginator("list_stacks").paginate():
        found += [s["StackName"] for s in page["StackSummaries"]
                  if s["StackName"].startswith(prefix) and s["StackStatus"] != "DELETE_COMPLETE"]
    return sorted(found)
