"""Reading CloudFormation templates: conditions, intrinsic functions and the order resources are created in.

Only what our templates use is supported; anything else raises, so a template can't silently mean something
else locally than on AWS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_SUB_TOKEN = re.compile(r"\$\{([^}!]+)\}")
NO_VALUE = object()  # AWS::NoValue: the property is removed


class TemplateError(ValueError):
    """The template uses something the local cloud cannot evaluate, or refers to something undefined."""


def load(path: Path) -> dict[str, Any]:
    """Load a JSON or YAML template written with long-form intrinsics (``Fn::Sub``, not ``!Sub``)."""
    return yaml.safe_load(path.read_text())


@dataclass
class Context:
    """What intrinsics resolve against: parameters, pseudo parameters, and attributes of created resources."""

    parameters: dict[str, Any]
    pseudo: dict[str, str]
    conditions: dict[str, bool] = field(default_factory=dict)
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> {"Ref": ..., "Arn": ...}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        for scope in (self.pseudo, self.parameters):
            if name in scope:
                return scope[name]
        return self.attribute(name, "Ref")

    def attribute(self, logical_id: str, attribute: str) -> Any:
        if logical_id not in self.attributes:
            raise TemplateError(f"{logical_id} is referenced but not defined or not yet created")
        values = self.attributes[logical_id]
        if attribute not in values:
            raise TemplateError(f"{logical_id} has no attribute {attribute} locally (known: {', '.join(values)})")
        return values[attribute]


def parameter_values(template: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Parameter values: overrides, else defaults; a parameter with neither raises."""
    values = {}
    for name, spec in template.get("Parameters", {}).items():
        if name in overrides:
            values[name] = str(overrides[name])
        elif "Default" in spec:
            values[name] = str(spec["Default"])
        else:
            raise TemplateError(f"parameter {name} has no default and no value was given")
    unknown = set(overrides) - set(values)
    if unknown:
        raise TemplateError(f"unknown parameters: {', '.join(sorted(unknown))}")
    return values


def evaluate_conditions(template: Mapping[str, Any], ctx: Context) -> None:
    for name, expression in template.get("Conditions", {}).items():
        ctx.conditions[name] = bool(resolve(expression, ctx))


def resolve(value: Any, ctx: Context) -> Any:
    """Resolve every intrinsic function inside ``value``."""
    if isinstance(value, list):
        return [item for item in (resolve(v, ctx) for v in value) if item is not NO_VALUE]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (key, arg), = value.items()
        if key in _FUNCTIONS:
            return _FUNCTIONS[key](arg, ctx)
        if key == "Condition" and isinstance(arg, str) and arg in ctx.conditions:
            return ctx.conditions[arg]
    resolved = {k: resolve(v, ctx) for k, v in value.items()}
    return {k: v for k, v in resolved.items() if v is not NO_VALUE}


def _sub(arg: Any, ctx: Context) -> str:
    text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], resolve(arg[1], ctx))

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables:
            return str(variables[name])
        if "." in name:
            logical_id, attribute = name.split(".", 1)
            return str(ctx.attribute(logical_id, attribute))
        return str(ctx.ref(name))

    return _SUB_TOKEN.sub(replace, text)


def _get_att(arg: Any, ctx: Context) -> Any:
    logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
    return ctx.attribute(logical_id, attribute)


def _if(arg: Any, ctx: Context) -> Any:
    name, when_true, when_false = arg
    return resolve(when_true if ctx.conditions[name] else when_false, ctx)


_FUNCTIONS = {
    "Ref": lambda arg, ctx: ctx.ref(arg),
    "Fn::Sub": _sub,
    "Fn::GetAtt": _get_att,
    "Fn::Join": lambda arg, ctx: str(arg[0]).join(str(v) for v in resolve(arg[1], ctx)),
    "Fn::Select": lambda arg, ctx: resolve(arg[1], ctx)[int(resolve(arg[0], ctx))],
    "Fn::Split": lambda arg, ctx: str(resolve(arg[1], ctx)).split(arg[0]),
    "Fn::If": _if,
    "Fn::Equals": lambda arg, ctx: resolve(arg[0], ctx) == resolve(arg[1], ctx),
    "Fn::Not": lambda arg, ctx: not resolve(arg[0], ctx),
    "Fn::And": lambda arg, ctx: all(resolve(v, ctx) for v in arg),
    "Fn::Or": lambda arg, ctx: any(resolve(v, ctx) for v in arg),
}


def creation_order(resources: Mapping[str, Any]) -> list[str]:
    """Logical ids in an order where every resource comes after those it refers to."""
    dependencies = {name: _references(spec, set(resources)) - {name} for name, spec in resources.items()}
    order: list[str] = []
    while dependencies:
        ready = sorted(name for name, deps in dependencies.items() if not deps - set(order))
        if not ready:
            raise TemplateError(f"circular references between {', '.join(sorted(dependencies))}")
        order.extend(ready)
        for name in ready:
            del dependencies[name]
    return order


def _references(value: Any, names: set[str]) -> set[str]:
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= _references(item, names)
    elif isinstance(value, dict):
        for key, arg in value.items():
            if key in ("Ref", "DependsOn") and isinstance(arg, str | list):
                found |= {a for a in ([arg] if isinstance(arg, str) else arg) if a in names}
            elif key == "Fn::GetAtt":
                found |= {(arg.split(".")[0] if isinstance(arg, str) else arg[0])} & names
            elif key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                found |= {token.split(".")[0] for token in _SUB_TOKEN.findall(text)} & names
            found |= _references(arg, names)
    return found
