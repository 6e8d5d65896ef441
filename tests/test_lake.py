"""The data lake end to end on the local cloud: files dropped where the other services put them become typed,
catalogued Parquet that SQL reads; duplicates, replays, malformed files, schema changes, a crashed stage B and a
custom dataset's own transforms."""

from __future__ import annotations

import gzip
import io
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow.parquet as pq
import pytest

from amci.inbox import Inbox
from local.cloud import LocalCloud
from shared import aws, lake
from tests.support import analyst_grants, ask, onboard, pipeline_items, sql, wait_until

AMC_CSV = (b'campaign,campaign_id,impressions,total_cost,purchase_rate,is_new,event_date,filtered\n'
           b'"Brand, Spring",1001,1200,12.5,0.25,true,2026-11-01,false\n'
           b'Generic,1002,,3.0,,false,2026-11-02,false\n'
           b'Hidden,1003,7,1.0,0.1,false,2026-11-02,true\n')


pytestmark = pytest.mark.usefixtures("fast_ads", "fast_sp")


def table_columns(database: str, table: str) -> dict[str, str]:
    found = aws.client("glue").get_table(DatabaseName=database, Name=table)["Table"]
    return {c["Name"]: c["Type"] for c in found["StorageDescriptor"]["Columns"]}


def catalogued(database: str, table: str, timeout_s: float = 60) -> dict[str, str]:
    def ready() -> dict[str, str] | None:
        try:
            return table_columns(database, table)
        except aws.client("glue").exceptions.EntityNotFoundException:
            return None
    return wait_until(ready, timeout_s)


def sql_types(cloud: LocalCloud, statement: str, database: str) -> list[str]:
    """The types of the columns of ``statement``'s result, as Athena names them."""
    athena = aws.client("athena")
    execution = athena.start_query_execution(
        QueryString=statement, QueryExecutionContext={"Database": database},
        ResultConfiguration={"OutputLocation": f"s3://{cloud.outputs['StageBucket']}/athena/"})
    query_id = execution["QueryExecutionId"]
    wait_until(lambda: athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]["State"]
               in ("SUCCEEDED", "FAILED"))
    metadata = athena.get_query_results(QueryExecutionId=query_id)["ResultSet"]["ResultSetMetadata"]
    return [c["Type"] for c in metadata["ColumnInfo"]]


def partitions(database: str, table: str) -> list[tuple[list[str], str]]:
    """The table's partitions in the Glue Data Catalog: (values, location) each."""
    pages = aws.client("glue").get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table)
    return sorted((p["Values"], p["StorageDescriptor"]["Location"]) for page in pages for p in page["Partitions"])


def metric(dataset: str, name: str) -> float:
    """The sum of the dataset's metric ``name`` over the last hour, as CloudWatch reports it."""
    now = datetime.now(UTC)
    points = aws.client("cloudwatch").get_metric_statistics(
        Namespace=lake.METRICS_NAMESPACE, MetricName=name, Dimensions=[{"Name": "Dataset", "Value": dataset}],
        StartTime=now - timedelta(hours=1), EndTime=now + timedelta(minutes=1), Period=7200, Statistics=["Sum"])
    return sum(p["Sum"] for p in points["Datapoints"])


def processed(cloud: LocalCloud, dataset: str, source: str, timeout_s: float = 60) -> list[dict[str, Any]]:
    """The pipeline's records of what ``source`` became (stage A's object record and stage B's file records)."""
    table = aws.table(cloud.outputs["DatalakePipelineTable"])

    def done() -> list[dict[str, Any]] | None:
        items = table.query(KeyConditionExpression="dataset = :d", ExpressionAttributeValues={":d": dataset},
                            ConsistentRead=True)["Items"]
        pending = [i for i in items if i["itemId"].startswith("pending#") and i.get("source") == source]
        files = [i for i in items if i["itemId"].startswith("file#") and i.get("source") == source]
        return files if files and not pending else None
    return wait_until(done, timeout_s)


def put(bucket: str, key: str, body: bytes) -> str:
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    return f"s3://{bucket}/{key}"


def test_an_amc_result_becomes_a_typed_table_of_its_tenant(cloud: LocalCloud, inbox: Inbox) -> None:
    customer = onboard(cloud, inbox, "lk")
    bucket, database = f"amc-{customer}-results", f"amci_local_{customer}"
    source = put(bucket, "workflow=top_campaigns/schedule=adhoc/2026-11-27T04:30:00.000Z-top_campaigns.csv", AMC_CSV)

    [record] = processed(cloud, "adtech-amc", source)
    columns = catalogued(database, "top_campaigns_adhoc")
    rows = sql(cloud, "SELECT campaign, campaign_id, impressions, total_cost, purchase_rate, is_new, tenant, "
                      "export_year FROM top_campaigns_adhoc ORDER BY campaign", database)

    assert columns["campaign_id"] == "string" and columns["impressions"] == "bigint"
    assert columns["total_cost"] == "double" and columns["purchase_rate"] == "double"
    assert columns["is_new"] == "boolean" and columns["event_date"] == "date"
    assert [r["campaign"] for r in rows] == ["Brand, Spring", "Generic"]  # quoting kept; the filtered row removed
    assert rows[1]["impressions"] is None and rows[1]["purchase_rate"] is None  # real nulls, not -1
    assert rows[0]["tenant"] == customer and rows[0]["export_year"] == "2026"
    assert (int(record["rowsRead"]), int(record["rowsWritten"]), int(record["rowsFiltered"])) == (3, 2, 1)
    assert sql_types(cloud, "SELECT campaign_id, impressions, total_cost, is_new, event_date FROM top_campaigns_adhoc",
                     database) == ["varchar", "bigint", "double", "boolean", "date"]


def test_duplicate_events_and_a_replay_add_no_rows(cloud: LocalCloud, inbox: Inbox) -> None:
    customer = onboard(cloud, inbox, "ld")
    bucket, database = f"amc-{customer}-results", f"amci_local_{customer}"
    key = "workflow=daily/schedule=adhoc/2026-11-27T05:00:00.000Z-daily.csv"
    source = put(bucket, key, AMC_CSV)
    processed(cloud, "adtech-amc", source)
    values = [customer, "2026", "11", "20261127T050000000Z"]  # tenant, export year and month, file timestamp
    location = (f"s3://{cloud.outputs['StageBucket']}/post-stage/{database}/daily_adhoc/tenant={customer}/"
                "export_year=2026/export_month=11/file_timestamp=20261127T050000000Z/")
    assert partitions(database, "daily_adhoc") == [(values, location)]
    second = aws.client("s3").put_object(Bucket=bucket, Key=key, Body=AMC_CSV)  # delivered again: a new version
    wait_until(lambda: _object_records(cloud, "adtech-amc", f"{source}#{second['VersionId']}"), 60)
    wait_until(lambda: not _pending(cloud, source), 60)

    count = sql(cloud, "SELECT COUNT(*) AS n FROM daily_adhoc", database)
    assert count == [{"n": "2"}]
    assert partitions(database, "daily_adhoc") == [(values, location)]  # the replay's partition is the same one


def test_a_schema_change_adds_the_column_and_quarantines_the_conflict(cloud: LocalCloud, inbox: Inbox) -> None:
    customer = onboard(cloud, inbox, "ls")
    bucket, database = f"amc-{customer}-results", f"amci_local_{customer}"
    first = put(bucket, "workflow=evolve/schedule=adhoc/2026-11-27T06:00:00.000Z-evolve.csv",
                b"campaign,impressions\nA,10\nB,20\n")
    processed(cloud, "adtech-amc", first)
    second = put(bucket, "workflow=evolve/schedule=adhoc/2026-11-27T07:00:00.000Z-evolve.csv",
                 b"campaign,impressions,clicks\nC,30,3\nD,lots,4\n")  # a new column, and a text where a number was
    records = processed(cloud, "adtech-amc", second)
    note = inbox.wait_for(lambda n: n.attributes["requestType"] == "stageB" and second in n.body["summary"], 60)

    assert table_columns(database, "evolve_adhoc") == {"campaign": "string", "impressions": "bigint",
                                                       "clicks": "bigint"}
    rows = sql(cloud, "SELECT campaign, impressions, clicks FROM evolve_adhoc ORDER BY campaign", database)
    assert [(r["campaign"], r["impressions"], r["clicks"]) for r in rows] == [
        ("A", "10", None), ("B", "20", None), ("C", "30", "3")]
    assert int(records[0]["rowsRejected"]) == 1
    assert "impressions" in note.body["summary"] and "lots" in note.body["summary"]
    quarantined = note.body["details"]["quarantine"].removeprefix("s3://").split("/", 1)
    lines = aws.client("s3").get_object(Bucket=quarantined[0], Key=quarantined[1])["Body"].read().splitlines()
    assert [json.loads(line)["value"] for line in lines] == ["lots"]


def test_a_custom_dataset_needs_no_change_to_the_lake(cloud: LocalCloud, inbox: Inbox) -> None:
    team = f"t{uuid.uuid4().hex[:6]}"
    note = ask(cloud, inbox, "datalake", {"requestType": "registerDataset", "team": team, "dataset": "weather",
                                          "stageA": "lake_transforms.weather:stage_a",
                                          "stageB": "lake_transforms.weather:stage_b"})
    assert note.attributes["status"] == "SUCCEEDED", note.body["summary"]
    raw, database = cloud.outputs["RawBucket"], f"amci_local_{team}_weather"
    good = put(raw, f"{team}/weather/berlin/2026-11-26.csv",
               b"time,temperature_f,rain_mm\n08:00,32,0.5\n14:00,50,\n")
    bad = put(raw, f"{team}/weather/berlin/notes.txt", b"not a reading")

    processed(cloud, f"{team}-weather", good)
    rows = sql(cloud, "SELECT station, day, temperature_c, rain_mm, frost FROM readings ORDER BY temperature_c",
               database)

    # frost is the dataset's own stage B (lake_transforms.weather:stage_b), added to the typed rows
    assert rows == [{"station": "berlin", "day": "2026-11-26", "temperature_c": "0.0", "rain_mm": "0.5",
                     "frost": "true"},
                    {"station": "berlin", "day": "2026-11-26", "temperature_c": "10.0", "rain_mm": None,
                     "frost": "false"}]
    assert table_columns(database, "readings") == {"time": "string", "temperature_c": "double", "rain_mm": "double",
                                                   "frost": "boolean"}  # station and day: partition keys
    assert sql_types(cloud, "SELECT temperature_c, rain_mm, frost, day FROM readings", database) == [
        "double", "double", "boolean", "varchar"]
    assert analyst_grants(cloud, database, "readings") == ["DESCRIBE", "SELECT"]
    objects = wait_until(lambda: _object_records(cloud, f"{team}-weather", bad), 30)
    assert objects[0]["status"] == "QUARANTINED" and "expected <team>/weather" in objects[0]["reason"]
    told = inbox.wait_for(lambda n: n.attributes["requestType"] == "stageA" and bad in n.body["summary"], 30)
    assert told.attributes["status"] == "REJECTED" and "expected <team>/weather" in told.body["summary"]
    counts = wait_until(lambda: (counted := {name: metric(f"{team}-weather", name) for name in (
        "Objects", "ObjectsQuarantined", "Files", "Rows", "Bytes")})["Objects"] == 2 and all(counted.values())
        and counted, 30)  # stage A's and stage B's, published apart
    assert counts["ObjectsQuarantined"] == 1 and counts["Files"] == 1 and counts["Rows"] == 2
    assert counts["Bytes"] == int(processed(cloud, f"{team}-weather", good)[0]["bytesWritten"])


def _file_records(cloud: LocalCloud, dataset: str, source: str) -> list[dict[str, Any]]:
    return [i for i in pipeline_items(cloud, dataset) if i["itemId"].startswith("file#") and i.get("source") == source]


def _object_records(cloud: LocalCloud, dataset: str, source: str) -> list[dict[str, Any]]:
    return [i for i in pipeline_items(cloud, dataset) if i["itemId"].startswith(f"object#{source}")]


def _pending(cloud: LocalCloud, source: str) -> bool:
    return any(i["itemId"].startswith("pending#") and i.get("source") == source
               for i in pipeline_items(cloud, "adtech-amc"))


def test_ads_and_sp_reports_land_as_tables(cloud: LocalCloud, inbox: Inbox) -> None:
    box, table = cloud.sandbox, f"lake{uuid.uuid4().hex[:6]}"
    profile = str(box.ads.add_profile("na").profile_id)
    ads = ask(cloud, inbox, "ads_reporting", {"profileId": profile, "region": "NA", "tableName": table, "requestBody": {
        "startDate": "TODAY(-3)", "endDate": "TODAY(-1)", "configuration": {
            "adProduct": "SPONSORED_PRODUCTS", "groupBy": ["campaign"], "reportTypeId": "spCampaigns",
            "timeUnit": "DAILY", "columns": ["date", "campaignId", "campaignName", "impressions", "cost"]}}},
        timeout_s=60)
    sales = ask(cloud, inbox, "sp_reporting", {"tablePrefix": table, "requestBody": {
        "reportType": "GET_SALES_AND_TRAFFIC_REPORT", "marketplaceIds": ["ATVPDKIKX0DER"],
        "reportOptions": {"dateGranularity": "DAY", "asinGranularity": "CHILD"},
        "dataStartTime": "TODAY(-9)", "dataEndTime": "TODAY(-8)"}}, timeout_s=60)
    orders = ask(cloud, inbox, "sp_reporting", {"tablePrefix": f"{table}_orders", "requestBody": {
        "reportType": "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL", "marketplaceIds": ["ATVPDKIKX0DER"],
        "dataStartTime": "TODAY(-5)", "dataEndTime": "TODAY(-4)"}}, timeout_s=60)
    assert [n.attributes["status"] for n in (ads, sales, orders)] == ["SUCCEEDED"] * 3

    ads_rows = json.loads(_gunzipped(ads.body["details"]["s3Uri"]))
    processed(cloud, "adtech-ads_report", ads.body["details"]["s3Uri"])
    counted = sql(cloud, f"SELECT COUNT(*) AS n, COUNT(DISTINCT report_date) AS days FROM {table}",
                  "amci_local_adtech_ads_report")
    assert counted == [{"n": str(len(ads_rows)), "days": "1"}]
    assert catalogued("amci_local_adtech_ads_report", table) == {
        "date": "date", "campaignid": "string", "campaignname": "string", "impressions": "bigint", "cost": "double"}

    processed(cloud, "adtech-sp_report", sales.body["details"]["s3Uri"])
    by_date = sql(cloud, f"SELECT COUNT(*) AS n FROM {table}_salesandtrafficbydate", "amci_local_adtech_sp_report")
    assert by_date == [{"n": "2"}]  # one row a day
    columns = catalogued("amci_local_adtech_sp_report", f"{table}_salesandtrafficbydate")
    expected = {"date": "date", "salesbydate_unitsordered": "bigint",
                "salesbydate_orderedproductsales_amount": "double",
                "salesbydate_orderedproductsales_currencycode": "string", "trafficbydate_buyboxpercentage": "double"}
    assert {name: columns.get(name) for name in expected} == expected
    assert sql_types(cloud, "SELECT date, salesbydate_unitsordered, salesbydate_orderedproductsales_amount, "
                            f"report_date FROM {table}_salesandtrafficbydate", "amci_local_adtech_sp_report") == [
        "date", "bigint", "double", "varchar"]
    by_asin = catalogued("amci_local_adtech_sp_report", f"{table}_salesandtrafficbyasin")
    assert (by_asin["childasin"], by_asin["salesbyasin_unitsordered"]) == ("string", "bigint")

    processed(cloud, "adtech-sp_report", orders.body["details"]["s3Uri"])
    order_lines = _gunzipped(orders.body["details"]["s3Uri"]).decode().strip().count("\n")  # less the header
    counted = sql(cloud, f"SELECT COUNT(*) AS n FROM {table}_orders", "amci_local_adtech_sp_report")
    assert counted == [{"n": str(order_lines)}]
    columns = catalogued("amci_local_adtech_sp_report", f"{table}_orders")
    expected = {"amazon_order_id": "string", "purchase_date": "timestamp", "quantity": "bigint",
                "item_price": "double", "is_business_order": "boolean", "asin": "string"}
    assert {name: columns.get(name) for name in expected} == expected
    assert sql_types(cloud, f"SELECT purchase_date, quantity, item_price, is_business_order, asin FROM {table}_orders",
                     "amci_local_adtech_sp_report") == ["timestamp", "bigint", "double", "boolean", "varchar"]
    for database, name in (("amci_local_adtech_ads_report", table), ("amci_local_adtech_sp_report", f"{table}_orders"),
                           ("amci_local_adtech_sp_report", f"{table}_salesandtrafficbydate")):
        assert analyst_grants(cloud, database, name) == ["DESCRIBE", "SELECT"], name


def test_an_sp_report_specification_is_kept_whole_on_its_table(cloud: LocalCloud) -> None:
    table = f"spec{uuid.uuid4().hex[:6]}"
    specification = {"reportType": "GET_SALES_AND_TRAFFIC_REPORT", "reportOptions": {"dateGranularity": "DAY"},
                     "marketplaceIds": [f"MARKETPLACE{n:05d}" for n in range(300)]}  # ~5 KB: beyond S3 metadata
    source = put(cloud.outputs["ReportsBucket"], f"adtech/sp_report/{table}/report_date=2026-11-20/report-1.json",
                 json.dumps({"reportSpecification": specification, "salesAndTrafficByDate": [
                     {"date": "2026-11-20", "sales": {"units": 3}}]}).encode())

    processed(cloud, "adtech-sp_report", source)

    found = aws.client("glue").get_table(DatabaseName="amci_local_adtech_sp_report",
                                         Name=f"{table}_salesandtrafficbydate")["Table"]
    assert json.loads(found["Parameters"]["report_specification"]) == specification
    assert found["Parameters"]["classification"] == "parquet"


def test_a_malformed_file_is_quarantined_while_the_others_of_its_batch_land(cloud: LocalCloud, inbox: Inbox) -> None:
    team = f"m{uuid.uuid4().hex[:6]}"
    dataset, database = f"{team}-weather", f"amci_local_{team}_weather"
    register_weather(cloud, inbox, team, **WAITING)
    *good, bad = put_readings(cloud, team, {  # one batch, in this order: the bad file comes last
        "2026-11-01": b"time,temperature_f,rain_mm\n08:00,32,1.5\n12:00,41,0\n",
        "2026-11-02": b"time,temperature_f,rain_mm\n08:00,35,2.5\n",
        "2026-11-03": b"time,temperature_f,rain_mm\n08:00,40,heavy\n12:00,41,light\n"})  # no rain in mm

    register_weather(cloud, inbox, team)
    broken = processed(cloud, dataset, bad)
    note = inbox.wait_for(lambda n: n.attributes["requestType"] == "stageB" and bad in n.body["summary"], 60)

    assert broken[0]["status"] == "QUARANTINED"
    assert "no row could be read: rain_mm: expected a double, got 'heavy'" in broken[0]["reason"]
    assert "quarantined" in note.body["summary"] and note.body["details"]["quarantine"].endswith(".csv")
    landed = [processed(cloud, dataset, source)[0] for source in good]
    assert [r["status"] for r in landed] == ["PROCESSED", "PROCESSED"]
    assert len({r["runId"] for r in [*landed, *broken]}) == 1  # the three files shared one run
    assert sql(cloud, "SELECT day, COUNT(*) AS n FROM readings GROUP BY day ORDER BY day", database) == [
        {"day": "2026-11-01", "n": "2"}, {"day": "2026-11-02", "n": "1"}]


def test_max_items_splits_a_backlog_into_several_runs(cloud: LocalCloud, inbox: Inbox) -> None:
    team = f"b{uuid.uuid4().hex[:6]}"
    register_weather(cloud, inbox, team, **WAITING)
    put_readings(cloud, team, {f"2026-10-0{n}": b"time,temperature_f,rain_mm\n08:00,40,0\n" for n in range(1, 6)})

    register_weather(cloud, inbox, team, max_items=2)
    wait_until(lambda: not _pending_items(cloud, f"{team}-weather"), 90)

    runs = _runs(cloud, f"{team}-weather")
    assert sorted(int(r["files"]) for r in runs) == [1, 2, 2]  # five files, at most two a run
    assert {r["status"] for r in runs} == {"SUCCEEDED"}


def test_max_wait_starts_a_run_below_min_items(cloud: LocalCloud, inbox: Inbox) -> None:
    team = f"w{uuid.uuid4().hex[:6]}"
    register_weather(cloud, inbox, team, **WAITING)  # both files wait, however long the second takes to come
    before = time.time()
    put_readings(cloud, team, {"2026-09-01": b"time,temperature_f,rain_mm\n08:00,40,0\n",
                               "2026-09-02": b"time,temperature_f,rain_mm\n08:00,41,0\n"})

    register_weather(cloud, inbox, team, min_items=1000, max_wait_s=4)
    wait_until(lambda: not _pending_items(cloud, f"{team}-weather"), 90)

    [run] = _runs(cloud, f"{team}-weather")  # two files of the thousand it waits for, once the oldest waited
    assert int(run["files"]) == 2 and run["status"] == "SUCCEEDED"
    assert int(run["startedAt"]) >= int(before) + 4 - 1  # (startedAt is in whole seconds)


def test_a_pre_stage_file_stage_b_cannot_read_is_dead_lettered_after_its_attempts_and_redriven(
        cloud: LocalCloud, inbox: Inbox) -> None:
    team, raw = f"c{uuid.uuid4().hex[:6]}", cloud.outputs["RawBucket"]
    dataset, database = f"{team}-weather", f"amci_local_{team}_weather"

    register_weather(cloud, inbox, team, **WAITING)  # files wait: no batch runs yet
    days = ["2026-11-01", "2026-11-02", "2026-11-03"]
    for day in days:
        put(raw, f"{team}/weather/oslo/{day}.csv", b"time,temperature_f,rain_mm\n08:00,32,1\n12:00,41,0\n")
    pending = wait_until(lambda: len(_pending_items(cloud, dataset)) == 3 and _pending_items(cloud, dataset), 60)
    lost = sorted(i["preStageKey"] for i in pending)[1]
    stage_bucket, s3 = cloud.outputs["StageBucket"], aws.client("s3")
    kept = s3.get_object(Bucket=stage_bucket, Key=lost)["Body"].read()
    s3.delete_object(Bucket=stage_bucket, Key=lost)  # stage B will fail on the second file, after the first

    register_weather(cloud, inbox, team)
    dead = [json.loads(m["Body"]) for m in wait_until(lambda: _dead_letters(cloud), 90)]  # after three attempts
    assert "NoSuchKey" in dead[0]["reason"] and dead[0]["preStageKey"] == lost
    wait_until(lambda: not _pending_items(cloud, dataset), 60)  # the third file, freed with the dead letter, lands
    rows = sql(cloud, "SELECT day, COUNT(*) AS n FROM readings GROUP BY day ORDER BY day", database)
    assert rows == [{"day": "2026-11-01", "n": "2"}, {"day": "2026-11-03", "n": "2"}]  # each file once

    s3.put_object(Bucket=stage_bucket, Key=lost, Body=kept)
    note = ask(cloud, inbox, "datalake", {"requestType": "redrive", "stage": "b"})
    assert note.attributes["status"] == "SUCCEEDED" and note.body["details"]["redriven"] == 1
    wait_until(lambda: not _pending_items(cloud, dataset), 60)
    rows = sql(cloud, "SELECT day, COUNT(*) AS n FROM readings GROUP BY day ORDER BY day", database)
    assert rows == [{"day": day, "n": "2"} for day in days]


READINGS = {"2026-11-01": b"time,temperature_f,rain_mm\n08:00,32,1\n12:00,41,0\n",
            "2026-11-02": b"time,temperature_f,rain_mm\n08:00,28,\n12:00,35,2.5\n",
            "2026-11-03": b"time,temperature_f,rain_mm\n08:00,50,0\n"}


def test_a_stage_b_run_that_crashes_midway_yields_after_redelivery_what_a_clean_run_does(
        cloud: LocalCloud, inbox: Inbox) -> None:
    crashed, clean = (f"k{uuid.uuid4().hex[:6]}" for _ in range(2))
    for team in (crashed, clean):
        register_weather(cloud, inbox, team, **WAITING)
        put_readings(cloud, team, READINGS)
    # the run dies after the second file's Parquet and partition, before it records that file done
    rule = cloud.crashes.add(cloud.outputs["DatalakeStageBJob"], "Glue.BatchCreatePartition", after=1)
    try:
        register_weather(cloud, inbox, crashed)
        wait_until(lambda: rule.crashed == 1 and not _pending_items(cloud, f"{crashed}-weather"), 90)
    finally:
        cloud.crashes.rules.remove(rule)
    register_weather(cloud, inbox, clean)
    wait_until(lambda: not _pending_items(cloud, f"{clean}-weather"), 90)

    runs = _runs(cloud, f"{crashed}-weather")
    assert sorted(r["status"] for r in runs) == ["FAILED", "SUCCEEDED"]  # the crash, then the redelivery
    assert "crashed after Glue.BatchCreatePartition" in next(r for r in runs if r["status"] == "FAILED")["reason"]
    assert (metric(f"{crashed}-weather", "RunsFailed"), metric(f"{clean}-weather", "RunsFailed")) == (1, 0)
    assert _landed(cloud, crashed) == _landed(cloud, clean)
    statement = "SELECT day, time, temperature_c, rain_mm, frost FROM readings ORDER BY day, time"
    assert sql(cloud, statement, f"amci_local_{crashed}_weather") == sql(cloud, statement,
                                                                          f"amci_local_{clean}_weather")


def _landed(cloud: LocalCloud, team: str) -> dict[str, Any]:
    """What stage B made of a team's weather: Parquet files (by path under the database) and their rows, the Glue
    schema and partitions (their values)."""
    database, bucket, s3 = f"amci_local_{team}_weather", cloud.outputs["StageBucket"], aws.client("s3")
    prefix = f"post-stage/{database}/"
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])]
    files = {key.removeprefix(prefix): pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
             for key in keys}
    table = aws.client("glue").get_table(DatabaseName=database, Name="readings")["Table"]
    return {"files": {path: (data.schema, data.to_pylist()) for path, data in files.items()},
            "columns": table["StorageDescriptor"]["Columns"], "keys": table["PartitionKeys"],
            "partitions": [values for values, _ in partitions(database, "readings")]}


def register_weather(cloud: LocalCloud, inbox: Inbox, team: str, min_items: int = 1, max_items: int = 1000,
                     max_wait_s: int = 0) -> None:
    """Register ``team``'s weather dataset (its own stage A and B) with these batching limits (by default a file
    runs at once; ``**WAITING``: files wait)."""
    note = ask(cloud, inbox, "datalake", {"requestType": "registerDataset", "team": team, "dataset": "weather",
                                          "stageA": "lake_transforms.weather:stage_a",
                                          "stageB": "lake_transforms.weather:stage_b", "minItems": min_items,
                                          "maxItems": max_items, "maxWaitSeconds": max_wait_s})
    assert note.attributes["status"] == "SUCCEEDED", note.body["summary"]


WAITING = {"min_items": 1000, "max_wait_s": 86400}  # no batch runs until the dataset is registered again


def put_readings(cloud: LocalCloud, team: str, readings: dict[str, bytes]) -> list[str]:
    """Drop a day's readings of station oslo per entry into the raw bucket; waits until each is pre-staged."""
    sources = [put(cloud.outputs["RawBucket"], f"{team}/weather/oslo/{day}.csv", body)
               for day, body in readings.items()]
    wait_until(lambda: {i["source"] for i in pipeline_items(cloud, f"{team}-weather")
                        if i["itemId"].startswith(("pending#", "file#"))} >= set(sources), 60)
    return sources


def _runs(cloud: LocalCloud, dataset: str) -> list[dict[str, Any]]:
    return [i for i in pipeline_items(cloud, dataset) if i["itemId"].startswith("run#")]


def _gunzipped(uri: str) -> bytes:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return gzip.decompress(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def _pending_items(cloud: LocalCloud, dataset: str) -> list[dict[str, Any]]:
    return [i for i in pipeline_items(cloud, dataset) if i["itemId"].startswith("pending#")]


def _dead_letters(cloud: LocalCloud, queue: str = "DatalakeStageBDlq") -> list[dict[str, Any]]:
    """What the stage's dead-letter queue holds, left in place (stage B's bodies are its pending items)."""
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=cloud.outputs[queue])["QueueUrl"]
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])


def test_a_deleted_object_is_recorded_and_its_lake_data_kept(cloud: LocalCloud, inbox: Inbox) -> None:
    team = f"d{uuid.uuid4().hex[:6]}"
    register_weather(cloud, inbox, team)
    [source] = put_readings(cloud, team, {"2026-08-01": b"time,temperature_f,rain_mm\n08:00,40,0\n"})
    processed(cloud, f"{team}-weather", source)
    bucket, key = source.removeprefix("s3://").split("/", 1)

    s3 = aws.client("s3")
    version = s3.head_object(Bucket=bucket, Key=key)["VersionId"]
    s3.delete_object(Bucket=bucket, Key=key, VersionId=version)  # its only version: the object is gone

    ledger = aws.table(cloud.outputs["DatalakeObjectsTable"])
    deleted = wait_until(lambda: [i for i in aws.items(ledger.scan) if i["bucket"] == bucket and i["key"] == key
                                  and i["action"] == "DELETED"], 60)
    assert [i["status"] for i in deleted] == ["DELETED"]  # recorded and done with: routing did not fail
    assert int(deleted[0]["expiresAt"]) - int(deleted[0]["receivedAt"]) == 400 * 24 * 3600
    ttl = aws.client("dynamodb").describe_time_to_live(TableName=cloud.outputs["DatalakeObjectsTable"])
    assert ttl["TimeToLiveDescription"] == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiresAt"}
    assert sql(cloud, "SELECT COUNT(*) AS n FROM readings", f"amci_local_{team}_weather") == [{"n": "1"}]


def _dead_lettered_in_stage_a(cloud: LocalCloud, inbox: Inbox, team: str) -> str:
    """A weather reading of ``team`` whose every stage A attempt crashed, so that it waits in stage A's DLQ."""
    sqs = aws.client("sqs")
    register_weather(cloud, inbox, team)
    queue = sqs.get_queue_url(QueueName=cloud.outputs["DatalakeStageAQueue"])["QueueUrl"]
    visibility = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["VisibilityTimeout"])["Attributes"]
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "1"})  # retries in seconds, not 30 min
    rule = cloud.crashes.add("amci-datalake-local-on_stage_a", "S3.GetObject", times=3)  # every attempt dies
    try:
        source = put(cloud.outputs["RawBucket"], f"{team}/weather/oslo/2026-07-01.csv",
                     b"time,temperature_f,rain_mm\n08:00,40,0\n")
        dead = wait_until(lambda: [m for m in _dead_letters(cloud, "DatalakeStageADlq")
                                   if json.loads(m["Body"])["key"] == source.split("/", 3)[3]], 90)
    finally:
        cloud.crashes.rules.remove(rule)
        sqs.set_queue_attributes(QueueUrl=queue, Attributes=visibility)
    assert rule.crashed == 3 and len(dead) == 1
    return source


def test_a_stage_a_dead_letter_is_redriven_through_stage_a(cloud: LocalCloud, inbox: Inbox) -> None:
    team = f"r{uuid.uuid4().hex[:6]}"
    source = _dead_lettered_in_stage_a(cloud, inbox, team)

    note = ask(cloud, inbox, "datalake", {"requestType": "redrive", "stage": "a"})

    assert note.attributes["status"] == "SUCCEEDED" and note.body["details"]["redriven"] >= 1  # ours, and others' left
    processed(cloud, f"{team}-weather", source)
    assert sql(cloud, "SELECT COUNT(*) AS n FROM readings", f"amci_local_{team}_weather") == [{"n": "1"}]


def test_an_object_deleted_before_stage_a_read_it_is_skipped_not_dead_lettered(
        cloud: LocalCloud, inbox: Inbox) -> None:
    team = f"g{uuid.uuid4().hex[:6]}"
    source = _dead_lettered_in_stage_a(cloud, inbox, team)
    bucket, key = source.removeprefix("s3://").split("/", 1)
    s3 = aws.client("s3")
    s3.delete_object(Bucket=bucket, Key=key, VersionId=s3.head_object(Bucket=bucket, Key=key)["VersionId"])

    note = ask(cloud, inbox, "datalake", {"requestType": "redrive", "stage": "a"})
    skipped = wait_until(lambda: [i for i in pipeline_items(cloud, f"{team}-weather")
                                  if i["itemId"].startswith(f"object#{source}#") and i["status"] == "SKIPPED"], 60)

    assert note.attributes["status"] == "SUCCEEDED" and note.body["details"]["redriven"] >= 1  # ours, and others' left
    assert [i["reason"] for i in skipped] == ["deleted before stage A read it"]
    assert not [m for m in _dead_letters(cloud, "DatalakeStageADlq") if json.loads(m["Body"])["key"] == key]


def test_a_dataset_whose_transform_cannot_run_is_refused(cloud: LocalCloud, inbox: Inbox) -> None:
    missing = ask(cloud, inbox, "datalake", {"requestType": "registerDataset", "team": "ops", "dataset": "nothing",
                                             "stageA": "lake_transforms.nowhere:stage_a"})
    outside = ask(cloud, inbox, "datalake", {"requestType": "registerDataset", "team": "ops", "dataset": "shell",
                                             "stageA": "os:system"})
    builtin = ask(cloud, inbox, "datalake", {"requestType": "registerDataset", "team": "adtech", "dataset": "amc",
                                             "stageA": "lake_transforms.weather:stage_a"})
    missing_b = ask(cloud, inbox, "datalake", {"requestType": "registerDataset", "team": "ops", "dataset": "nob",
                                               "stageA": "lake_transforms.weather:stage_a",
                                               "stageB": "lake_transforms.weather:no_such_function"})
    outside_b = ask(cloud, inbox, "datalake", {"requestType": "registerDataset", "team": "ops", "dataset": "shellb",
                                               "stageA": "lake_transforms.weather:stage_a", "stageB": "os:system"})

    notes = (missing, outside, builtin, missing_b, outside_b)
    assert [n.attributes["status"] for n in notes] == ["REJECTED"] * 5
    assert "stageA: expected an entry point vendored with the data lake app" in missing.body["summary"]
    assert "stageA" in outside.body["summary"] and "adtech-amc" in builtin.body["summary"]
    assert "stageB: expected an entry point vendored with the data lake app" in missing_b.body["summary"]
    assert "stageB" in outside_b.body["summary"] and "stageA" not in outside_b.body["summary"]


def test_a_report_cut_short_is_quarantined_with_its_reason(cloud: LocalCloud, inbox: Inbox) -> None:
    whole = gzip.compress(json.dumps([{"campaignId": str(n), "cost": n / 10} for n in range(5000)]).encode())
    source = put(cloud.outputs["ReportsBucket"], f"adtech/ads_report/cut{uuid.uuid4().hex[:6]}/report_date=2026-11-01/"
                 "report-1.json.gz", whole[: len(whole) // 2])

    objects = wait_until(lambda: _object_records(cloud, "adtech-ads_report", source), 60)
    told = inbox.wait_for(lambda n: n.attributes["requestType"] == "stageA" and source in n.body["summary"], 30)

    assert objects[0]["status"] == "QUARANTINED" and "cut short" in objects[0]["reason"]
    assert told.attributes["status"] == "REJECTED"
