"""Packaging the apps with ``chalice package``, failing loudly where Chalice only warns, and adding what Chalice
cannot express.

- Chalice prints "Could not install dependencies" and still exits 0 when a dependency has no wheel for Lambda
  (research/platform.md §4); a package without its dependencies would fail only once deployed. So we read its
  output, and open the zip to check that the shared library and every requirement made it in.
- Chalice has no partial-batch responses (aws/chalice#2029), yet every SQS handler here returns
  ``batchItemFailures`` (``shared/batch.py``); without ``ReportBatchItemFailures`` on the mapping Lambda would
  treat a batch with failures as a success and drop them. So every SQS event source in ``sam.json`` gets it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

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


def package(service: str, stage: str, out_dir: Path, project_dir: Path | None = None) -> Package:
    """Run ``chalice package`` for one app into ``out_dir/<service>``; raise PackagingError on any gap."""
    project_dir = project_dir or SERVICES_DIR / service
    target = out_dir / service
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    chalice = Path(sys.executable).with_name("chalice")
    result = subprocess.run([str(chalice), "package", "--stage", stage, str(target)], cwd=project_dir, env=env,
                            capture_output=True, text=True, check=False)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise PackagingError(f"{service}: chalice package exited {result.returncode}:\n{output[-2000:]}")
    if "Could not install dependencies" in output:
        missing = output.split("Could not install dependencies:", 1)[1].split("You will have to", 1)[0].split()
        raise PackagingError(f"{service}: these dependencies could not be packaged for Lambda: {', '.join(missing)}")
    _report_batch_item_failures(target / "sam.json")
    return _verified(service, project_dir, target)


def _report_batch_item_failures(template_path: Path) -> None:
    template = json.loads(template_path.read_text())
    for resource in template["Resources"].values():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event["Type"] == "SQS":
                event["Properties"]["FunctionResponseTypes"] = ["ReportBatchItemFailures"]
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
