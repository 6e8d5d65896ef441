"""What every part of the data lake agrees on: how names become Glue names, where pending files are, and the one
way to ask it SQL.

``query`` runs SQL on Athena and returns the rows; the local cloud answers Athena with DuckDB over the same Glue
tables (``local/athena.py``), so the same call works on a laptop and in an AWS account.
"""

from __future__ import annotations

import importlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Key

from shared import aws

METRICS_NAMESPACE = "AMCInsights/DataLake"  # the lake's CloudWatch metrics, dimension Dataset
BUILTIN_STAGE_B = "builtin:convert"  # stage B's typed-Parquet conversion alone
TRANSFORMS_PACKAGE = "lake_transforms"  # custom datasets' transforms: vendored with the app, zipped for Glue
REPORT_SPECIFICATION = "report-specification"  # pre-stage metadata: an SP report's specification, for its table

_NOT_NAME = re.compile(r"[^a-z0-9]+")
_FINISHED = ("SUCCEEDED", "FAILED", "CANCELLED")


def normalise_name(name: str) -> str:
    """A Glue/Athena name, usable without quoting: lower case, runs of anything but letters and digits become one
    ``_``, none at the ends, and a leading digit gets a ``_`` before it (``Sales 14d (USD)`` -> ``sales_14d_usd``,
    ``1st`` -> ``_1st``). May return "" (a name of punctuation only): callers name such columns themselves."""
    cleaned = _NOT_NAME.sub("_", name.lower()).strip("_")
    return f"_{cleaned}" if cleaned[:1].isdigit() else cleaned


def entry_point(name: str) -> Any:
    """The function an entry point (``package.module:function``) names; ImportError or AttributeError if none."""
    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)


def put_metrics(dataset: str, counts: dict[str, int]) -> None:
    """Counts of the dataset's pipeline as CloudWatch metrics (``METRICS_NAMESPACE``, dimension ``Dataset``), each
    a count but ``Bytes``."""
    aws.client("cloudwatch").put_metric_data(Namespace=METRICS_NAMESPACE, MetricData=[
        {"MetricName": name, "Dimensions": [{"Name": "Dataset", "Value": dataset}], "Value": value,
         "Unit": "Bytes" if name == "Bytes" else "Count"} for name, value in counts.items()])


def pending_files(pipeline: Any, dataset: str) -> Iterator[dict[str, Any]]:
    """The pre-staged files of ``dataset`` waiting for (or claimed by) a stage B run: the pipeline table's
    ``pending#<pre-stage key>`` items, which stage A writes, the batcher claims and stage B deletes."""
    yield from aws.items(pipeline.query, ConsistentRead=True,
                         KeyConditionExpression=Key("dataset").eq(dataset) & Key("itemId").begins_with("pending#"))


class QueryFailed(Exception):
    """Athena (or DuckDB in the local cloud) refused or failed the query; the message says why."""


class QueryTimedOut(QueryFailed):
    """The query had not finished when the caller stopped waiting (it may still run)."""


@dataclass(frozen=True)
class Rows:
    columns: list[str]
    rows: list[list[str | None]]  # as Athena returns them: text, None for NULL

    def as_dicts(self) -> list[dict[str, str | None]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def query(athena: Any, sql: str, *, output: str, database: str | None = None, workgroup: str | None = None,
          timeout_s: float = 300, sleep: Callable[[float], None] = time.sleep) -> Rows:
    """Run ``sql`` and wait for its rows. ``output`` is the S3 location Athena writes results to."""
    context = {"Database": database} if database else {}
    started = athena.start_query_execution(QueryString=sql, QueryExecutionContext=context,
                                           ResultConfiguration={"OutputLocation": output},
                                           **({"WorkGroup": workgroup} if workgroup else {}))
    execution_id, deadline, delay = started["QueryExecutionId"], time.monotonic() + timeout_s, 0.2
    while True:
        status = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["Status"]
        if status["State"] in _FINISHED:
            break
        if time.monotonic() > deadline:
            raise QueryTimedOut(f"the query did not finish within {timeout_s:.0f} s (execution {execution_id})")
        sleep(delay)
        delay = min(delay * 2, 5.0)
    if status["State"] != "SUCCEEDED":
        raise QueryFailed(status.get("StateChangeReason") or status["State"])
    return _rows(athena, execution_id)


def _rows(athena: Any, execution_id: str) -> Rows:
    pages = athena.get_paginator("get_query_results").paginate(QueryExecutionId=execution_id)
    columns: list[str] = []
    rows: list[list[str | None]] = []
    for number, page in enumerate(pages):
        result = page["ResultSet"]
        columns = columns or [c["Name"] for c in result["ResultSetMetadata"]["ColumnInfo"]]
        values = [[cell.get("VarCharValue") for cell in row["Data"]] for row in result["Rows"]]
        header = number == 0 and values[:1] == [columns]  # Athena's first row of a SELECT repeats the header
        rows.extend(values[1:] if header else values)
    return Rows(columns, rows)
