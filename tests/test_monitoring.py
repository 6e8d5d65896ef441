"""infra/monitoring.yaml, provisioned into the local cloud's account for a stage of its own with the platform stack's
outputs as its parameters (as the deploy passes them): every dead-letter queue, app and state machine alarmed and on
the dashboard, the stacks grouped as one application, the cost allocation tags on everything.

moto stores alarms but never evaluates them, so :func:`_state` decides as CloudWatch would from the alarm's own
metric query, over data published under the metric's identity the way SQS, Lambda and Step Functions publish it.
"""

from __future__ import annotations

import ast
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from amci.deploy import app_stack, bootstrap_stack, monitoring_stack, platform_stack
from local import cfn
from local.cloud import ACCOUNT_ID, REGION, LocalCloud
from local.provision import INFRA, ProvisionError, Stack, provision
from shared import aws, lake
from shared.config import SERVICES

STAGE = f"mon{uuid.uuid4().hex[:6]}"
TEMPLATE = INFRA / "monitoring.yaml"
STAGE_B = Path(__file__).resolve().parent.parent / "services" / "datalake" / "glue" / "stage_b.py"
PIPELINE = STAGE_B.parent.parent / "chalicelib" / "pipeline.py"
TAGS = {"amci:stage": STAGE, "amci:component": "monitoring"}


def _stack_names(stage: str) -> list[str]:
    """The stacks the deploy leaves: bootstrap, platform, one per app, and the monitoring stack itself."""
    return [bootstrap_stack(stage), platform_stack(stage), *(app_stack(stage, service) for service in SERVICES),
            monitoring_stack(stage)]


def _provision(cloud: LocalCloud, stage: str) -> Stack:
    template = cfn.load(TEMPLATE)
    outputs = {name: cloud.outputs[name] for name in template["Parameters"] if name in cloud.outputs}
    return provision(TEMPLATE, monitoring_stack(stage), {**outputs, "Stage": stage, "Version": "v1.2.3"},
                     aws.client, REGION, ACCOUNT_ID)


@pytest.fixture(scope="module")
def monitoring(cloud: LocalCloud) -> Stack:
    # The local cloud provisions its templates resource by resource, so no CloudFormation stack exists under the
    # names the application associates; stand-ins take their place (AppRegistry, as on AWS, refuses a missing one).
    for name in _stack_names(STAGE):
        aws.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(
            {"Resources": {"Marker": {"Type": "AWS::SNS::Topic"}}}))
    return _provision(cloud, STAGE)


@pytest.fixture(scope="module")
def alarms(monitoring: Stack) -> dict[str, dict[str, Any]]:
    found = aws.client("cloudwatch").describe_alarms(AlarmNamePrefix=f"amci-{STAGE}-")["MetricAlarms"]
    return {alarm["AlarmName"]: alarm for alarm in found}


def _platform_resources(cloud: LocalCloud, kind: str) -> dict[str, dict[str, Any]]:
    """The platform stack's resources of one type: logical id -> resolved properties."""
    assert cloud.stack is not None
    return {logical_id: cfn.resolve(spec["Properties"], cloud.stack.context)
            for logical_id, spec in cloud.stack.template["Resources"].items() if spec["Type"] == kind}


def _dead_letter_queues(cloud: LocalCloud) -> set[str]:
    """Every queue the platform parks failed work in: a redrive target, or named a DLQ (stage B writes its own)."""
    queues = _platform_resources(cloud, "AWS::SQS::Queue")
    arns = {cloud.stack.resources[logical_id]["Arn"]: p["QueueName"] for logical_id, p in queues.items()}
    targets = {arns[p["RedrivePolicy"]["deadLetterTargetArn"]] for p in queues.values() if "RedrivePolicy" in p}
    return targets | {p["QueueName"] for p in queues.values() if p["QueueName"].endswith("-dlq")}


def _functions(cloud: LocalCloud, service: str) -> set[str]:
    """The app's Lambda functions as Chalice names them for the monitoring test's stage."""
    app = cloud.apps[service].app
    return {f"{app.app_name}-{STAGE}-{handler}" for handler in app.handler_map}


def _metric_stats(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics of a metric math alarm, after checking that its one expression adds up every one of them."""
    stats = [query for query in alarm["Metrics"] if "MetricStat" in query]
    (expression,) = [query for query in alarm["Metrics"] if query["ReturnData"]]
    summed = re.findall(r"FILL\((\w+), 0\)", expression["Expression"])
    assert sorted(summed) == sorted(query["Id"] for query in stats), alarm["AlarmName"]
    return stats


def _dimension(metric: dict[str, Any], name: str) -> str:
    (value,) = [d["Value"] for d in metric["Dimensions"] if d["Name"] == name]
    return value


# -- what CloudWatch would decide ---------------------------------------------------------------------------------


_OPERATORS = {"GreaterThanThreshold": float.__gt__, "GreaterThanOrEqualToThreshold": float.__ge__,
              "LessThanThreshold": float.__lt__, "LessThanOrEqualToThreshold": float.__le__}
_FILL_SUM = re.compile(r"^FILL\((\w+), 0\)( \+ FILL\((\w+), 0\))*$")


def _publish(namespace: str, metric: str, dimensions: dict[str, str], value: float, periods_ago: int = 0) -> None:
    """A datapoint as the service itself publishes it, inside the period ``periods_ago`` five-minute periods back."""
    aws.client("cloudwatch").put_metric_data(Namespace=namespace, MetricData=[{
        "MetricName": metric, "Value": value, "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
        "Timestamp": datetime.now(UTC) - timedelta(seconds=300 * periods_ago + 30)}])


def _statistic(metric: dict[str, Any], stat: str, period: int, ago: int, now: datetime) -> float | None:
    """One period's statistic of a metric, None when it has no data (what CloudWatch hands the alarm)."""
    points = aws.client("cloudwatch").get_metric_statistics(
        Namespace=metric["Namespace"], MetricName=metric["MetricName"], Dimensions=metric.get("Dimensions", []),
        StartTime=now - timedelta(seconds=period * (ago + 1)), EndTime=now - timedelta(seconds=period * ago),
        Period=period, Statistics=[stat])["Datapoints"]
    return points[0][stat] if points else None


def _state(alarm: dict[str, Any]) -> str:
    """ALARM or OK as CloudWatch would decide now: the alarm's query over its last EvaluationPeriods periods,
    DatapointsToAlarm of them breaching, missing data treated as the alarm says. Metric math: the sum of FILLed
    metrics the alarms use (anything else raises); a period where no metric has data is missing."""
    now = datetime.now(UTC) + timedelta(seconds=1)
    values: list[float | None] = []
    for ago in range(alarm["EvaluationPeriods"]):
        if alarm.get("Metrics"):
            (expression,) = [q for q in alarm["Metrics"] if q["ReturnData"]]
            assert _FILL_SUM.match(expression["Expression"]), expression["Expression"]
            stats = {q["Id"]: q["MetricStat"] for q in _metric_stats(alarm)}
            found = [_statistic(stats[i]["Metric"], stats[i]["Stat"], stats[i]["Period"], ago, now)
                     for i in re.findall(r"FILL\((\w+), 0\)", expression["Expression"])]
            present = [v for v in found if v is not None]
            values.append(sum(present) if present else None)
        else:
            values.append(_statistic(alarm, alarm["Statistic"], alarm["Period"], ago, now))
    if all(v is None for v in values):
        assert alarm["TreatMissingData"] in ("notBreaching", "breaching")
        return "ALARM" if alarm["TreatMissingData"] == "breaching" else "OK"
    breaching = _OPERATORS[alarm["ComparisonOperator"]]
    breaches = sum(1 for v in values if v is not None and breaching(v, alarm["Threshold"]))
    return "ALARM" if breaches >= alarm.get("DatapointsToAlarm", alarm["EvaluationPeriods"]) else "OK"


# -- the contract with the deploy ---------------------------------------------------------------------------------


def test_every_parameter_but_stage_and_version_is_a_platform_output(cloud: LocalCloud) -> None:
    parameters = set(cfn.load(TEMPLATE)["Parameters"]) - {"Stage", "Version"}
    assert parameters - set(cloud.outputs) == set()


def test_a_stack_that_does_not_exist_cannot_join_the_application(cloud: LocalCloud) -> None:
    with pytest.raises(ProvisionError, match=r"StackAssociation .*No CloudFormation stack called 'amci-"):
        _provision(cloud, f"nos{uuid.uuid4().hex[:6]}")


# -- alarms -------------------------------------------------------------------------------------------------------


def test_every_alarm_notifies_the_status_topic_of_alarm_and_recovery(cloud: LocalCloud,
                                                                    alarms: dict[str, dict[str, Any]]) -> None:
    assert len(alarms) == 8 + 3 * len(SERVICES)
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [cloud.outputs["StatusTopicArn"]], alarm["AlarmName"]
        assert alarm["OKActions"] == [cloud.outputs["StatusTopicArn"]], alarm["AlarmName"]
        assert alarm["ActionsEnabled"] and alarm["TreatMissingData"] == "notBreaching", alarm["AlarmName"]


def test_every_dead_letter_queue_has_an_alarm_on_its_first_message(cloud: LocalCloud,
                                                                  alarms: dict[str, dict[str, Any]]) -> None:
    watched = {_dimension(a, "QueueName"): a for a in alarms.values() if a.get("Namespace") == "AWS/SQS"}
    assert set(watched) == _dead_letter_queues(cloud)
    for alarm in watched.values():
        assert (alarm["MetricName"], alarm["Statistic"]) == ("ApproximateNumberOfMessagesVisible", "Maximum")
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


@pytest.mark.parametrize("output", ["TenantRequestDlq", "WorkflowRequestDlq", "AdsReportingRequestDlq",
                                    "SpReportingRequestDlq", "DatalakeRequestDlq", "DatalakeEventsDlq",
                                    "DatalakeStageADlq", "DatalakeStageBDlq"])
def test_a_message_in_a_dead_letter_queue_sets_off_its_alarm(cloud: LocalCloud, alarms: dict[str, dict[str, Any]],
                                                             output: str) -> None:
    queue = cloud.outputs[output]
    (alarm,) = [a for a in alarms.values() if a.get("Dimensions") == [{"Name": "QueueName", "Value": queue}]]
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    assert _state(alarm) == "OK"  # SQS publishes nothing for an idle empty queue

    body = f"monitoring-test-{uuid.uuid4().hex}"
    sqs.send_message(QueueUrl=url, MessageBody=body)
    try:
        visible = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        # what SQS sends CloudWatch every minute for the queue
        _publish("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": queue},
                 float(visible["Attributes"]["ApproximateNumberOfMessages"]))
        assert _state(alarm) == "ALARM"
    finally:
        _delete(url, body)


def _delete(url: str, body: str) -> None:
    """Take the test's message out again; whatever else was received on the way goes back at once."""
    sqs, others = aws.client("sqs"), []
    try:
        for _ in range(50):
            for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                               VisibilityTimeout=60).get("Messages", []):
                if message["Body"] == body:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                    return
                others.append(message["ReceiptHandle"])
        raise AssertionError(f"the test's message is still in {url}")
    finally:
        for handle in others:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)


@pytest.mark.parametrize("service", SERVICES)
def test_each_apps_functions_have_an_errors_and_a_throttles_alarm(cloud: LocalCloud,
                                                                  alarms: dict[str, dict[str, Any]],
                                                                  service: str) -> None:
    dashed = service.replace("_", "-")
    for kind, metric in (("errors", "Errors"), ("throttles", "Throttles")):
        alarm = alarms[f"amci-{STAGE}-{dashed}-function-{kind}"]
        stats = _metric_stats(alarm)
        assert {_dimension(s["MetricStat"]["Metric"], "FunctionName") for s in stats} == _functions(cloud, service)
        assert {(s["MetricStat"]["Metric"]["Namespace"], s["MetricStat"]["Metric"]["MetricName"],
                 s["MetricStat"]["Stat"]) for s in stats} == {("AWS/Lambda", metric, "Sum")}
        assert len(stats) <= 10  # CloudWatch's limit for a metric math alarm


@pytest.mark.parametrize("service", SERVICES)
def test_one_unhandled_error_sets_off_the_apps_errors_alarm(alarms: dict[str, dict[str, Any]], service: str) -> None:
    dashed = service.replace("_", "-")
    alarm = alarms[f"amci-{STAGE}-{dashed}-function-errors"]
    assert _state(alarm) == "OK"  # no function ran

    _publish("AWS/Lambda", "Errors", {"FunctionName": f"amci-{dashed}-{STAGE}-notify"}, 0)
    _publish("AWS/Lambda", "Errors", {"FunctionName": f"amci-{dashed}-{STAGE}-on_request"}, 0)
    assert _state(alarm) == "OK"  # ran without errors

    _publish("AWS/Lambda", "Errors", {"FunctionName": f"amci-{dashed}-{STAGE}-diagnostics_probe"}, 1)
    assert _state(alarm) == "ALARM"


def test_throttling_alarms_when_it_lasts_two_of_three_periods(alarms: dict[str, dict[str, Any]]) -> None:
    alarm = alarms[f"amci-{STAGE}-workflow-function-throttles"]
    _publish("AWS/Lambda", "Throttles", {"FunctionName": f"amci-workflow-{STAGE}-execution_poll"}, 3, periods_ago=2)
    assert _state(alarm) == "OK"  # one burst ten minutes ago

    _publish("AWS/Lambda", "Throttles", {"FunctionName": f"amci-workflow-{STAGE}-on_request"}, 1)
    assert _state(alarm) == "ALARM"


def test_every_state_machine_has_its_failures_alarmed(cloud: LocalCloud, alarms: dict[str, dict[str, Any]]) -> None:
    machines = {cloud.stack.resources[logical_id]["Arn"]
                for logical_id in _platform_resources(cloud, "AWS::StepFunctions::StateMachine")}
    watched = [(_dimension(s["MetricStat"]["Metric"], "StateMachineArn"), s["MetricStat"]["Metric"]["MetricName"])
               for a in alarms.values() if a.get("Metrics") for s in _metric_stats(a)
               if s["MetricStat"]["Metric"]["Namespace"] == "AWS/States"]
    assert sorted(watched) == sorted((arn, metric) for arn in machines
                                     for metric in ("ExecutionsFailed", "ExecutionsTimedOut"))


def test_a_timed_out_report_sets_off_its_services_alarm(cloud: LocalCloud, alarms: dict[str, dict[str, Any]]) -> None:
    alarm = alarms[f"amci-{STAGE}-sp-reporting-state-machine-failures"]
    reports = {"StateMachineArn": cloud.outputs["SpReportingReportsStateMachineArn"]}
    _publish("AWS/States", "ExecutionsSucceeded", reports, 4)
    assert _state(alarm) == "OK"

    _publish("AWS/States", "ExecutionsTimedOut", reports, 1)
    assert _state(alarm) == "ALARM"


# -- the dashboard ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard(monitoring: Stack) -> dict[str, Any]:
    body = aws.client("cloudwatch").get_dashboard(DashboardName=f"amci-{STAGE}")["DashboardBody"]
    return json.loads(body)  # type: ignore[no-any-return]


def _graphed(dashboard: dict[str, Any]) -> set[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """(namespace, metric, dimensions) of every metric line on the dashboard."""
    lines = [m for w in dashboard["widgets"] for m in w["properties"].get("metrics", []) if isinstance(m, list)]
    assert all("." not in m[:2] for m in lines)  # no shorthand: every line says what it shows
    return {(m[0], m[1], tuple(zip(m[2:-1:2], m[3:-1:2], strict=True))) for m in lines}


def test_the_dashboard_shows_every_queue(cloud: LocalCloud, dashboard: dict[str, Any]) -> None:
    graphed = _graphed(dashboard)
    for queue in (p["QueueName"] for p in _platform_resources(cloud, "AWS::SQS::Queue").values()):
        for metric in ("ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"):
            assert ("AWS/SQS", metric, (("QueueName", queue),)) in graphed, (queue, metric)


def test_the_dashboard_shows_every_function_of_every_app(cloud: LocalCloud, dashboard: dict[str, Any]) -> None:
    graphed = _graphed(dashboard)
    for function in (f for service in SERVICES for f in _functions(cloud, service)):
        for metric in ("Errors", "Throttles", "Duration"):
            assert ("AWS/Lambda", metric, (("FunctionName", function),)) in graphed, (function, metric)


def test_the_dashboard_shows_every_state_machine_and_the_reports_and_executions(cloud: LocalCloud,
                                                                               dashboard: dict[str, Any]) -> None:
    graphed = _graphed(dashboard)
    for logical_id in _platform_resources(cloud, "AWS::StepFunctions::StateMachine"):
        arn = cloud.stack.resources[logical_id]["Arn"]
        for metric in ("ExecutionsFailed", "ExecutionsTimedOut"):
            assert ("AWS/States", metric, (("StateMachineArn", arn),)) in graphed, (logical_id, metric)
    for output in ("WorkflowExecutionsStateMachineArn", "AdsReportingReportsStateMachineArn",
                   "SpReportingReportsStateMachineArn"):
        for metric in ("ExecutionsStarted", "ExecutionsSucceeded", "ExecutionTime"):
            assert ("AWS/States", metric, (("StateMachineArn", cloud.outputs[output]),)) in graphed


def _lake_metrics() -> set[str]:
    """The metric names the lake publishes: stage B's totals (``StageB._metrics``: each, capitalized), and what stage
    A and the batcher count (``pipeline.put_metrics`` calls)."""
    tree = ast.parse(STAGE_B.read_text())
    (totals,) = [n.value for n in ast.walk(tree) if isinstance(n, ast.Assign) and isinstance(n.value, ast.Dict)
                 and any(getattr(t, "attr", "") == "totals" for t in n.targets)]
    counted = [n.args[1] for n in ast.walk(ast.parse(PIPELINE.read_text()))
               if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "put_metrics"]
    return {key.value.capitalize() for key in totals.keys} | {key.value for d in counted for key in d.keys}


def test_the_dashboard_shows_every_metric_the_lake_publishes(dashboard: dict[str, Any]) -> None:
    metrics, namespace = _lake_metrics(), lake.METRICS_NAMESPACE
    assert metrics == {"Files", "Rows", "Bytes", "Filtered", "Rejected", "Quarantined", "Objects",
                       "ObjectsQuarantined", "RunsFailed"}
    searched = {m["expression"] for w in dashboard["widgets"] for m in w["properties"].get("metrics", [])
                if isinstance(m, dict)}
    for metric in metrics:
        assert f"SEARCH('{{{namespace},Dataset}} MetricName=\"{metric}\"', 'Sum', 300)" in searched


def test_the_dashboard_shows_the_state_of_every_alarm(dashboard: dict[str, Any],
                                                      alarms: dict[str, dict[str, Any]]) -> None:
    (widget,) = [w for w in dashboard["widgets"] if w["type"] == "alarm"]
    assert sorted(widget["properties"]["alarms"]) == sorted(a["AlarmArn"] for a in alarms.values())


# -- the application and the tags ---------------------------------------------------------------------------------


def test_the_application_groups_every_stack_the_deploy_leaves(monitoring: Stack) -> None:
    associated = aws.client("servicecatalog-appregistry").list_associated_resources(
        application=f"amci-{STAGE}")["resources"]
    assert sorted(r["name"] for r in associated) == sorted(_stack_names(STAGE))
    assert {r["resourceType"] for r in associated} == {"CFN_STACK"}
    attributes = cfn.resolve(monitoring.template["Resources"]["StageAttributes"]["Properties"], monitoring.context)
    assert attributes["Attributes"]["stage"] == STAGE and attributes["Attributes"]["version"] == "v1.2.3"
    assert monitoring.outputs["ApplicationTagKey"] == "awsApplication"


def _taggable(kind: str) -> bool:
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(REGION, kind).schema
    return bool(schema.get("tagging", {}).get("taggable"))


def test_every_taggable_resource_carries_the_cost_allocation_tags(monitoring: Stack) -> None:
    application_tag = {"awsApplication": monitoring.outputs["ApplicationTagValue"]}
    checked = []
    for logical_id, spec in monitoring.template["Resources"].items():
        if not _taggable(spec["Type"]):
            continue
        tags = cfn.resolve(spec["Properties"].get("Tags", {}), monitoring.context)
        tags = tags if isinstance(tags, dict) else {t["Key"]: t["Value"] for t in tags}  # AppRegistry: a map
        # the application cannot carry the tag it defines
        expected = TAGS if spec["Type"] == "AWS::ServiceCatalogAppRegistry::Application" else TAGS | application_tag
        assert tags == expected, logical_id
        checked.append(spec["Type"])
    assert set(checked) == {"AWS::ServiceCatalogAppRegistry::Application", "AWS::CloudWatch::Alarm",
                            "AWS::ServiceCatalogAppRegistry::AttributeGroup", "AWS::CloudWatch::Dashboard"}


def test_the_alarms_carry_the_tags_in_the_account(monitoring: Stack, alarms: dict[str, dict[str, Any]]) -> None:
    expected = TAGS | {"awsApplication": monitoring.outputs["ApplicationTagValue"]}
    for alarm in alarms.values():
        tags = aws.client("cloudwatch").list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]
        assert {t["Key"]: t["Value"] for t in tags} == expected, alarm["AlarmName"]
