"""Each Lambda function's IAM policy, made from its app's ``.chalice/permissions.json`` for any stage.

An app declares its statements once, by name (the name becomes the ``Sid``), and each function lists the ones it
needs, plus the services through which it uses the platform key::

    {"statements": {"PublishStatus": {
        "Action": ["sns:Publish"],
        "Resource": "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:amci-${Stage}-status"}},
     "functions": {"notify": {"statements": ["PublishStatus"], "platformKeyVia": ["sns"]}}}

``${Stage}`` is replaced by the stage being packaged; CloudFormation's pseudo parameters (``${AWS::Partition}``,
``${AWS::Region}``, ``${AWS::AccountId}``) are left to CloudFormation (the string becomes an ``Fn::Sub``), so a
policy names the resources of its own account and region; ``*`` stands for a region or account only where a
resource may be elsewhere (a tenant's stacks and buckets). Actions are explicit: no ``*`` in an action.

What every function needs is added here, not declared by each app:

- ``WriteOwnLogs``: its own log group, ``/aws/lambda/<function name>`` (the name is ``{app}-{stage}-{function}``,
  as ``chalice deploy`` names it and as the platform's state machines call it);
- ``Tracing``: X-Ray (which takes no resource but ``*``), only when the function's stage traces;
- ``UsePlatformKey``: ``kms:Decrypt`` and ``kms:GenerateDataKey`` on the platform key, only through the services
  named in ``platformKeyVia`` (``kms:ViaService``): the queues, topic, tables, buckets, secrets and schedules it uses
  are encrypted with that key. The key is named by its ARN when the packaging is given it (``amci deploy`` knows it
  from the platform stack's outputs before it packages); otherwise (``amci package`` of a stage not yet deployed)
  as any key aliased ``alias/amci-<stage>`` (``kms:ResourceAliases``).

A statement is an ``Allow`` unless it says ``"Effect": "Deny"``: a deny keeps a broad grant off what it must not
reach (the tenant app may wire any existing bucket a tenant names, but never one of the platform's own).

``amci/package.py`` puts each function's policy in a role of its own in the packaged ``sam.json``;
``tests/test_iam.py`` checks the policies against the AWS calls each function makes on the local cloud.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILE = "permissions.json"
_OURS = re.compile(r"\$\{Stage\}")
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_PSEUDO = {"AWS::Partition", "AWS::Region", "AWS::AccountId"}
_KEY_SERVICES = {"sqs", "sns", "s3", "dynamodb", "secretsmanager", "scheduler"}
_STATEMENT_KEYS = {"Effect", "Action", "Resource", "Condition"}
_EFFECTS = {"Allow", "Deny"}


class PermissionsError(ValueError):
    """An app's permissions.json is malformed or inconsistent."""


@dataclass(frozen=True)
class Permissions:
    """An app's declared statements and what each function takes of them."""

    statements: Mapping[str, Mapping[str, Any]]
    functions: Mapping[str, Mapping[str, Any]]

    def policy(self, function: str, stage: str, function_name: str, traced: bool,
               platform_key_arn: str | None = None) -> dict[str, Any]:
        """Function ``function``'s policy document for ``stage`` (``function_name``: its deployed name; with
        ``platform_key_arn``, the platform key is named by it)."""
        if function not in self.functions:
            raise PermissionsError(f"no permissions declared for function {function}")
        declared = self.functions[function]
        statements = [_logs(function_name)]
        statements += [{"Sid": name, "Effect": "Allow", **_render(self.statements[name], stage)}
                       for name in declared["statements"]]
        if declared.get("platformKeyVia"):
            statements.append(_platform_key(stage, declared["platformKeyVia"], platform_key_arn))
        if traced:
            statements.append({"Sid": "Tracing", "Effect": "Allow",
                               "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "Resource": "*"})
        return {"Version": "2012-10-17", "Statement": statements}


def load(project_dir: Path) -> Permissions:
    """The app's ``.chalice/permissions.json``, checked: every statement named exists and is used, and no action
    is a wildcard."""
    path = project_dir / ".chalice" / FILE
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PermissionsError(f"{path}: {exc}") from None
    statements, functions = raw.get("statements", {}), raw.get("functions", {})
    problems = [p for name, statement in statements.items() for p in _statement_problems(name, statement)]
    for function, declared in functions.items():
        problems += _function_problems(function, declared, statements)
    unused = sorted(set(statements) - {s for d in functions.values() for s in d.get("statements", [])})
    if unused:
        problems.append(f"statements no function uses: {', '.join(unused)}")
    if problems:
        raise PermissionsError(f"{path}: " + "; ".join(problems))
    return Permissions(statements, functions)


def _statement_problems(name: str, statement: Mapping[str, Any]) -> list[str]:
    problems = []
    if set(statement) - _STATEMENT_KEYS or not {"Action", "Resource"} <= set(statement):
        problems.append(f"statement {name}: expected Action, Resource and optionally Effect, Condition")
    if statement.get("Effect", "Allow") not in _EFFECTS:
        problems.append(f"statement {name}: Effect is Allow or Deny, not {statement['Effect']}")
    wild = [a for a in as_list(statement.get("Action")) if "*" in a]
    if wild:
        problems.append(f"statement {name}: actions must be explicit, not {', '.join(wild)}")
    unknown = {p for p in _PLACEHOLDER.findall(json.dumps(statement)) if p != "Stage" and p not in _PSEUDO}
    if unknown:
        problems.append(f"statement {name}: unknown placeholders {', '.join(sorted(unknown))}")
    return problems


def _function_problems(function: str, declared: Mapping[str, Any], statements: Mapping[str, Any]) -> list[str]:
    problems = []
    missing = [s for s in declared.get("statements", []) if s not in statements]
    if missing:
        problems.append(f"function {function}: no statement {', '.join(missing)}")
    services = set(declared.get("platformKeyVia", [])) - _KEY_SERVICES
    if services:
        problems.append(f"function {function}: platformKeyVia takes {', '.join(sorted(_KEY_SERVICES))}, "
                        f"not {', '.join(sorted(services))}")
    return problems


def function_name(app_name: str, stage: str, function: str) -> str:
    """A function's deployed name, as ``chalice deploy`` gives it (and the local cloud, and the state machines)."""
    return f"{app_name}-{stage}-{function}"


def _logs(name: str) -> dict[str, Any]:
    group = f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:/aws/lambda/{name}"
    return {"Sid": "WriteOwnLogs", "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [{"Fn::Sub": group}, {"Fn::Sub": f"{group}:*"}]}


def _platform_key(stage: str, services: list[str], key_arn: str | None) -> dict[str, Any]:
    via = {"StringEquals": {"kms:ViaService": [{"Fn::Sub": f"{service}.${{AWS::Region}}.amazonaws.com"}
                                               for service in sorted(services)]}}
    return {"Sid": "UsePlatformKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": key_arn or "*",  # without the key's ARN (not known yet), its alias and the services bound it
            "Condition": via if key_arn else {
                "ForAnyValue:StringEquals": {"kms:ResourceAliases": f"alias/amci-{stage}"}, **via}}


def _render(value: Any, stage: str) -> Any:
    """``${Stage}`` replaced; a string still holding a pseudo parameter becomes an ``Fn::Sub``."""
    if isinstance(value, str):
        text = _OURS.sub(stage, value)
        return {"Fn::Sub": text} if _PLACEHOLDER.search(text) else text
    if isinstance(value, list):
        return [_render(v, stage) for v in value]
    if isinstance(value, dict):
        return {k: _render(v, stage) for k, v in value.items()}
    return value


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
