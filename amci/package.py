"""Packaging the apps with ``chalice package``, failing loudly where Chalice only warns, and adding what Chalice
cannot express.

- Chalice prints "Could not install dependencies" and still exits 0 when a dependency has no wheel for Lambda
  (research/platform.md §4); a package without its dependencies would fail only once deployed. So we read its
  output, and open the zip to check that the shared library and every requirement made it in.
- Chalice has no partial-batch responses (aws/chalice#2029), yet every SQS handler here returns
  ``batchItemFailures`` (``shared/batch.py``); without ``ReportBatchItemFailures`` on the mapping Lambda would
  treat a batch with failures as a success and drop them. So every SQS event source in ``sam.json`` gets it.
- Each function gets a role of its own, its policy made for the stage from the app's ``.chalice/permissions.json``
  (``amci/permissions.py``), and the name ``chalice deploy`` would give it (``{app}-{stage}-{function}``), which the
  state machines call and its policy's log group names. Chalice can make a role per function
  (``lambda_functions.<function>.iam_policy_file``), but reads each policy from a file written for one stage, named
  in config.json per function and stage: for any stage from one source, that would mean generating files and config
  entries. So config.json tells Chalice not to manage roles (``manage_iam_role: false``; ``iam_role_arn`` says why)
  and the roles are added to ``sam.json`` here, where nothing is generated into the project.
- checkov's checks that do not apply to these functions (VPC, reserved concurrency, ...) and their log groups (a
  customer key) are skipped in each resource's ``Metadata``, each with its reason, so that tests/test_templates.py
  fails on any other finding.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from chalice.constants import LAMBDA_TRUST_POLICY
from chalice.utils import to_cfn_resource_name

from amci import permissions
from amci.stages import SERVICES_DIR


class PackagingError(RuntimeError):
    """``chalice package`` failed or produced an incomplete package."""


@dataclass(frozen=True)
class Package:
    service: str
    directory: Path
    zip_bytes: int
    unzipped_bytes: int

    @property
    def zip_path(self) -> Path:
        return self.directory / "deployment.zip"

    @property
    def template_path(self) -> Path:
        return self.directory / "sam.json"


def package(service: str, stage: str, out_dir: Path, project_dir: Path | None = None,
            platform_key_arn: str | None = None) -> Package:
    """Run ``chalice package`` for one app into ``out_dir/<service>``; raise PackagingError on any gap. With
    ``platform_key_arn`` (the deployed platform's), the functions' policies name that key (``amci/permissions.py``)."""
    project_dir = project_dir or SERVICES_DIR / service
    target = out_dir / service
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    chalice = Path(sys.executable).with_name("chalice")
    with _one_at_a_time(project_dir):
        result = subprocess.run([str(chalice), "package", "--stage", stage, str(target)], cwd=project_dir, env=env,
                                capture_output=True, text=True, check=False)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise PackagingError(f"{service}: chalice package exited {result.returncode}:\n{output[-2000:]}")
    if "Could not install dependencies" in output:
        missing = output.split("Could not install dependencies:", 1)[1].split("You will have to", 1)[0].split()
        raise PackagingError(f"{service}: these dependencies could not be packaged for Lambda: {', '.join(missing)}")
    _report_batch_item_failures(target / "sam.json")
    _function_roles(target / "sam.json", service, stage, project_dir, platform_key_arn)
    _justify_skipped_checks(target / "sam.json")
    return _verified(service, project_dir, target)


@contextmanager
def _one_at_a_time(project_dir: Path) -> Iterator[None]:
    """Chalice writes its dependency zip into ``.chalice/deployments`` in place and reuses any zip found there, so
    a second ``chalice package`` of the same app (another test process, another terminal) could take a half-written
    one: they take turns."""
    cache = project_dir / ".chalice" / "deployments"
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".package.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _function_roles(template_path: Path, service: str, stage: str, project_dir: Path,
                    platform_key_arn: str | None) -> None:
    """Name each function, and give it a role of its own with its policy; every function must have its
    permissions declared, and every declared function must exist."""
    config = json.loads((project_dir / ".chalice" / "config.json").read_text())
    try:
        declared = permissions.load(project_dir)
    except permissions.PermissionsError as exc:
        raise PackagingError(f"{service}: {exc}") from None
    template = json.loads(template_path.read_text())
    resources = template["Resources"]
    functions = {logical: resource for logical, resource in resources.items()
                 if resource["Type"] == "AWS::Serverless::Function"}
    names = {to_cfn_resource_name(name): name for name in declared.functions}
    undeclared = sorted(functions[f]["Properties"]["Handler"].rsplit(".", 1)[-1] for f in set(functions) - set(names))
    absent = sorted(names[f] for f in set(names) - set(functions))
    if undeclared or absent:
        raise PackagingError(f"{service}: .chalice/{permissions.FILE} must name each function of the app, and only "
                             f"those: no permissions for {', '.join(undeclared) or '-'}; permissions for "
                             f"{', '.join(absent) or '-'}, which the app does not have")
    for logical, function in functions.items():
        properties = function["Properties"]
        if properties.get("Role") != config.get("iam_role_arn") or config.get("manage_iam_role") is not False:
            raise PackagingError(f"{service}: {logical} has a role from Chalice; set manage_iam_role to false (and "
                                 "iam_role_arn to a note) at the top of .chalice/config.json, as every app does")
        name = permissions.function_name(config["app_name"], stage, names[logical])
        policy = declared.policy(names[logical], stage, name, traced=properties.get("Tracing") == "Active",
                                 platform_key_arn=platform_key_arn)
        role = f"{logical}Role"
        resources[role] = {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": copy.deepcopy(LAMBDA_TRUST_POLICY),
            "Policies": [{"PolicyName": f"{role}Policy", "PolicyDocument": policy}]}}
        properties.update(FunctionName=name, Role={"Fn::GetAtt": [role, "Arn"]})
    template_path.write_text(json.dumps(template, indent=2))


def _report_batch_item_failures(template_path: Path) -> None:
    template = json.loads(template_path.read_text())
    for resource in template["Resources"].values():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event["Type"] == "SQS":
                event["Properties"]["FunctionResponseTypes"] = ["ReportBatchItemFailures"]
    template_path.write_text(json.dumps(template, indent=2))


# The checks of checkov's (tests/test_templates.py) that do not apply to these functions, and why; written into each
# function's Metadata, where checkov reads its skips, so that any other finding fails the test.
_NOT_APPLICABLE = {
    "CKV_AWS_117": "No VPC: the functions call only public AWS and Amazon Ads, Selling Partner and AMC endpoints, "
                   "nothing private; a VPC would need NAT or an endpoint per service and isolate nothing.",
    "CKV_AWS_115": "No reserved concurrency: a reservation is taken from the account's pool (and fails the deploy "
                   "on an account with the default low quota); the external APIs' limits are kept by the services' "
                   "own gates and retries, not by Lambda throttling.",
    "CKV_AWS_173": "The variables hold resource names, ARNs and settings, no secret (credentials are in Secrets "
                   "Manager under the platform key); Lambda encrypts them at rest with its own key.",
}
_NO_DLQ_NEEDED = {  # CKV_AWS_116, by the function's event sources: a dead-letter queue serves async invocations
    "": "Invoked synchronously only (state machine tasks): the state machine retries and catches its errors.",
    "SQS": "Invoked by an SQS event source mapping, never asynchronously: the queue's redrive policy moves failed "
           "messages to its own dead-letter queue.",
    "Schedule": "Invoked by a schedule: Lambda retries a failed run, and the next run takes up what it left.",
}


_LOG_GROUP_NOT_APPLICABLE = {
    "CKV_AWS_158": "CloudWatch Logs encrypts every log group at rest with a key of its own; the functions log no "
                   "secret (tests/conftest.py fails any test during which one is logged), and a customer key would "
                   "have to admit the Logs service in its policy for nothing more.",
}


def _justify_skipped_checks(template_path: Path) -> None:
    template = json.loads(template_path.read_text())
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Logs::LogGroup":  # a function's, from log_retention_in_days in config.json
            skips = [{"id": check, "comment": why} for check, why in _LOG_GROUP_NOT_APPLICABLE.items()]
        elif resource["Type"] == "AWS::Serverless::Function":
            sources = "+".join(sorted({event["Type"] for event in resource["Properties"].get("Events", {}).values()}))
            skips = [{"id": check, "comment": why} for check, why in _NOT_APPLICABLE.items()]
            if sources in _NO_DLQ_NEEDED:  # any other mix of sources is left to checkov to flag
                skips.append({"id": "CKV_AWS_116", "comment": _NO_DLQ_NEEDED[sources]})
        else:
            continue
        resource.setdefault("Metadata", {}).setdefault("checkov", {})["skip"] = skips
    template_path.write_text(json.dumps(template, indent=2))


def _verified(service: str, project_dir: Path, target: Path) -> Package:
    zip_path = target / "deployment.zip"
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
        unzipped = sum(info.file_size for info in archive.infolist())
    lowered = {name.lower() for name in names}
    absent = sorted({"app.py", "shared/__init__.py"} - names)
    absent += [f"{distribution} (no {prefix}*.dist-info)" for distribution, prefix in _requirements(project_dir)
               if not any(name.startswith(prefix) and ".dist-info/" in name for name in lowered)]
    if absent:
        raise PackagingError(f"{service}: the package lacks {', '.join(absent)}")
    return Package(service, target, zip_path.stat().st_size, unzipped)


def _requirements(project_dir: Path) -> list[tuple[str, str]]:
    """Each requirement and the prefix of its ``.dist-info`` folder in a package (``aws-xray-sdk==2.15.0`` ->
    ``aws_xray_sdk-2.15.0``; unpinned: ``aws_xray_sdk-``), which names the distribution whatever it imports as."""
    found = []
    for line in (project_dir / "requirements.txt").read_text().splitlines():
        match = re.match(r"\s*([A-Za-z0-9._-]+)\s*(?:==\s*([A-Za-z0-9.+!-]+))?", line)
        if match and not line.lstrip().startswith("#"):
            name = re.sub(r"[-_.]+", "_", match.group(1)).lower()
            found.append((line.strip(), f"{name}-{match.group(2) or ''}".lower()))
    return found
