"""The data lake end to end on the local cloud: files dropped where the other services put them become typed,
catalogued Parquet that SQL reads; duplicates, replays, malformed files, schema changes and a crashed stage B."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from local.cloud import LocalCloud
from local.inbox import Inbox
from shared import aws, lake
from tests.support import ask, onboard, wait_until

AMC_CSV = (b'campaign,campaign_id,impressions,total_cost,purchase_rate,is_new,event_date,filtered\n'
           b'"Brand, Spring",1001,1200,12.5,0.25,true,2026-11-01,false\n'
           b'Generic,1002,,3.0,,false,2026-11-02,false\n'
           b'Hidden,1003,7,1.0,0.1,false,2026-11-02,true\n')


@pytest.fixture(scope="module", autouse=True)
def fast_reports(cloud: LocalCloud) -> Iterator[None]:
    before = cloud.sandbox.ads.timings
    cloud.sandbox.ads.state.timings = replace(before, pending_s=0.2, processing_s=0.3)
    yield
    cloud.sandbox.ads.state.timings = before


def sql(cloud: LocalCloud, statement: str, database: str | None = None) -> list[dict[str, Any]]:
    return lake.query(aws.client("athena"), statement, database=database,
                      output=f"s3://{cloud.outputs['StageBucket']}/athena/").as_dicts()


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

    processed(cloud, "adtech-amc", source)
    columns = catalogued(database, "top_campaigns_adhoc")
    rows = sql(cloud, "SELECT campaign, campaign_id, impressions, total_cost, purchase_rate, is_new, tenant, "
                      "export_year FROM top_campaigns_adhoc ORDER BY campaign", database)

    assert columns["campaign_id"] == "string" and columns["impressions"] == "bigint"
    assert columns["total_cost"] == "double" and columns["purchase_rate"] == "double"
    assert columns["is_new"] == "boolean" and columns["event_date"] == "date"
    assert [r["campaign"] for r in rows] == ["Brand, Spring", "Generic"]  # quoting kept; the filtered row removed
    assert rows[1]["impressions"] is None and rows[1]["purchase_rate"] is None  # real nulls, not -1
    assert rows[0]["tenant"] == customer and rows[0]["export_year"] == "2026"


def test_duplicate_events_and_a_replay_add_no_rows(cloud: LocalCloud, inbox: Inbox) -> None:
    customer = onboard(cloud, inbox, "ld")
    bucket, database = f"amc-{customer}-results", f"amci_local_{customer}"
    key = "workflow=daily/schedule=adhoc/2026-11-27T05:00:00.000Z-daily.csv"
    source = put(bucket, key, AMC_CSV)
    processed(cloud, "adtech-amc", source)
    put(bucket, key, AMC_CSV)  # the same result delivered again (a new version of the same key)
    wait_until(lambda: len(_file_records(cloud, "adtech-amc", source)) >= 1 and not _pending(cloud, source), 60)

    count = sql(cloud, "SELECT COUNT(*) AS n FROM daily_adhoc", database)
    assert count == [{"n": "2"}]


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
                                          "stageA": "lake_transforms.weather:stage_a"})
    assert note.attributes["status"] == "SUCCEEDED", note.body["summary"]
    raw = cloud.outputs["RawBucket"]
    good = put(raw, f"{team}/weather/berlin/2026-11-26.csv", b"time,temperature_f,rain_mm\n08:00,41,0.5\n14:00,50,\n")
    bad = put(raw, f"{team}/weather/berlin/notes.txt", b"not a reading")

    processed(cloud, f"{team}-weather", good)
    rows = sql(cloud, "SELECT station, day, temperature_c, rain_mm FROM readings ORDER BY temperature_c",
               f"amci_local_{team}_weather")

    assert rows == [{"station": "berlin", "day": "2026-11-26", "temperature_c": "5.0", "rain_mm": "0.5"},
                    {"station": "berlin", "day": "2026-11-26", "temperature_c": "10.0", "rain_mm": None}]
    objects = wait_until(lambda: _object_records(cloud, f"{team}-weather", bad), 30)
    assert objects[0]["status"] == "QUARANTINED" and "expected <team>/weather" in objects[0]["reason"]


def _items(cloud: LocalCloud, dataset: str) -> list[dict[str, Any]]:
    table = aws.table(cloud.outputs["DatalakePipelineTable"])
    return table.query(KeyConditionExpression="dataset = :d", ExpressionAttributeValues={":d": dataset},
                       ConsistentRead=True)["Items"]


def _file_records(cloud: LocalCloud, dataset: str, source: str) -> list[dict[str, Any]]:
    return [i for i in _items(cloud, dataset) if i["itemId"].startswith("file#") and i.get("source") == source]


def _object_records(cloud: LocalCloud, dataset: str, source: str) -> list[dict[str, Any]]:
    return [i for i in _items(cloud, dataset) if i["itemId"].startswith(f"object#{source}")]


def _pending(cloud: LocalCloud, source: str) -> bool:
    return any(i["itemId"].startswith("pending#") and i.get("source") == source
               for i in _items(cloud, "adtech-amc"))
