"""Glue job runs executed in-process, and Athena answered by DuckDB over the lake's Parquet in S3."""

from __future__ import annotations

import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from local.cloud import LocalCloud
from shared import aws
from tests.conftest import TESTS
from tests.support import wait_until


def _job(cloud: LocalCloud) -> str:
    name = f"copy-{uuid.uuid4().hex[:8]}"
    cloud.glue.scripts["copy_object.py"] = TESTS / "glue" / "copy_object.py"
    aws.client("glue").create_job(Name=name, Role=cloud.outputs["SchedulerRoleArn"], Command={
        "Name": "glueetl", "ScriptLocation": "s3://amci-local-artifacts/glue/copy_object.py"},
        DefaultArguments={"--bucket": cloud.outputs["RawBucket"]})
    return name


def _finished_run(job: str, run_id: str) -> dict:
    glue = aws.client("glue")
    return wait_until(lambda: (run := glue.get_job_run(JobName=job, RunId=run_id)["JobRun"])["JobRunState"]
                      in ("SUCCEEDED", "FAILED") and run)


def test_a_glue_job_run_executes_its_script(cloud: LocalCloud) -> None:
    job, s3, bucket = _job(cloud), aws.client("s3"), cloud.outputs["RawBucket"]
    s3.put_object(Bucket=bucket, Key=f"{job}/in.txt", Body=b"rows")

    run_id = aws.client("glue").start_job_run(JobName=job, Arguments={
        "--source_key": f"{job}/in.txt", "--target_key": f"{job}/out.txt"})["JobRunId"]

    assert _finished_run(job, run_id)["JobRunState"] == "SUCCEEDED"
    assert s3.get_object(Bucket=bucket, Key=f"{job}/out.txt")["Body"].read() == f"rows by {job}".encode()


def test_a_failing_glue_job_run_reports_its_error(cloud: LocalCloud) -> None:
    job = _job(cloud)

    run_id = aws.client("glue").start_job_run(JobName=job, Arguments={
        "--source_key": "no/such/key", "--target_key": "x"})["JobRunId"]

    run = _finished_run(job, run_id)
    assert run["JobRunState"] == "FAILED"
    assert "NoSuchKey" in run["ErrorMessage"]


@pytest.fixture(scope="module")
def sales_table(cloud: LocalCloud) -> str:
    """A partitioned Parquet table in the stage bucket, registered in the lake's Glue database."""
    import pyarrow.fs as pafs

    database, table = cloud.outputs["LakeDatabase"], f"sales_{uuid.uuid4().hex[:6]}"
    location = f"{cloud.outputs['StageBucket']}/{table}"
    filesystem = pafs.S3FileSystem(endpoint_override=cloud.aws_endpoint_url.removeprefix("http://"),
                                   scheme="http", access_key="testing", secret_key="testing", region="us-east-1")
    for day, rows in {"2026-11-25": [("c1", 10.5), ("c2", 3.0)], "2026-11-26": [("c1", 7.25), ("c3", None)]}.items():
        data = pa.table({"campaign_id": [r[0] for r in rows], "sales": [r[1] for r in rows]})
        pq.write_table(data, f"{location}/report_date={day}/part-0.parquet", filesystem=filesystem)
    parquet = {"InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
               "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}}
    aws.client("glue").create_table(DatabaseName=database, TableInput={
        "Name": table, "PartitionKeys": [{"Name": "report_date", "Type": "string"}],
        "StorageDescriptor": {"Columns": [{"Name": "campaign_id", "Type": "string"},
                                          {"Name": "sales", "Type": "double"}],
                              "Location": f"s3://{location}/", **parquet}})
    return table


def _query(cloud: LocalCloud, sql: str) -> dict:
    athena = aws.client("athena")
    query_id = athena.start_query_execution(
        QueryString=sql, QueryExecutionContext={"Database": cloud.outputs["LakeDatabase"]},
        ResultConfiguration={"OutputLocation": f"s3://{cloud.outputs['StageBucket']}/athena-results/"})[
        "QueryExecutionId"]
    return athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]


def test_athena_runs_sql_over_the_glue_tables(cloud: LocalCloud, sales_table: str) -> None:
    execution = _query(cloud, f"SELECT report_date, count(*) AS n, sum(sales) AS sales FROM {sales_table} "
                              "GROUP BY report_date ORDER BY report_date")

    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    result = aws.client("athena").get_query_results(QueryExecutionId=execution["QueryExecutionId"])["ResultSet"]
    rows = [[cell.get("VarCharValue") for cell in row["Data"]] for row in result["Rows"]]
    assert rows == [["report_date", "n", "sales"], ["2026-11-25", "2", "13.5"], ["2026-11-26", "2", "7.25"]]
    assert [c["Type"] for c in result["ResultSetMetadata"]["ColumnInfo"]] == ["varchar", "bigint", "double"]
    output = execution["ResultConfiguration"]["OutputLocation"].removeprefix("s3://").split("/", 1)
    assert b"2026-11-25" in aws.client("s3").get_object(Bucket=output[0], Key=output[1])["Body"].read()


def test_athena_qualified_names_nulls_and_partition_filters(cloud: LocalCloud, sales_table: str) -> None:
    database = cloud.outputs["LakeDatabase"]
    execution = _query(cloud, f"SELECT campaign_id, sales FROM {database}.{sales_table} "
                              "WHERE report_date = '2026-11-26' ORDER BY campaign_id")

    result = aws.client("athena").get_query_results(QueryExecutionId=execution["QueryExecutionId"])["ResultSet"]
    assert [row["Data"] for row in result["Rows"][1:]] == [[{"VarCharValue": "c1"}, {"VarCharValue": "7.25"}],
                                                          [{"VarCharValue": "c3"}, {}]]


def test_a_failing_athena_query_says_why(cloud: LocalCloud) -> None:
    execution = _query(cloud, "SELECT no_such_column FROM no_such_table")

    assert execution["Status"]["State"] == "FAILED"
    assert "no_such_table" in execution["Status"]["StateChangeReason"]


def test_lake_formation_merges_a_second_grant_and_revokes_each_part(cloud: LocalCloud) -> None:
    lakeformation = aws.client("lakeformation")
    reader = {"DataLakePrincipalIdentifier": f"arn:aws:iam::123456789012:role/reader-{uuid.uuid4().hex[:6]}"}
    table = {"Table": {"DatabaseName": "amci_local_lake", "TableWildcard": {}}}

    for permissions in (["DESCRIBE"], ["SELECT"], ["SELECT"]):  # the same grant again, as a re-onboarding makes
        lakeformation.grant_permissions(Principal=reader, Resource=table, Permissions=permissions)
    merged = lakeformation.list_permissions(Principal=reader, Resource=table)["PrincipalResourcePermissions"]
    lakeformation.revoke_permissions(Principal=reader, Resource=table, Permissions=["SELECT"])
    left = lakeformation.list_permissions(Principal=reader, Resource=table)["PrincipalResourcePermissions"]
    lakeformation.revoke_permissions(Principal=reader, Resource=table, Permissions=["DESCRIBE"])

    assert [sorted(g["Permissions"]) for g in merged] == [["DESCRIBE", "SELECT"]]
    assert [g["Permissions"] for g in left] == [["DESCRIBE"]]
    assert lakeformation.list_permissions(Principal=reader, Resource=table)["PrincipalResourcePermissions"] == []
