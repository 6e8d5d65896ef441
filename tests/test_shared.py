"""The shared library's small pieces, without AWS."""

from __future__ import annotations

import io
import json
import logging

import pytest

from shared import logs
from shared.contracts import ContractError
from shared.diagnostics import DiagnoseRequest
from shared.orchestration import execution_name
from shared.status import Status, StatusMessage, state_machine_outcome


def test_a_contract_error_names_every_bad_field_and_what_was_expected() -> None:
    with pytest.raises(ContractError) as caught:
        DiagnoseRequest.parse({"requestType": "diagnose", "repeat": 0, "intervalSeconds": "soon", "extra": 1})

    assert [str(e) for e in caught.value.errors] == [
        "repeat: expected greater than or equal to 1 (got 0)",
        'intervalSeconds: expected a valid integer, unable to parse string as an integer (got "soon")',
        "extra: expected no such field (allowed: requestId, requestType, repeat, intervalSeconds)",
    ]
    assert str(caught.value).startswith("invalid diagnose request: repeat: expected")


def test_a_missing_field_is_reported_as_required() -> None:
    with pytest.raises(ContractError, match="requestType: expected a value: the field is required"):
        DiagnoseRequest.parse({})


def test_contracts_publish_their_json_schema() -> None:
    schema = DiagnoseRequest.json_schema()

    assert schema["$id"] == "amci:diagnose:v1"
    assert schema["properties"]["repeat"]["maximum"] == 5
    assert schema["additionalProperties"] is False


def test_logs_are_json_lines_with_bound_fields_and_no_secrets() -> None:
    stream = io.StringIO()
    logs.configure("tenant", level="INFO", stream=stream)
    try:
        with logs.bind(correlation_id="req-1"):
            logging.getLogger("amci.test").info(
                "token refreshed https://bucket.s3.amazonaws.com/k?X-Amz-Signature=abc123&X-Amz-Expires=60",
                extra={"access_token": "Atza|secret", "details": {"client_secret": "s", "profile": 7}})
    finally:
        logging.getLogger().removeHandler(next(h for h in logging.getLogger().handlers if getattr(h, "amci", False)))

    line = json.loads(stream.getvalue())
    assert (line["service"], line["correlation_id"], line["level"]) == ("tenant", "req-1", "INFO")
    assert line["access_token"] == logs.MASK and line["details"] == {"client_secret": logs.MASK, "profile": 7}
    assert "abc123" not in stream.getvalue() and "X-Amz-Signature=***" in line["message"]


def test_status_messages_carry_the_filter_attributes_and_a_safe_subject() -> None:
    message = StatusMessage(service="workflow", request_type="createExecution", status=Status.FAILED,
                            summary="AMC said no", tenant_id="démo\ncustomer" * 10)

    assert set(message.attributes()) == {"tenantId", "service", "requestType", "status"}
    assert len(message.subject) <= 100 and all(32 <= ord(c) < 127 for c in message.subject)


def test_a_caught_lambda_error_becomes_a_readable_failure() -> None:
    cause = json.dumps({"errorType": "DependencyUnavailable", "errorMessage": "QUEUE=q: gone"})
    message = state_machine_outcome({"outcome": "FAILED", "request": {
        "service": "tenant", "requestType": "diagnose", "requestId": "r1", "remaining": 1,
        "error": {"Error": "DependencyUnavailable", "Cause": cause}}})

    assert message.summary == "diagnose failed: DependencyUnavailable: QUEUE=q: gone"
    assert message.details == {"service": "tenant", "requestType": "diagnose", "requestId": "r1", "remaining": 1}


@pytest.mark.parametrize(("parts", "expected"), [
    (("tenant", "diagnose", "abc"), "tenant-diagnose-abc"),
    (("w", "x y/z"), "w-x-y-z"),
])
def test_execution_names_are_valid_and_deterministic(parts: tuple[str, ...], expected: str) -> None:
    assert execution_name(*parts) == expected


def test_long_execution_names_stay_unique() -> None:
    first, second = execution_name("a" * 100, "1"), execution_name("a" * 100, "2")

    assert len(first) == len(second) == 80 and first != second
