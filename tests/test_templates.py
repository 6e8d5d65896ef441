"""What a deploy sends to CloudFormation and Lambda, checked before it is sent: cfn-lint and checkov find nothing in
the infrastructure templates (every ``infra/*.yaml``), in each app's packaged template (``sam.json`` from
``amci/package.py``) and the plain CloudFormation the deploy turns it into (``amci/deploy.py`` ``app_template``: what
CloudFormation receives), or in the tenant stacks the tenant service generates (a tenant of each bucket pattern, and
the template a bucket's owner deploys); every function has its log group, with the app's retention; and every app's
package fits Lambda.

A check that does not apply is skipped where the resource is declared, with its reason (``Metadata: checkov: skip``
in ``infra/*.yaml``; ``amci/package.py`` and ``services/tenant/chalicelib/stacks.py`` write theirs into what they
generate), so that the reason is read with the resource and every other finding fails here. Open-source checkov
gives no severity, so every failed check counts, whatever its severity would be. checkov runs once, over a folder
of every template (about 10 s); it lives in ``.venv/checkov`` (requirements-checkov.txt), apart from the project.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

from amci.deploy import app_template, package_digest
from amci.package import Package
from amci.stages import SERVICES_DIR, config_path, stage_variables
from shared.config import SERVICES
from tests.support import LAMBDA_UNZIPPED_LIMIT, LAMBDA_ZIP_LIMIT

INFRA = SERVICES_DIR.parent / "infra"
CHECKOV = Path(sys.prefix) / "checkov" / "bin" / "checkov"
OTHER_REGION = "eu-west-1"  # where the "elsewhere" tenants keep their buckets
OTHER_ACCOUNT = "210987654321"  # the bucket owner's account of the cross-account tenant


@pytest.fixture(scope="module")
def templates(packages: dict[str, Package], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder of every template: ``infra/``, ``apps/<service>.json`` (SAM), ``cloudformation/<service>.json``
    (the app's stack as deployed) and ``tenant/<customer>-<region>.json``."""
    folder = tmp_path_factory.mktemp("templates")
    (folder / "infra").mkdir()
    for template in sorted(INFRA.glob("*.yaml")):
        (folder / "infra" / template.name).write_text(template.read_text())
    (folder / "apps").mkdir()
    for service, built in packages.items():
        (folder / "apps" / f"{service}.json").write_text(built.template_path.read_text())
    (folder / "cloudformation").mkdir()
    for service, built in packages.items():
        (folder / "cloudformation" / f"{service}.json").write_text(json.dumps(_deployed(service, built), indent=2))
    (folder / "tenant").mkdir()
    for name, template in _tenant_templates().items():
        (folder / "tenant" / f"{name}.json").write_text(json.dumps(template, indent=2))
    return folder


def test_every_template_is_scanned(templates: Path) -> None:
    names = {str(path.relative_to(templates)) for path in templates.rglob("*.*")}
    assert {"infra/platform.yaml", *(f"{kind}/{service}.json" for kind in ("apps", "cloudformation")
                                     for service in SERVICES)} <= names
    # a tenant of each pattern: new bucket and existing bucket, here and in another region, and cross-account
    assert {"tenant/new-us-east-1.json", f"tenant/new-elsewhere-{OTHER_REGION}.json", "tenant/existing-us-east-1.json",
            f"tenant/existing-elsewhere-{OTHER_REGION}.json", "tenant/cross-account-us-east-1.json",
            "tenant/cross-account-bucket-owner.json"} <= names


def test_cfn_lint_finds_nothing(templates: Path) -> None:
    files = sorted(str(path) for path in templates.rglob("*.*"))
    result = subprocess.run([str(Path(sys.executable).with_name("cfn-lint")), "--format", "parseable",
                             "--regions", "us-east-1", OTHER_REGION, "--", *files],
                            capture_output=True, text=True, check=False)
    findings = [line.removeprefix(f"{templates}/") for line in result.stdout.splitlines()]
    assert findings == [], "cfn-lint (E: error, W: warning, I: note):\n" + "\n".join(findings)
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_finds_nothing_and_every_skip_says_why(templates: Path) -> None:
    assert CHECKOV.is_file(), f"{CHECKOV} is missing: run `make test`, which installs it (requirements-checkov.txt)"
    result = subprocess.run([str(CHECKOV), "--directory", str(templates), "--framework", "cloudformation",
                             "--output", "json", "--compact", "--skip-download"],  # no network: no guidelines
                            capture_output=True, text=True, check=False,
                            env={**os.environ, "LOG_LEVEL": "WARNING"})  # checkov's own logging reads LOG_LEVEL
    assert result.returncode in (0, 1), result.stdout[-2000:] + result.stderr[-4000:]  # 1: failed checks
    report = json.loads(result.stdout)
    assert isinstance(report, dict) and report.get("check_type") == "cloudformation", result.stdout[:2000]
    results, summary = report["results"], report["summary"]

    failed = [f"{c['file_path'].lstrip('/')} {c['resource']}: {c['check_id']} {c['check_name']}"
              f" (severity: {c.get('severity') or 'none given'})" for c in results["failed_checks"]]
    unexplained = [f"{c['file_path'].lstrip('/')} {c['resource']}: {c['check_id']} skipped without a reason"
                   for c in results["skipped_checks"]
                   if len(c["check_result"].get("suppress_comment") or "") < 20]  # "No comment provided" is 19
    assert failed + unexplained == [], ("checkov: fix each, or skip it in the resource's Metadata with the reason it "
                                        "does not apply:\n" + "\n".join(failed + unexplained))
    assert summary["parsing_errors"] == 0, results["parsing_errors"]
    # checkov read every resource of every template (a template it did not take for CloudFormation is silently left)
    assert summary["resource_count"] == sum(_resource_count(path) for path in templates.rglob("*.*"))


@pytest.mark.parametrize("service", SERVICES)
def test_each_package_fits_lambda_with_all_its_dependencies(packages: dict[str, Package], service: str) -> None:
    built = packages[service]  # package() has already refused a package lacking a requirement or the shared library
    megabytes = f"{built.zip_bytes / 2**20:.1f} MiB zipped, {built.unzipped_bytes / 2**20:.1f} MiB unzipped"
    assert 0 < built.zip_bytes <= LAMBDA_ZIP_LIMIT, f"{service}: {megabytes}; Lambda takes 50 MiB zipped"
    assert 0 < built.unzipped_bytes <= LAMBDA_UNZIPPED_LIMIT, f"{service}: {megabytes}; Lambda takes 250 MiB unzipped"


def test_each_function_has_its_log_group_kept_for_the_apps_retention(templates: Path) -> None:
    for service in SERVICES:
        retention = json.loads(config_path(service).read_text())["log_retention_in_days"]  # every stage's
        resources = json.loads((templates / "cloudformation" / f"{service}.json").read_text())["Resources"]
        functions = [lid for lid, spec in resources.items() if spec["Type"] == "AWS::Lambda::Function"]
        groups = {spec["Properties"]["LogGroupName"]["Fn::Sub"]: spec["Properties"]["RetentionInDays"]
                  for spec in resources.values() if spec["Type"] == "AWS::Logs::LogGroup"}
        assert functions and groups == {f"/aws/lambda/${{{lid}}}": retention for lid in functions}, service


def _deployed(service: str, built: Package) -> dict[str, Any]:
    """The app's stack template as ``amci deploy`` sends it to CloudFormation (its code in the artifact bucket)."""
    app_name = json.loads(config_path(service).read_text())["app_name"]
    return app_template(json.loads(built.template_path.read_text()), "amci-local-artifacts",
                        f"apps/{service}/{package_digest(built.zip_path)}.zip", app_name, "local", "us-east-1")


def _resource_count(path: Path) -> int:
    template, matches = decode(str(path))
    assert template is not None, matches
    return len(template["Resources"])


def _tenant_templates() -> dict[str, dict[str, Any]]:
    """The tenant stacks of a tenant of each bucket pattern, by ``<customer>-<region>``, and the template the owner of
    the cross-account tenant's bucket deploys (``cross-account-bucket-owner``), for the tenant app's local platform."""
    with _tenant_chalicelib() as (stacks, model):
        platform = model.Platform.from_env(stage_variables("tenant", "local"))
        here, elsewhere = (platform.region, platform.account_id), (OTHER_REGION, platform.account_id)
        tenants = [_tenant(model, "new", model.Pattern.NEW_BUCKET, *here),
                   _tenant(model, "new-elsewhere", model.Pattern.NEW_BUCKET, *elsewhere),
                   _tenant(model, "existing", model.Pattern.EXISTING_BUCKET, *here),
                   _tenant(model, "existing-elsewhere", model.Pattern.EXISTING_BUCKET, *elsewhere),
                   _tenant(model, "cross-account", model.Pattern.CROSS_ACCOUNT, OTHER_REGION, OTHER_ACCOUNT)]
        assert {tenant.pattern for tenant in tenants} == set(model.Pattern), "a new pattern needs a tenant here"
        generated = {f"{tenant.customer_id}-{region}": template for tenant in tenants
                     for region, template in stacks.templates(tenant, platform).items()}
        generated["cross-account-bucket-owner"] = stacks.bucket_owner_template(tenants[-1], platform)
    return generated


def _tenant(model: Any, customer_id: str, pattern: Any, bucket_region: str, bucket_account: str) -> Any:
    return model.Tenant(customer_id=customer_id, customer_name=f"Customer {customer_id}", auth_id=None,
                        bucket_name=f"amc-results-{customer_id}", bucket_exists=pattern != model.Pattern.NEW_BUCKET,
                        bucket_account=bucket_account, bucket_region=bucket_region, amc_account_id="111122223333",
                        instance_id="amcexample01", advertiser_id="ENTITYEXAMPLE01", marketplace_id="ATVPDKIKX0DER",
                        notification_email=None, pattern=pattern)


@contextmanager
def _tenant_chalicelib() -> Iterator[tuple[Any, Any]]:
    """The tenant app's ``chalicelib.stacks`` and ``chalicelib.model``. Every app has a ``chalicelib``, so it is
    imported with the tenant's folder first on the path and taken out of ``sys.modules`` afterwards (as
    ``local/apps.py`` does)."""
    def pop() -> dict[str, Any]:
        return {name: sys.modules.pop(name) for name in list(sys.modules)
                if name == "chalicelib" or name.startswith("chalicelib.")}

    saved, folder = pop(), str(SERVICES_DIR / "tenant")
    sys.path.insert(0, folder)
    try:
        yield importlib.import_module("chalicelib.stacks"), importlib.import_module("chalicelib.model")
    finally:
        sys.path.remove(folder)
        pop()
        sys.modules.update(saved)
