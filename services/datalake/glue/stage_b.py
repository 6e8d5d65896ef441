"""Stage B, the heavy transform: the Glue job ``amci-<stage>-datalake-stage-b`` (run in-process by the local cloud).

One run takes the pre-staged files a batch claimed for it (``--dataset``, ``--run_id``; see
``chalicelib/pipeline.py``) and, file by file: converts it to typed Parquet (``convert.py``), hands each typed batch
to the dataset's own stage B when the registry names one (``--stage_b``, a ``lake_transforms`` entry point
``(batch: pyarrow.RecordBatch, context: dict) -> RecordBatch | Table``; context: ``table``, ``partition``,
``source``), and writes it under ``post-stage/<database>/<table>/<partition>/<name>.parquet`` in the stage bucket
(a stable name: a file done again overwrites itself), quarantines the rows it could not type
(``quarantine/…/<name>.rejected.ndjson``, with the reason, and a notification), creates or widens the Glue table (new
columns added, existing types kept) and adds the
partition, then deletes the file's pending item and records what it became. A file that cannot be read at all is
quarantined whole. If the run dies, the files it had not finished are claimed again by the next batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from boto3.dynamodb.conditions import Attr
from convert import TIMESTAMP, Converted, convert

from shared import aws
from shared.lake import (
    BUILTIN_STAGE_B,
    REPORT_SPECIFICATION,
    TRANSFORMS_PACKAGE,
    entry_point,
    pending_files,
    put_metrics,
)
from shared.status import Status, StatusMessage, StatusPublisher

HISTORY_S = 90 * 24 * 3600
AMC = "adtech-amc"
_TO_GLUE = {pa.int64(): "bigint", pa.float64(): "double", pa.bool_(): "boolean", pa.string(): "string",
            pa.date32(): "date", TIMESTAMP: "timestamp"}
_FROM_GLUE = {"bigint": pa.int64(), "double": pa.float64(), "boolean": pa.bool_(), "string": pa.string(),
              "date": pa.date32(), "timestamp": TIMESTAMP, "int": pa.int64(), "float": pa.float64()}
_ARGUMENTS = ("dataset", "run_id", "pipeline_table", "stage_bucket", "status_topic_arn", "analyst_role_arn")
READER_PERMISSIONS = ["SELECT", "DESCRIBE"]  # what the analyst role gets on every table stage B writes
log = logging.getLogger(__name__)
_CUSTOM_PACKAGE = f"{TRANSFORMS_PACKAGE}."  # the registry accepts no other (chalicelib/datasets.py ENTRY_POINT)
BatchTransform = Callable[[pa.RecordBatch, dict[str, Any]], "pa.RecordBatch | pa.Table"]


@dataclass(frozen=True)
class Run:
    dataset: str
    run_id: str
    pipeline_table: str
    stage_bucket: str
    status_topic_arn: str
    analyst_role_arn: str
    stage_b: str = BUILTIN_STAGE_B


def main(argv: list[str]) -> None:
    named = {"stage_b": argv[argv.index("--stage_b") + 1]} if "--stage_b" in argv else {}
    run = Run(**{name: _argument(argv, name) for name in _ARGUMENTS}, **named)
    StageB(run, aws.table(run.pipeline_table), aws.client("s3"), aws.client("glue"), aws.client("lakeformation"),
           StatusPublisher(aws.client("sns"), run.status_topic_arn)).process()


class StageB:
    def __init__(self, run: Run, pipeline: Any, s3: Any, glue: Any, lakeformation: Any,
                 publisher: StatusPublisher) -> None:
        self.run, self.pipeline, self.s3, self.glue, self.publisher = run, pipeline, s3, glue, publisher
        self.lakeformation = lakeformation
        self.totals = {"files": 0, "rows": 0, "bytes": 0, "filtered": 0, "rejected": 0, "quarantined": 0}
        self._granted: set[tuple[str, str]] = set()  # tables the analyst was granted this run
        self.transform = _batch_transform(run.stage_b)

    def process(self) -> None:
        for item in self._claimed():
            if self._mark(item):
                self._file(item)
        self.pipeline.update_item(Key={"dataset": self.run.dataset, "itemId": f"run#{self.run.run_id}"},
                                  UpdateExpression="SET #s = :done, finishedAt = :now, totals = :totals",
                                  ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={
                                      ":done": "SUCCEEDED", ":now": int(time.time()), ":totals": self.totals})
        self._metrics()

    def _file(self, item: dict[str, Any]) -> None:
        key, table = item["preStageKey"], item["table"]
        partition = {k: v for k, v in item["partition"]}  # stored as pairs: their order is the path's
        path = "".join(f"{k}={v}/" for k, v in partition.items())
        stem = key.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        location = f"post-stage/{item['database']}/{table}/"  # per database: a tenant's files are its own
        found = _table(self.glue, item["database"], table)  # read once per file: typing and widening use it
        current = _schema(found)
        body = self.s3.get_object(Bucket=self.run.stage_bucket, Key=key)["Body"]
        with tempfile.NamedTemporaryFile(suffix=".parquet") as out:
            try:
                converted = convert(body, item["format"], out.name, table_schema=current,
                                    drop_filtered=self.run.dataset == AMC)  # AMC's privacy flag, no one else's
            except (pa.ArrowInvalid, ValueError) as unreadable:
                self._quarantine_file(item, f"{type(unreadable).__name__}: {unreadable}")
                return
            if converted.rows_rejected and not converted.rows_written:  # nothing of it fits: the file is wrong
                self._quarantine_file(item, f"no row could be read: {converted.rejected[0].reason}")
                return
            if not converted.rows_written:  # an empty file says nothing of the table's types
                self._done(item, "EMPTY", converted)
                return
            if self.transform is not None:
                context = {"table": table, "partition": dict(partition), "source": item.get("source")}
                try:
                    converted = _transformed(self.transform, out.name, converted, current, context)
                except (pa.ArrowTypeError, ValueError) as refused:  # the data is wrong (ArrowInvalid is a
                    # ValueError; any other error, out of memory included, fails the run to be retried)
                    self._quarantine_file(item, f"stage B {self.run.stage_b}: {type(refused).__name__}: {refused}")
                    return
            self.s3.upload_file(out.name, self.run.stage_bucket, f"{location}{path}{stem}.parquet")
        if converted.rows_rejected:
            self._quarantine_rows(item, converted)
        _catalog(self.glue, item["database"], table, converted.schema, list(partition), found,
                 f"s3://{self.run.stage_bucket}/{location}", _table_parameters(item.get("metadata", {})))
        self._grant_readers(item["database"], table)
        if partition:
            _add_partition(self.glue, item["database"], table, partition,
                           f"s3://{self.run.stage_bucket}/{location}{path}")
        self._done(item, "PROCESSED", converted)

    # -- outcomes ---------------------------------------------------------------------------------------------

    def _done(self, item: dict[str, Any], status: str, converted: Converted | None, reason: str = "") -> None:
        counts = {"rowsRead": converted.rows_read, "rowsWritten": converted.rows_written,
                  "rowsFiltered": converted.rows_filtered, "rowsRejected": converted.rows_rejected,
                  "bytesWritten": converted.bytes_written, "added": converted.added} if converted else {}
        now = int(time.time())
        self.pipeline.put_item(Item={"dataset": self.run.dataset, "itemId": f"file#{item['preStageKey']}",
                                    "status": status, "runId": self.run.run_id, "source": item.get("source"),
                                    "table": item["table"], "reason": reason, **counts, "updatedAt": now,
                                    "expiresAt": now + HISTORY_S})
        with contextlib.suppress(self.pipeline.meta.client.exceptions.ConditionalCheckFailedException):
            # Only the version this run read: a replay staged meanwhile is pending again and stays so.
            self.pipeline.delete_item(Key={"dataset": self.run.dataset, "itemId": item["itemId"]},
                                      ConditionExpression=Attr("staging").eq(item.get("staging")))
        self.totals["files"] += 1
        if converted:
            self.totals["rows"] += converted.rows_written
            self.totals["bytes"] += converted.bytes_written
            self.totals["filtered"] += converted.rows_filtered
            self.totals["rejected"] += converted.rows_rejected

    def _quarantine_file(self, item: dict[str, Any], reason: str) -> None:
        target = _quarantine_key(item["preStageKey"])
        self.s3.copy_object(Bucket=self.run.stage_bucket, Key=target, MetadataDirective="REPLACE",
                            CopySource={"Bucket": self.run.stage_bucket, "Key": item["preStageKey"]},
                            Metadata={"reason": reason.encode("ascii", "replace").decode()[:1500]})
        self.totals["quarantined"] += 1
        self._notify(item, f"{item['table']}: the file {item.get('source')} was quarantined: {reason}",
                     {"quarantine": f"s3://{self.run.stage_bucket}/{target}", "reason": reason})
        self._done(item, "QUARANTINED", None, reason)

    def _quarantine_rows(self, item: dict[str, Any], converted: Converted) -> None:
        target = _quarantine_key(item["preStageKey"]).rsplit(".", 1)[0] + ".rejected.ndjson"
        lines = "".join(json.dumps({"row": r.row, "column": r.column, "value": r.value, "reason": r.reason}) + "\n"
                        for r in converted.rejected)
        self.s3.put_object(Bucket=self.run.stage_bucket, Key=target, Body=lines.encode())
        first = converted.rejected[0].reason if converted.rejected else ""
        self._notify(item, f"{item['table']}: {converted.rows_rejected} rows of {item.get('source')} quarantined "
                           f"(e.g. {first})", {"quarantine": f"s3://{self.run.stage_bucket}/{target}",
                                               "rowsRejected": converted.rows_rejected})

    def _notify(self, item: dict[str, Any], summary: str, details: dict[str, Any]) -> None:
        tenant = {k: v for k, v in item["partition"]}.get("tenant")
        self.publisher.publish(StatusMessage(
            service="datalake", request_type="stageB", status=Status.REJECTED, summary=summary,
            **({"tenant_id": tenant} if tenant else {}), request_id=self.run.run_id,
            details={"dataset": self.run.dataset, "table": item["table"], "source": item.get("source"), **details}))

    # -- helpers ----------------------------------------------------------------------------------------------

    def _claimed(self) -> list[dict[str, Any]]:
        return [i for i in pending_files(self.pipeline, self.run.dataset) if i.get("runId") == self.run.run_id]

    def _mark(self, item: dict[str, Any]) -> bool:
        """Note the file this run works on (if the run dies, that file alone counts an attempt); False when the
        file is no longer this run's (released meanwhile)."""
        try:
            self.pipeline.update_item(Key={"dataset": self.run.dataset, "itemId": item["itemId"]},
                                      UpdateExpression="SET processingRun = :run",
                                      ConditionExpression=Attr("runId").eq(self.run.run_id),
                                      ExpressionAttributeValues={":run": self.run.run_id})
        except self.pipeline.meta.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _grant_readers(self, database: str, table: str) -> None:
        """The analyst role may read the table, whatever its database (a tenant's, Ads, SP, a custom dataset's):
        stage B created it, and a table's creator may grant on it in Lake Formation. Granted once by every run that
        writes the table, as a grant held already is a no-op and a run that died after creating it has not. A table
        another principal created (an older stage B role, before the role had its fixed name) refuses the grant:
        its rows still land, and the log says which grant a data lake administrator must make."""
        if (database, table) in self._granted:
            return
        self._granted.add((database, table))
        try:
            self.lakeformation.grant_permissions(
                Principal={"DataLakePrincipalIdentifier": self.run.analyst_role_arn}, Permissions=READER_PERMISSIONS,
                Resource={"Table": {"DatabaseName": database, "Name": table}})
        except self.lakeformation.exceptions.AccessDeniedException:
            log.warning("stage B may not grant on %s.%s: a data lake administrator must grant %s on it to %s",
                        database, table, ", ".join(READER_PERMISSIONS), self.run.analyst_role_arn)

    def _metrics(self) -> None:
        put_metrics(self.run.dataset, {name.capitalize(): value for name, value in self.totals.items()})


def _batch_transform(name: str) -> BatchTransform | None:
    """The dataset's own stage B function, or None for the built-in conversion alone."""
    if name == BUILTIN_STAGE_B:
        return None
    if not name.startswith(_CUSTOM_PACKAGE):
        raise SystemExit(f"--stage_b: expected {BUILTIN_STAGE_B} or a {_CUSTOM_PACKAGE}<module>:<function> entry point")
    return entry_point(name)  # type: ignore[no-any-return]


def _transformed(transform: BatchTransform, path: str, converted: Converted, current: pa.Schema | None,
                 context: dict[str, Any]) -> Converted:
    """Rewrite the typed Parquet at ``path`` through ``transform``, batch by batch (bounded memory). The transform
    sees the file's own columns (not the table's others, null here); columns the table has keep its types; rows the
    transform drops count as filtered."""
    rewritten, writer, rows, schema = f"{path}.transformed", None, 0, converted.schema
    try:
        with pq.ParquetFile(path) as typed:
            absent = [current.field(name) for name in converted.absent] if current else []
            for batch in typed.iter_batches():
                result = transform(batch.drop_columns(converted.absent), context)
                table = _with_nulls(result if isinstance(result, pa.Table) else pa.Table.from_batches([result]), absent)
                if writer is None:
                    schema = _keeping_types(table.schema, current)
                    writer = pq.ParquetWriter(rewritten, schema, compression="snappy")
                writer.write_table(table.select(schema.names).cast(schema))
                rows += table.num_rows
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(rewritten)
        raise
    finally:
        if writer is not None:
            writer.close()
    os.replace(rewritten, path)
    added = [f.name for f in schema if current is None or f.name not in current.names]
    return dataclasses.replace(converted, schema=schema, added=added, rows_written=rows,
                               rows_filtered=converted.rows_filtered + converted.rows_written - rows,
                               bytes_written=os.path.getsize(path))


def _with_nulls(table: pa.Table, fields: list[pa.Field]) -> pa.Table:
    """``table`` with a column of nulls for each of ``fields`` it lacks."""
    for missing in (f for f in fields if f.name not in table.column_names):
        table = table.append_column(missing, pa.nulls(table.num_rows, missing.type))
    return table


def _keeping_types(schema: pa.Schema, current: pa.Schema | None) -> pa.Schema:
    if current is None:
        return schema
    return pa.schema([current.field(f.name) if f.name in current.names else f for f in schema])


def _argument(argv: list[str], name: str) -> str:
    flag = f"--{name}"
    if flag not in argv:
        raise SystemExit(f"stage B needs {flag}")
    return argv[argv.index(flag) + 1]


# -- the Glue Data Catalog ----------------------------------------------------------------------------------------


def _table(glue: Any, database: str, table: str) -> dict[str, Any] | None:
    try:
        return glue.get_table(DatabaseName=database, Name=table)["Table"]  # type: ignore[no-any-return]
    except glue.exceptions.EntityNotFoundException:
        return None


def _schema(table: dict[str, Any] | None) -> pa.Schema | None:
    if table is None:
        return None
    columns = table["StorageDescriptor"]["Columns"]
    return pa.schema([(c["Name"], _FROM_GLUE.get(c["Type"], pa.string())) for c in columns])


def _catalog(glue: Any, database: str, table: str, schema: pa.Schema, partition_keys: list[str],
             current: dict[str, Any] | None, location: str, parameters: dict[str, str]) -> None:
    """Create the table, or add the columns it lacks (existing columns and their types are kept); ``parameters``
    (the latest file's, e.g. its report specification) are set on it."""
    columns = [{"Name": f.name, "Type": _TO_GLUE.get(f.type, "string")} for f in schema if f.name not in partition_keys]
    if current is not None:
        known = {c["Name"] for c in current["StorageDescriptor"]["Columns"]}
        added = [c for c in columns if c["Name"] not in known]
        merged = {**current.get("Parameters", {}), **parameters}
        if not added and merged == current.get("Parameters", {}):
            return
        descriptor = {**current["StorageDescriptor"], "Columns": current["StorageDescriptor"]["Columns"] + added}
        glue.update_table(DatabaseName=database, TableInput={
            "Name": table, "TableType": "EXTERNAL_TABLE", "Parameters": merged,
            "PartitionKeys": current.get("PartitionKeys", []), "StorageDescriptor": descriptor})
        return
    with contextlib.suppress(glue.exceptions.AlreadyExistsException):
        glue.create_database(DatabaseInput={"Name": database})
    try:
        glue.create_table(DatabaseName=database, TableInput={
            "Name": table, "TableType": "EXTERNAL_TABLE", "Parameters": {"classification": "parquet", **parameters},
            "PartitionKeys": [{"Name": k, "Type": "string"} for k in partition_keys],
            "StorageDescriptor": {"Columns": columns, "Location": location, **_PARQUET}})
    except glue.exceptions.AlreadyExistsException:  # made meanwhile by another run: widen it instead
        _catalog(glue, database, table, schema, partition_keys, _table(glue, database, table), location, parameters)


def _table_parameters(metadata: dict[str, str]) -> dict[str, str]:
    """The file's metadata that describes its table: an SP report's specification, whole."""
    return {"report_specification": metadata[REPORT_SPECIFICATION]} if REPORT_SPECIFICATION in metadata else {}


def _add_partition(glue: Any, database: str, table: str, partition: dict[str, str], location: str) -> None:
    """Add the partition; one that exists is fine (a replay), any other refusal is an error."""
    answer = glue.batch_create_partition(DatabaseName=database, TableName=table, PartitionInputList=[{
        "Values": list(partition.values()), "StorageDescriptor": {"Location": location, **_PARQUET}}])
    refused = [e["ErrorDetail"] for e in answer.get("Errors", [])
               if e["ErrorDetail"].get("ErrorCode") != "AlreadyExistsException"]
    if refused:
        raise RuntimeError(f"partition {partition} of {database}.{table} refused: {refused}")


def _quarantine_key(pre_stage_key: str) -> str:
    """Where a pre-stage file's quarantined content goes: the same path (tenant, partition) under quarantine/."""
    return "quarantine/" + pre_stage_key.removeprefix("pre-stage/")


_PARQUET = {"InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}}


if __name__ == "__main__":
    main(sys.argv)
