"""Starting Step Functions executions idempotently: the name is derived from the request, so a redelivered
request finds its execution instead of starting a second one."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from shared.aws import error_code
from shared.contracts import ContractError, FieldError

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
MAX_NAME = 80  # Step Functions execution names: 1-80 characters of [A-Za-z0-9_-]


def execution_name(*parts: str) -> str:
    """A valid, deterministic execution name; long names keep a hash of the whole so they stay unique."""
    name = _UNSAFE.sub("-", "-".join(p for p in parts if p))
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return f"{name[: MAX_NAME - 13]}-{digest}"


def start_execution(sfn: Any, state_machine_arn: str, name: str, payload: dict[str, Any]) -> tuple[str, bool]:
    """Start execution ``name``; returns ``(execution_arn, started)``, ``started`` False for a redelivery.

    Raises ContractError when ``name`` was used before for a different input: the sender reused a request id.
    """
    try:
        response = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload))
        return str(response["executionArn"]), True
    except Exception as exc:
        if error_code(exc) != "ExecutionAlreadyExists":
            raise
    arn = execution_arn(state_machine_arn, name)
    if json.loads(sfn.describe_execution(executionArn=arn)["input"]) != payload:
        raise ContractError(str(payload.get("requestType", "request")), [FieldError(
            "requestId", "an id not used before for a different request (Step Functions keeps names 90 days)",
            payload.get("requestId"))])
    return arn, False


def execution_arn(state_machine_arn: str, name: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
