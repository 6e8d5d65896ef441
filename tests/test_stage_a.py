"""Stage A (services/datalake/chalicelib/stage_a.py) on real bytes: the Selling Partner JSON split, and AMC
results' names, versions and skips."""

from __future__ import annotations

import gzip
import io
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from lake_transforms.weather import stage_a as stage_a_weather
from tests.support import app_module

stage_a = app_module("datalake/chalicelib/stage_a.py")

SPECIFICATION = {"reportType": "GET_SALES_AND_TRAFFIC_REPORT", "marketplaceIds": ["ATVPDKIKX0DER"],
                 "reportOptions": {"dateGranularity": "DAY", "asinGranularity": "CHILD"}}


def split(document: Any) -> dict[str, Any]:
    """The pre-stage files of an SP JSON report: name → (rows, metadata)."""
    source = stage_a.Source("reports", "adtech/sp_report/sales/report_date=2026-11-20/report-42.json.gz", "v1", None,
                            datetime.now(UTC), 0)
    body = io.BytesIO(gzip.compress(json.dumps(document).encode()))
    return {out.table: ([json.loads(line) for line in b"".join(out.chunks).splitlines()], out.metadata)
            for out in stage_a.sp_report(body, source)}


def test_each_top_level_array_is_its_own_table_with_nested_values_whole() -> None:
    by_date = [{"date": "2026-11-20", "salesByDate": {"orderedProductSales": {"amount": 12.5, "currencyCode": "USD"}},
                "trafficByDate": {"pageViews": 3, "sessions": []}},
               {"date": "2026-11-21", "salesByDate": {}, "trafficByDate": {"pageViews": 0, "tags": [[1], [2, 3]]}}]
    by_asin = [{"childAsin": "B0TEST0001", "salesByAsin": {"unitsOrdered": 1}}]

    tables = split({"reportSpecification": SPECIFICATION, "salesAndTrafficByDate": by_date,
                    "salesAndTrafficByAsin": by_asin, "note": "a scalar is no table", "empty": []})

    assert {name: rows for name, (rows, _) in tables.items()} == {
        "sales_salesandtrafficbydate": by_date, "sales_salesandtrafficbyasin": by_asin}
    metadata = tables["sales_salesandtrafficbydate"][1]
    assert json.loads(metadata["report-specification"]) == SPECIFICATION


def test_a_long_report_specification_is_kept_whole() -> None:
    long = {**SPECIFICATION, "marketplaceIds": [f"MARKETPLACE{n:05d}" for n in range(300)]}  # ~5 KB

    tables = split({"reportSpecification": long, "rows": [{"a": 1}]})

    kept = tables["sales_rows"][1]["report-specification"]
    assert len(kept) > 4000 and json.loads(kept) == long


def test_a_document_without_rows_is_skipped_and_a_broken_one_is_malformed() -> None:
    with pytest.raises(stage_a.Skipped, match="no rows"):
        split({"reportSpecification": SPECIFICATION, "salesAndTrafficByDate": []})
    source = stage_a.Source("reports", "adtech/sp_report/t/report_date=2026-11-20/report-1.json", "v1", None,
                            datetime.now(UTC), 0)
    with pytest.raises(stage_a.Malformed, match="not a JSON report document"):
        list(stage_a.sp_report(io.BytesIO(b'{"rows": [{"a": 1}, {"a": '), source))


# -- AMC results (``amc_csv``): names, versions, and what is skipped --------------------------------------------

RESULT = b'campaign,impressions\n"Brand, ""Spring""",12\n'


def amc(key: str, body: bytes = RESULT) -> list[Any]:
    """The pre-stage files of an AMC result at ``key`` in a tenant's bucket, their content read."""
    source = stage_a.Source("amc-t1-results", key, "v1", "t1", datetime.now(UTC), len(body))
    return [(out, b"".join(out.chunks)) for out in stage_a.amc_csv(io.BytesIO(body), source)]


def test_an_amc_result_named_by_its_timestamp_is_partitioned_by_it_and_passes_unchanged() -> None:
    [(out, content)] = amc("workflow=top/schedule=daily/2026-11-27T04:30:15.123Z-top_campaigns.csv")

    assert out.table == "top_daily" and out.file_format == "csv"
    assert out.partition == {"tenant": "t1", "export_year": "2026", "export_month": "11",
                             "file_timestamp": "20261127T043015123Z"}
    assert out.name == "20261127T043015123Z-top_campaigns"
    assert content == RESULT  # byte for byte: the quoting is kept


def test_an_amc_result_named_by_its_day_alone() -> None:
    [(out, _)] = amc("workflow=top/schedule=weekly/2026-10-05-top_campaigns.csv")

    assert out.table == "top_weekly" and out.name == "20261005-top_campaigns"
    assert out.partition == {"tenant": "t1", "export_year": "2026", "export_month": "10",
                             "file_timestamp": "20261005"}


def test_a_version_suffix_names_its_own_table_and_leaves_the_file_name() -> None:
    [(out, _)] = amc("workflow=top/schedule=daily/2026-11-27T04-30-15-123Z-top_campaigns-ver2.csv")

    assert out.table == "top_daily_ver2" and out.metadata["version"] == "2"
    assert out.name == "20261127T043015123Z-top_campaigns"
    assert out.partition["file_timestamp"] == "20261127T043015123Z"  # the dashed timestamp form, read the same


def test_a_run_of_amc_own_ui_is_skipped() -> None:
    with pytest.raises(stage_a.Skipped, match="AMC's own UI"):
        amc("workflow=analytics-0f8fad5b-d9cb-469f-a165-70867728950e/schedule=adhoc/2026-11-27-result.csv")


@pytest.mark.parametrize("body", [b"campaign,impressions\n", b"campaign,impressions", b"campaign,impressions\n\n"])
def test_a_result_of_a_header_alone_is_skipped_as_empty(body: bytes) -> None:
    with pytest.raises(stage_a.Skipped, match="an empty result"):
        amc("workflow=top/schedule=daily/2026-11-27-top.csv", body)


def test_a_file_that_is_not_a_csv_result_is_skipped() -> None:
    with pytest.raises(stage_a.Skipped, match="not an AMC result"):
        amc("workflow=top/schedule=daily/2026-11-27-top.json")
    with pytest.raises(stage_a.Skipped, match="not an AMC result"):
        amc("elsewhere/2026-11-27-top.csv")


def test_a_result_whose_name_has_no_timestamp_is_malformed() -> None:
    with pytest.raises(stage_a.Malformed, match=r"file name 'top\.csv'"):
        amc("workflow=top/schedule=daily/top.csv")


# -- custom transforms: their ValueError is a data error, anything else a bug ------------------------------------

def weather(key: str, body: bytes) -> list[bytes]:
    """The example custom dataset's stage A (lake_transforms/weather.py) as the pipeline runs it."""
    source = stage_a.Source("raw", key, "v1", None, datetime.now(UTC), len(body))
    return [b"".join(out.chunks) for out in stage_a.custom(stage_a_weather)(io.BytesIO(body), source)]


def test_a_custom_transform_yields_pre_stage_files_from_its_dicts() -> None:
    [content] = weather("ops/weather/oslo/2026-11-01.csv", b"time,temperature_f,rain_mm\n08:00,50,1\n")

    assert content == b"station,time,temperature_c,rain_mm\noslo,08:00,10.0,1\n"


@pytest.mark.parametrize(("key", "body", "reason"), [
    ("ops/weather/oslo/notes.txt", b"", "ValueError: expected <team>/weather"),  # raised before its first file
    ("ops/weather/oslo/2026-11-01.csv", b"when,temp\n", "ValueError: expected the header"),  # while read
    ("ops/weather/oslo/2026-11-01.csv", b"time,temperature_f,rain_mm\n08:00,warm,1\n", "ValueError: could not"),
])
def test_a_custom_transform_s_value_error_makes_the_object_malformed(key: str, body: bytes, reason: str) -> None:
    with pytest.raises(stage_a.Malformed, match=f"^{re.escape(reason)}") as raised:
        weather(key, body)
    assert isinstance(raised.value.__cause__, ValueError)


def test_any_other_error_of_a_custom_transform_stays_itself_to_be_retried() -> None:
    settings: dict[str, str] = {}

    def content() -> Any:
        yield settings["delimiter"].encode()  # a bug: KeyError while its content is read

    def broken(body: Any, source: Any) -> Any:
        yield {"table": "t", "partition": {}, "name": "n", "file_format": "csv", "chunks": content()}
        yield {"table": settings["second"]}  # a bug: KeyError while yielding

    source = stage_a.Source("raw", "ops/x/y.csv", "v1", None, datetime.now(UTC), 0)
    files = iter(stage_a.custom(broken)(io.BytesIO(b""), source))
    with pytest.raises(KeyError, match="delimiter"):
        b"".join(next(files).chunks)
    with pytest.raises(KeyError, match="second"):
        next(files)
