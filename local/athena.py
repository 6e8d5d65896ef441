"""Athena queries answered by DuckDB over the Glue tables' Parquet files in the emulated S3.

moto's Athena records queries but returns no rows (research/platform.md §9). Here ``start_query_execution`` runs
the SQL at once: every Glue table the query names becomes a DuckDB view (``database.table``, and ``table`` within
the execution's database) over a pyarrow dataset read from moto's S3 endpoint, with hive partitions. Results are
returned as Athena returns them (a header row, then values as strings) and written as CSV to the output location.
A query that fails leaves the execution FAILED with DuckDB's message as ``StateChangeReason``.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from moto.athena import models as athena_models
from moto.athena import responses as athena_responses

log = logging.getLogger(__name__)

_GLUE_TO_DUCKDB = {"string": "VARCHAR", "int": "INTEGER", "bigint": "BIGINT", "double": "DOUBLE", "float": "FLOAT",
                   "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP", "smallint": "SMALLINT",
                   "tinyint": "TINYINT"}


class _LocalExecution(athena_models.Execution):
    local_state = "RUNNING"
    failure_reason: str | None = None

    @property
    def status(self) -> str:  # type: ignore[override]
        return self.local_state


class AthenaOnDuckDB:
    """Patches moto's Athena backend to run queries in DuckDB."""

    def __init__(self, glue: Any, s3_endpoint: str, region: str) -> None:
        self._glue = glue
        self._endpoint = s3_endpoint
        self._region = region
        self._original_start = athena_models.AthenaBackend.start_query_execution
        self._original_describe = athena_responses.AthenaResponse.get_query_execution

    def install(self) -> None:
        engine, original_start, original_describe = self, self._original_start, self._original_describe

        def start_query_execution(backend: Any, query: str, context: Any, config: Any, workgroup: Any,
                                  execution_parameters: Any) -> str:
            exec_id = original_start(backend, query, context, config, workgroup, execution_parameters)
            engine._execute(backend, exec_id)
            return exec_id

        def get_query_execution(response: Any) -> str:
            result = json.loads(original_describe(response))
            execution = response.athena_backend.executions[result["QueryExecution"]["QueryExecutionId"]]
            if getattr(execution, "failure_reason", None):
                result["QueryExecution"]["Status"]["StateChangeReason"] = execution.failure_reason
            return json.dumps(result)

        athena_models.AthenaBackend.start_query_execution = start_query_execution
        athena_responses.AthenaResponse.get_query_execution = get_query_execution

    def uninstall(self) -> None:
        athena_models.AthenaBackend.start_query_execution = self._original_start
        athena_responses.AthenaResponse.get_query_execution = self._original_describe

    def _execute(self, backend: Any, exec_id: str) -> None:
        execution = backend.executions[exec_id]
        execution.__class__ = _LocalExecution
        database = (execution.context or {}).get("Database") if isinstance(execution.context, dict) else None
        try:
            columns, types, rows = self.query(execution.query, database)
        except Exception as exc:
            log.info("athena query failed", extra={"query_id": exec_id, "error": str(exc)})
            execution.failure_reason = str(exc)
            execution.local_state = "FAILED"
            return
        header = [{"Data": [{"VarCharValue": name} for name in columns]}]
        data = [{"Data": [{} if v is None else {"VarCharValue": _text(v)} for v in row]} for row in rows]
        info = [{"CatalogName": "hive", "SchemaName": database or "", "TableName": "", "Name": name, "Label": name,
                 "Type": kind, "Nullable": "UNKNOWN"} for name, kind in zip(columns, types, strict=True)]
        backend.query_results[exec_id] = athena_models.QueryResults(rows=header + data, column_info=info)
        if execution.config and "OutputLocation" in execution.config:
            backend._store_query_result_in_s3(exec_id)
        execution.local_state = "SUCCEEDED"

    def query(self, sql: str, database: str | None) -> tuple[list[str], list[str], list[tuple[Any, ...]]]:
        """Run ``sql`` in DuckDB with the Glue tables it names as views; returns column names, types and rows."""
        import duckdb  # heavy: imported on the first query only

        con = duckdb.connect()
        try:
            for db_name, table in self._tables_named_in(sql):
                self._register(con, db_name, table)
            if database:
                con.execute(f'CREATE SCHEMA IF NOT EXISTS "{database}"')
                con.execute(f"SET search_path = '{database},main'")
            result = con.execute(sql)
            columns = [d[0] for d in result.description]
            types = [_athena_type(str(d[1])) for d in result.description]
            return columns, types, result.fetchall()
        finally:
            con.close()

    def _tables_named_in(self, sql: str) -> list[tuple[str, dict[str, Any]]]:
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", sql.lower()))
        found = []
        for db in self._glue.get_databases()["DatabaseList"]:
            for table in self._glue.get_tables(DatabaseName=db["Name"]).get("TableList", []):
                if table["Name"].lower() in words:
                    found.append((db["Name"], table))
        return found

    def _register(self, con: Any, database: str, table: dict[str, Any]) -> None:
        import pyarrow.dataset as ds

        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{database}"')
        descriptor = table.get("StorageDescriptor", {})
        view = f'"{database}"."{table["Name"]}"'
        location = descriptor.get("Location", "").removeprefix("s3://").rstrip("/")
        if "parquet" not in (descriptor.get("SerdeInfo", {}).get("SerializationLibrary", "") +
                             descriptor.get("InputFormat", "")).lower():
            raise ValueError(f"{database}.{table['Name']}: only Parquet tables can be queried locally")
        try:  # the table's schema, as Athena reads it: a column a file lacks is null there
            dataset = ds.dataset(location, filesystem=self._filesystem(), format="parquet",
                                 partitioning=self._partitioning(table), schema=_arrow_schema(table))
        except (FileNotFoundError, OSError):
            dataset = None
        if dataset is None or not dataset.files:
            columns = descriptor.get("Columns", []) + table.get("PartitionKeys", [])
            select = ", ".join(f'CAST(NULL AS {_GLUE_TO_DUCKDB.get(c["Type"].lower(), "VARCHAR")}) AS "{c["Name"]}"'
                               for c in columns) or "NULL AS empty"
            con.execute(f"CREATE VIEW {view} AS SELECT {select} WHERE false")
            return
        arrow_name = f"arrow_{database}_{table['Name']}"
        con.register(arrow_name, dataset)
        con.execute(f'CREATE VIEW {view} AS SELECT * FROM "{arrow_name}"')

    def _partitioning(self, table: dict[str, Any]) -> Any:
        import pyarrow as pa
        import pyarrow.dataset as ds

        keys = table.get("PartitionKeys", [])
        if not keys:
            return None
        return ds.partitioning(pa.schema([(k["Name"], pa.string()) for k in keys]), flavor="hive")

    def _filesystem(self) -> Any:
        import pyarrow.fs as pafs

        scheme, _, address = self._endpoint.partition("://")
        return pafs.S3FileSystem(endpoint_override=address, scheme=scheme, access_key="testing",
                                 secret_key="testing", region=self._region)


def _arrow_schema(table: dict[str, Any]) -> Any:
    import pyarrow as pa

    types = {"string": pa.string(), "bigint": pa.int64(), "int": pa.int32(), "double": pa.float64(),
             "float": pa.float32(), "boolean": pa.bool_(), "date": pa.date32(), "smallint": pa.int16(),
             "tinyint": pa.int8(), "timestamp": pa.timestamp("ms", tz="UTC")}  # the lake writes UTC instants
    columns = table.get("StorageDescriptor", {}).get("Columns", [])
    return pa.schema([(c["Name"], types.get(c["Type"].lower(), pa.string())) for c in columns]
                     + [(k["Name"], pa.string()) for k in table.get("PartitionKeys", [])])


_ATHENA_TYPES = ("varchar", "bigint", "integer", "double", "float", "boolean", "date", "timestamp", "decimal",
                 "smallint", "tinyint")


def _athena_type(duckdb_type: str) -> str:
    kind = duckdb_type.lower().replace("hugeint", "bigint")
    return next((name for name in _ATHENA_TYPES if kind.startswith(name)), "varchar")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
