"""``chalice package`` for every app: the shared library and every dependency in the zip, and a loud failure
where Chalice itself would only warn. Runs offline from the wheelhouse ``make`` fills (.venv/wheelhouse)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from amci.package import Package, PackagingError, package
from amci.stages import SERVICES_DIR, stage_variables
from shared.config import SERVICES
from tests.support import LAMBDA_UNZIPPED_LIMIT, LAMBDA_ZIP_LIMIT, WHEELHOUSE, offline_packaging


@pytest.fixture
def offline_pip() -> Iterator[None]:
    with offline_packaging():
        yield


@pytest.mark.parametrize("service", SERVICES)
def test_each_app_packages_with_the_shared_library_and_its_dependencies(
        service: str, packages: dict[str, Package]) -> None:
    built = packages[service]

    with zipfile.ZipFile(built.zip_path) as archive:
        names = set(archive.namelist())
    assert {"app.py", "shared/__init__.py", "shared/chalice_app.py", "pydantic/__init__.py", "aws_xray_sdk/__init__.py",
            "pydantic_core/__init__.py"} <= names
    assert not any("__pycache__" in name for name in names)
    assert built.zip_bytes < LAMBDA_ZIP_LIMIT and built.unzipped_bytes < LAMBDA_UNZIPPED_LIMIT
    template = json.loads(built.template_path.read_text())
    mappings = [event for resource in template["Resources"].values()
                for event in resource.get("Properties", {}).get("Events", {}).values() if event["Type"] == "SQS"]
    assert mappings and all(m["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
                            for m in mappings)


@pytest.mark.parametrize("service", SERVICES)
def test_a_packaged_app_starts_as_it_would_in_lambda(service: str, packages: dict[str, Package],
                                                     tmp_path: Path) -> None:
    # Unzipped alone, with Lambda's variables set: the deployed start-up path (JSON logs, X-Ray patching).
    with zipfile.ZipFile(packages[service].zip_path) as archive:
        archive.extractall(tmp_path / "task")
    env = {"PATH": os.environ["PATH"], "AWS_LAMBDA_FUNCTION_NAME": f"amci-{service.replace('_', '-')}-local-on_request",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
           **stage_variables(service, "local")}
    script = ("import logging, app, shared.chalice_app as c; from aws_xray_sdk.core.patcher import _PATCHED_MODULES;"
              "print(sorted(_PATCHED_MODULES)); logging.getLogger('probe').warning('started')")
    result = subprocess.run([sys.executable, "-E", "-c", script], cwd=tmp_path / "task", env=env,
                            capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stderr
    printed = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert printed == ["['botocore', 'requests']"]  # X-Ray patches boto3 through botocore
    log_lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(log_lines) + 1 == len(result.stdout.splitlines())  # every log line is JSON
    assert [line["service"] for line in log_lines if line["message"] == "started"] == [service]  # and only once


def test_a_dependency_without_a_lambda_wheel_fails_the_build(
        tmp_path: Path, offline_pip: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # A wheel for glibc 2.28 only: pip takes it on this machine, Lambda's python3.11 (glibc 2.26) cannot run it,
    # and Chalice would print a warning and exit 0.
    links = tmp_path / "links"
    links.mkdir()
    _native_wheel(links, "amci_native_dummy", "cp311-cp311-manylinux_2_28_x86_64")
    monkeypatch.setenv("PIP_FIND_LINKS", f"{WHEELHOUSE} {links}")
    app = tmp_path / "tenant"
    shutil.copytree(SERVICES_DIR / "tenant", app, ignore=shutil.ignore_patterns("deployments", "__pycache__"))
    with (app / "requirements.txt").open("a") as requirements:
        requirements.write("amci-native-dummy==1.0\n")

    with pytest.raises(PackagingError, match=r"could not be packaged for Lambda: amci-native-dummy==1\.0"):
        package("tenant", "local", tmp_path / "out", project_dir=app)


def test_each_function_gets_a_role_of_its_own_and_a_function_without_permissions_fails_the_build(
        tmp_path: Path, offline_pip: None) -> None:
    app = tmp_path / "tenant"
    shutil.copytree(SERVICES_DIR / "tenant", app, ignore=shutil.ignore_patterns("__pycache__"))
    built = json.loads(package("tenant", "local", tmp_path / "out", project_dir=app).template_path.read_text())
    functions = [r["Properties"] for r in built["Resources"].values() if r["Type"] == "AWS::Serverless::Function"]
    assert {f["FunctionName"] for f in functions} >= {"amci-tenant-local-on_request", "amci-tenant-local-notify"}
    assert len({f["Role"]["Fn::GetAtt"][0] for f in functions}) == len(functions)  # tests/test_iam.py: the rest

    declared = json.loads((app / ".chalice" / "permissions.json").read_text())
    declared["functions"]["offboard"] = declared["functions"].pop("notify")
    (app / ".chalice" / "permissions.json").write_text(json.dumps(declared))
    with pytest.raises(PackagingError, match=r"no permissions for notify; permissions for offboard, which the app"):
        package("tenant", "local", tmp_path / "out", project_dir=app)


def _native_wheel(directory: Path, name: str, tag: str) -> None:
    files = {f"{name}/__init__.py": b"",
             f"{name}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
             f"{name}-1.0.dist-info/WHEEL": f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: {tag}\n".encode()}
    record = [f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
              f"{len(data)}" for path, data in files.items()] + [f"{name}-1.0.dist-info/RECORD,,"]
    files[f"{name}-1.0.dist-info/RECORD"] = "\n".join(record).encode()
    with zipfile.ZipFile(directory / f"{name}-1.0-{tag}.whl", "w") as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)
