"""The local cloud's own logic that needs no emulator: schedule expressions and template evaluation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from local import cfn
from local.provision import ProvisionError, provision
from shared.schedules import ScheduleError, parse

FRIDAY = datetime(2026, 11, 27, 4, 30, tzinfo=UTC)


@pytest.mark.parametrize(("expression", "timezone", "expected"), [
    ("cron(0 10 * * ? *)", "UTC", datetime(2026, 11, 27, 10, 0, tzinfo=UTC)),
    ("cron(0/15 * ? * MON-FRI *)", "UTC", datetime(2026, 11, 27, 4, 45, tzinfo=UTC)),
    ("cron(0 23 ? * 7 *)", "UTC", datetime(2026, 11, 28, 23, 0, tzinfo=UTC)),  # 7 = Saturday
    ("cron(0 0 L * ? *)", "UTC", datetime(2026, 11, 30, 0, 0, tzinfo=UTC)),
    ("cron(0 9 ? * 2#1 *)", "UTC", datetime(2026, 12, 7, 9, 0, tzinfo=UTC)),  # first Monday of December
    ("cron(0 12 ? * 6L *)", "UTC", datetime(2026, 11, 27, 12, 0, tzinfo=UTC)),  # last Friday of November
    ("cron(0 8 1 JAN,JUL ? 2027)", "UTC", datetime(2027, 1, 1, 8, 0, tzinfo=UTC)),
    ("cron(0 10 * * ? *)", "America/New_York", datetime(2026, 11, 27, 15, 0, tzinfo=UTC)),
    ("rate(5 minutes)", "UTC", FRIDAY + timedelta(minutes=5)),
    ("rate(1 day)", "UTC", FRIDAY + timedelta(days=1)),
    ("at(2026-11-27T06:00:00)", "Europe/Paris", datetime(2026, 11, 27, 5, 0, tzinfo=UTC)),
])
def test_schedule_expressions_fire_when_eventbridge_would(expression: str, timezone: str,
                                                          expected: datetime) -> None:
    assert parse(expression, timezone, anchor=FRIDAY).next_after(FRIDAY) == expected


@pytest.mark.parametrize(("expression", "message"), [
    ("rate(1 minutes)", "rate\\(1 minute\\)"),
    ("cron(0 10 * * *)", "6 fields"),
    ("cron(0 10 * * MON *)", "exactly one of day-of-month and day-of-week"),
    ("cron(0 10 15W * ? *)", "'W'"),
    ("cron(0 25 * * ? *)", "within 0-23"),
    ("every day", "expected rate"),
])
def test_bad_schedule_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        parse(expression)


def test_an_at_schedule_in_the_past_never_fires() -> None:
    assert parse("at(2020-01-01T00:00:00)").next_after(FRIDAY) is None


def test_intrinsics_resolve_against_parameters_conditions_and_resources() -> None:
    ctx = cfn.Context({"Stage": "prod", "Email": ""}, {"AWS::Region": "eu-west-1"},
                      attributes={"Queue": {"Ref": "https://q", "Arn": "arn:q"}})
    cfn.evaluate_conditions({"Conditions": {"HasEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Email"}, ""]}]}}}, ctx)

    resolved = cfn.resolve({"Name": {"Fn::Sub": "amci-${Stage}-${AWS::Region}-${Queue.Arn}"},
                            "Mail": {"Fn::If": ["HasEmail", {"Ref": "Email"}, {"Ref": "AWS::NoValue"}]},
                            "Both": {"Fn::Join": [",", [{"Ref": "Queue"}, {"Fn::GetAtt": ["Queue", "Arn"]}]]}}, ctx)

    assert resolved == {"Name": "amci-prod-eu-west-1-arn:q", "Both": "https://q,arn:q"}


def test_resources_are_created_after_what_they_refer_to() -> None:
    resources = {"Rule": {"Properties": {"Target": {"Fn::GetAtt": ["Queue", "Arn"]}}},
                 "Queue": {"Properties": {"RedrivePolicy": {"deadLetterTargetArn": {"Fn::Sub": "${Dlq.Arn}"}}}},
                 "Dlq": {"Properties": {}}}

    assert cfn.creation_order(resources) == ["Dlq", "Queue", "Rule"]


def test_a_reference_to_nothing_and_circular_references_are_errors() -> None:
    with pytest.raises(cfn.TemplateError, match="Missing is referenced but not defined"):
        cfn.resolve({"Ref": "Missing"}, cfn.Context({}, {}))
    with pytest.raises(cfn.TemplateError, match="circular"):
        cfn.creation_order({"A": {"Properties": {"Ref": "B"}}, "B": {"Properties": {"Ref": "A"}}})


def test_what_the_local_cloud_cannot_provision_is_refused_not_dropped(tmp_path: Path) -> None:
    template = tmp_path / "t.yaml"
    template.write_text("Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      FancyNewFeature: true\n"
                        "  F:\n    Type: AWS::Lambda::Url\n")

    with pytest.raises(ProvisionError, match="F: resource type AWS::Lambda::Url is not supported"):
        provision(template, "t", {}, lambda name: None, "us-east-1", "123456789012")
    template.write_text("Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      FancyNewFeature: true\n")
    with pytest.raises(ProvisionError, match=r"Q \(AWS::SQS::Queue\): properties not supported locally: FancyNew"):
        provision(template, "t", {}, lambda name: None, "us-east-1", "123456789012")


def test_a_busy_port_is_a_clear_error_not_a_hang() -> None:
    import socket

    from local.cloud import LocalCloud

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"port {port} is in use"):
            LocalCloud(port=port).start()
