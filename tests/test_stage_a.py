"""Stage A's Selling Partner JSON split (services/datalake/chalicelib/stage_a.py) on real gzip'd documents."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest

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


def test_a_document_without_rows_is_skipped_and_a_broken_one_is_malformed() -> None:
    with pytest.raises(stage_a.Skipped, match="no rows"):
        split({"reportSpecification": SPECIFICATION, "salesAndTrafficByDate": []})
    source = stage_a.Source("reports", "adtech/sp_report/t/report_date=2026-11-20/report-1.json", "v1", None,
                            datetime.now(UTC), 0)
    with pytest.raises(stage_a.Malformed, match="not a JSON report document"):
        list(stage_a.sp_report(io.BytesIO(b'{"rows": [{"a": 1}, {"a": '), source))
