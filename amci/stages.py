"""The apps' stage configuration (``services/*/.chalice/config.json``) and how the platform stack's outputs are
recorded into it: each app declares, in its stage's ``environment_variables``, the variables it needs; an output
fills the variable of the same name in UPPER_SNAKE_CASE (``StatusTopicArn`` -> ``STATUS_TOPIC_ARN``)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"


def output_variable(output_name: str) -> str:
    """``StatusTopicArn`` -> ``STATUS_TOPIC_ARN``; a one-letter word stays one: ``StageAQueue`` -> ``STAGE_A_QUEUE``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", output_name).upper()


def config_path(service: str, services_dir: Path = SERVICES_DIR) -> Path:
    return services_dir / service / ".chalice" / "config.json"


def stage_variables(service: str, stage: str) -> dict[str, str]:
    """The environment variables an app declares for ``stage``."""
    config = json.loads(config_path(service).read_text())
    return dict(config["stages"][stage]["environment_variables"])


def stack_outputs(described: Mapping[str, Any]) -> dict[str, str]:
    """``{name: value}`` from CloudFormation's ``describe-stacks`` answer (or its ``Outputs`` list alone)."""
    outputs = described["Stacks"][0]["Outputs"] if "Stacks" in described else described["Outputs"]
    return {output["OutputKey"]: output["OutputValue"] for output in outputs}


def record_outputs(service: str, stage: str, outputs: Mapping[str, str],
                   services_dir: Path = SERVICES_DIR) -> dict[str, str]:
    """Fill the app's ``stage`` variables from stack ``outputs``; returns the variables that changed."""
    path = config_path(service, services_dir)
    config = json.loads(path.read_text())
    variables = config["stages"][stage]["environment_variables"]
    recorded = {output_variable(name): str(value) for name, value in outputs.items()}
    changed = {key: recorded[key] for key in variables if key in recorded and variables[key] != recorded[key]}
    if changed:
        variables.update(changed)
        path.write_text(json.dumps(config, indent=2) + "\n")
    return changed


def ensure_stage(service: str, stage: str, services_dir: Path = SERVICES_DIR) -> bool:
    """Give the app a ``stage`` made from its ``prod`` stage unless it has one (``prod`` as a word of a value, as in
    ``"STAGE": "prod"`` or ``amci-prod-status``, becomes ``stage``); True when made. The deploy then records the
    platform stack's outputs into it. (The functions' policies are made for any stage: ``amci/permissions.py``.)"""
    path = config_path(service, services_dir)
    config = json.loads(path.read_text())
    if stage in config["stages"]:
        return False
    prod = json.dumps(config["stages"]["prod"])
    config["stages"][stage] = json.loads(re.sub(r"(?<![A-Za-z0-9])prod(?![A-Za-z0-9])", stage, prod))
    path.write_text(json.dumps(config, indent=2) + "\n")
    return True
