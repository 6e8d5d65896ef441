"""Stage B's converter (services/datalake/glue/convert.py): real files in, Parquet read back with pyarrow.parquet."""

from __future__ import annotations

import datetime
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support import app_module

convert = app_module("datalake/glue/convert.py")
UTC = datetime.UTC


def run(tmp_path: Path, data: str | bytes, file_format: str = "csv", **options: Any) -> tuple[Any, pa.Table]:
    """Convert ``data`` from a file to a Parquet file; the result and the table read back."""
    source = tmp_path / f"source.{file_format}"
    source.write_bytes(data.encode() if isinstance(data, str) else data)
    sink = tmp_path / "out.parquet"
    with source.open("rb") as handle:
        result = convert.convert(handle, file_format, str(sink), **options)
    assert result.bytes_written == sink.stat().st_size
    assert result.rows_read == result.rows_written + result.rows_filtered + result.rows_rejected
    table = pq.read_table(sink)
    assert table.num_rows == result.rows_written
    assert table.schema.equals(result.schema)
    return result, table


def ndjson(*rows: dict[str, Any]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


# -- CSV, TSV --------------------------------------------------------------------------------------------------------

def test_csv_quoting_commas_and_escaped_quotes(tmp_path: Path) -> None:
    data = ('campaign,advertiser,note\n'
            '"Summer, Sale","Acme ""Best"" Co",plain\n'
            '"""Quoted""",",",""\n'
            'Café Ünïcode,x,"a,b,c"\n')
    result, table = run(tmp_path, data)

    assert table.column("campaign").to_pylist() == ["Summer, Sale", '"Quoted"', "Café Ünïcode"]
    assert table.column("advertiser").to_pylist() == ['Acme "Best" Co', ",", "x"]
    assert table.column("note").to_pylist() == ["plain", None, "a,b,c"]  # a quoted empty value is null too
    assert result.rows_read == 3 and result.rows_rejected == 0


def test_types_by_name_rules_override_the_values(tmp_path: Path) -> None:
    data = ("campaign_id,id,advertisedAsin,total_cost,fees,conversion_rate,quality_score,sales_pct,share_percent,"
            "avg_cpc,eCPM,campaignId,impressions\n"
            "123456789012345,7,1,3,0,1,2,5,50,1,2,99,100\n"
            "000123,8,2,4,1,0,3,6,25,2,3,98,200\n")
    result, table = run(tmp_path, data)

    types = {field.name: field.type for field in result.schema}
    assert types == {
        "campaign_id": pa.string(), "id": pa.string(), "advertisedasin": pa.string(),
        "total_cost": pa.float64(), "fees": pa.float64(), "conversion_rate": pa.float64(),
        "quality_score": pa.float64(), "sales_pct": pa.float64(), "share_percent": pa.float64(),
        "avg_cpc": pa.float64(), "ecpm": pa.float64(), "campaignid": pa.string(), "impressions": pa.int64()}
    assert table.column("campaign_id").to_pylist() == ["123456789012345", "000123"]  # leading zeros kept
    assert table.column("total_cost").to_pylist() == [3.0, 4.0]


def test_column_type_rules_directly() -> None:
    text = pa.array
    assert convert.column_type("order_id", text(["1", "2"])) == pa.string()
    assert convert.column_type("ASIN", text(["1"])) == pa.string()
    assert convert.column_type("paid", text(["1"])) == pa.int64()  # "id" only as a word
    assert convert.column_type("totalCost", text(["1"])) == pa.float64()
    assert convert.column_type("clickThroughRate", text(["1"])) == pa.float64()
    assert convert.column_type("separate", text(["1"])) == pa.int64()  # "rate" only as a word
    assert convert.column_type("anything", None) == pa.string()
    assert convert.column_type("anything", text([None, None], pa.string())) == pa.string()
    assert convert.column_type("n", pa.array([1, 2])) == pa.int64()  # a typed (JSON) sample keeps its kind
    assert convert.column_type("n", pa.array([1.5])) == pa.float64()


@pytest.mark.parametrize(("values", "expected"), [
    (["true", "FALSE", "True"], pa.bool_()),
    (["1", "-20", "0"], pa.int64()),
    (["1", "2.5", "-3e2"], pa.float64()),
    (["2024-01-02", "2023-12-31"], pa.date32()),
    (["2024-01-02T03:04:05Z", "2024-01-02 03:04:05.123+02:00", "2024-01-02T03:04"], convert.TIMESTAMP),
    (["1", "x"], pa.string()),
    (["0123", "45"], pa.string()),  # leading zeros: a code, not a number
    (["99999999999999999999"], pa.string()),  # too big for int64: kept exactly
    (["2024-02-30"], pa.string()),  # not a real day
    (["nan", "1.5"], pa.string()),
    (["yes", "no"], pa.string()),
])
def test_types_inferred_from_the_values(values: list[str], expected: pa.DataType) -> None:
    assert convert.column_type("value", pa.array([*values, None], pa.string())) == expected


def test_inferred_values_are_written_typed(tmp_path: Path) -> None:
    data = ("flag,count,amount,day,at,label\n"
            "true,1,1.5,2024-01-02,2024-01-02T03:04:05Z,a\n"
            "FALSE,-2,2,2024-02-29,2024-01-02 05:00:00+02:00,b\n"
            "False,3,-0.25,2023-12-31,2024-01-02T03:04,c\n")
    result, table = run(tmp_path, data)

    assert [field.type for field in result.schema] == [pa.bool_(), pa.int64(), pa.float64(), pa.date32(),
                                                       convert.TIMESTAMP, pa.string()]
    rows = table.to_pylist()
    assert [row["flag"] for row in rows] == [True, False, False]
    assert [row["count"] for row in rows] == [1, -2, 3]
    assert [row["amount"] for row in rows] == [1.5, 2.0, -0.25]
    assert [row["day"] for row in rows] == [datetime.date(2024, 1, 2), datetime.date(2024, 2, 29),
                                            datetime.date(2023, 12, 31)]
    assert [row["at"] for row in rows] == [datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
                                           datetime.datetime(2024, 1, 2, 3, 0, tzinfo=UTC),  # +02:00 to UTC
                                           datetime.datetime(2024, 1, 2, 3, 4, tzinfo=UTC)]  # no zone: UTC


def test_empty_values_are_nulls_never_minus_one_or_empty_text(tmp_path: Path) -> None:
    data = ("clicks,flag,name,total_cost,day\n"
            "5,true,a,1.5,2024-01-01\n"
            ",,,,\n"
            '"","","","",""\n')
    result, table = run(tmp_path, data)

    assert result.rows_rejected == 0
    for name in table.column_names:
        assert table.column(name).to_pylist()[1:] == [None, None], name
    assert table.column("clicks").null_count == 2 and -1 not in table.column("clicks").to_pylist()
    assert table.column("flag").type == pa.bool_() and table.column("clicks").type == pa.int64()


def test_filtered_rows_are_removed_and_counted_and_the_column_kept(tmp_path: Path) -> None:
    data = "campaign,impressions,filtered\na,10,false\nb,20,true\nc,30,TRUE\nd,40,\ne,50,false\n"
    result, table = run(tmp_path, data)

    assert (result.rows_read, result.rows_written, result.rows_filtered) == (5, 3, 2)
    assert table.column("campaign").to_pylist() == ["a", "d", "e"]
    assert table.column("filtered").to_pylist() == [False, None, False]

    kept, table = run(tmp_path, data, drop_filtered=False)
    assert (kept.rows_written, kept.rows_filtered) == (5, 0)
    assert table.column("filtered").to_pylist() == [False, True, True, None, False]


def test_a_bad_value_rejects_its_row_only_with_a_reason(tmp_path: Path) -> None:
    data = ("campaign,total_cost,clicks\n"
            "a,1.5,1\n"
            "b,n/a,2\n"
            "c,2,3\n"
            "d,3,x\n")
    result, table = run(tmp_path, data, table_schema=pa.schema([("clicks", pa.int64())]))

    assert table.column("campaign").to_pylist() == ["a", "c"]
    assert (result.rows_read, result.rows_written, result.rows_rejected) == (4, 2, 2)
    assert result.rejected == [
        convert.Rejected(2, "total_cost", "n/a", "total_cost: expected a double, got 'n/a'"),
        convert.Rejected(4, "clicks", "x", "clicks: expected a bigint, got 'x'"),
    ]


def test_malformed_rows_are_rejected_and_later_rows_keep_their_numbers(tmp_path: Path) -> None:
    data = "a,b\n1,2\n3\n4,5,6\n7,8\nbad,9\n"
    result, table = run(tmp_path, data, table_schema=pa.schema([("a", pa.int64())]))

    assert table.column("a").to_pylist() == [1, 7]
    assert [(r.row, r.column) for r in result.rejected] == [(2, ""), (3, ""), (5, "a")]
    assert result.rejected[0].reason == "expected 2 fields, got 1"
    assert result.rejected[1].value == "4,5,6"


def test_rejected_rows_are_all_counted_but_only_some_described(tmp_path: Path) -> None:
    rows = "".join(f"{i},{'x' if i % 2 else i}\n" for i in range(1, 2 * convert.MAX_REJECTED + 101))
    result, table = run(tmp_path, "n,clicks\n" + rows, table_schema=pa.schema([("clicks", pa.int64())]))

    assert result.rows_rejected == convert.MAX_REJECTED + 50
    assert len(result.rejected) == convert.MAX_REJECTED
    assert [r.row for r in result.rejected[:3]] == [1, 3, 5]
    assert table.num_rows == convert.MAX_REJECTED + 50


def test_an_existing_table_keeps_its_types_and_order_and_new_columns_are_added(tmp_path: Path) -> None:
    table_schema = pa.schema([("event_date", pa.date32()), ("campaign", pa.string()), ("code", pa.string()),
                              ("clicks", pa.int64()), ("filtered", pa.int64()), ("old_metric", pa.float64())])
    data = ("Campaign,clicks,code,new_metric,event_date,filtered\n"
            "a,1,123,1.5,2024-01-01,false\n"
            "b,oops,456,2,2024-01-02,false\n"
            "c,3,789,2.5,2024-01-03,true\n")
    result, table = run(tmp_path, data, table_schema=table_schema)

    assert result.schema.names == ["event_date", "campaign", "code", "clicks", "filtered", "old_metric",
                                   "new_metric"]
    assert [f.type for f in result.schema][:6] == [f.type for f in table_schema]  # types never change
    assert result.added == ["new_metric"]
    assert result.schema.field("new_metric").type == pa.float64()
    assert table.column("code").to_pylist() == ["123"]  # numeric now, but the table has it as string
    assert table.column("filtered").to_pylist() == [0]  # the table stored booleans as 1/0; filtered (1) dropped
    assert table.column("old_metric").to_pylist() == [None]  # not in this file: null
    assert result.absent == ["old_metric"]  # and said so (a dataset's own stage B sees the file's columns only)
    assert (result.rows_rejected, result.rows_filtered) == (1, 1)
    assert result.rejected[0].reason == "clicks: expected a bigint, got 'oops'"


def test_other_table_types_are_read_and_checked(tmp_path: Path) -> None:
    table_schema = pa.schema([("at", pa.timestamp("us")), ("small", pa.int16()), ("amount", pa.decimal128(10, 2)),
                              ("ratio", pa.float32()), ("ok", pa.bool_())])
    data = ("at,small,amount,ratio,ok\n"
            "2024-01-02T03:04:05+01:00,1,1.25,0.5,1\n"
            "2024-01-03,2,3,1e3,False\n"
            "2024-01-04,99999,1,1,true\n"
            "2024-01-05,3,1.234,1,true\n"
            "2024-02-30,4,1,1,true\n"
            "2024-01-06,5,1,1,maybe\n")
    result, table = run(tmp_path, data, table_schema=table_schema)

    assert table.schema == table_schema
    assert table.to_pylist() == [
        {"at": datetime.datetime(2024, 1, 2, 2, 4, 5), "small": 1, "amount": Decimal("1.25"), "ratio": 0.5,
         "ok": True},
        {"at": datetime.datetime(2024, 1, 3), "small": 2, "amount": Decimal("3.00"), "ratio": 1000.0, "ok": False}]
    assert [(r.row, r.column) for r in result.rejected] == [(3, "small"), (4, "amount"), (5, "at"), (6, "ok")]
    assert result.rejected[0].reason == "small: expected a smallint, got '99999'"


def test_without_a_table_every_column_is_added(tmp_path: Path) -> None:
    result, _ = run(tmp_path, "b,a\n1,2\n")
    assert result.added == ["b", "a"]


def test_a_table_type_that_cannot_be_read_from_text_fails_and_leaves_no_file(tmp_path: Path) -> None:
    source = io.BytesIO(b"tags\nx\n")
    with pytest.raises(ValueError, match="tags"):
        convert.convert(source, "csv", str(tmp_path / "out.parquet"),
                        table_schema=pa.schema([("tags", pa.list_(pa.string()))]))
    assert list(tmp_path.iterdir()) == []


def test_tsv_has_no_quoting(tmp_path: Path) -> None:
    data = 'campaign\tclicks\tnote\nSummer, Sale\t3\tsays "hi"\n"quoted"\t\ta,b\n'
    _, table = run(tmp_path, data, "tsv")

    assert table.to_pylist() == [{"campaign": "Summer, Sale", "clicks": 3, "note": 'says "hi"'},
                                 {"campaign": '"quoted"', "clicks": None, "note": "a,b"}]


def test_names_are_normalised_for_glue(tmp_path: Path) -> None:
    assert convert.normalise_name("Total Cost (USD)") == "total_cost_usd"
    assert convert.normalise_name("__Clicks--14d__") == "clicks_14d"
    assert convert.normalise_name("7dayROAS") == "_7dayroas"
    assert convert.normalise_name("campaignId") == "campaignid"
    assert convert.normalise_name("a__b") == "a_b"
    assert convert.normalise_name("%%%") == ""

    _, table = run(tmp_path, "Campaign Name,campaign-name,%%,14d Sales,\ufeffx\na,b,c,1,2\n")
    assert table.column_names == ["campaign_name", "campaign_name_2", "column_3", "_14d_sales", "x"]
    assert table.to_pylist() == [{"campaign_name": "a", "campaign_name_2": "b", "column_3": "c", "_14d_sales": 1,
                                  "x": 2}]


def test_a_bom_and_crlf_line_ends_are_read(tmp_path: Path) -> None:
    _, table = run(tmp_path, b"\xef\xbb\xbfcampaign,clicks\r\na,1\r\nb,2\r\n")
    assert table.to_pylist() == [{"campaign": "a", "clicks": 1}, {"campaign": "b", "clicks": 2}]


def test_invalid_utf8_is_replaced_not_fatal(tmp_path: Path) -> None:
    _, table = run(tmp_path, b"campaign,clicks\nok,1\nbad\xff,2\n")
    assert table.column("campaign").to_pylist() == ["ok", "bad\ufffd"]


def test_a_header_only_file_and_an_empty_file(tmp_path: Path) -> None:
    result, table = run(tmp_path, "campaign,total_cost\n")
    assert table.num_rows == 0 and result.schema == pa.schema([("campaign", pa.string()), ("total_cost", pa.float64())])

    result, table = run(tmp_path, "", table_schema=pa.schema([("campaign", pa.string())]))
    assert table.num_rows == 0 and result.schema.names == ["campaign"] and result.added == []


def test_a_file_object_sink(tmp_path: Path) -> None:
    sink = io.BytesIO()
    result = convert.convert(io.BytesIO(b"a,b\n1,x\n"), "csv", sink)
    assert result.bytes_written == len(sink.getvalue())
    assert pq.read_table(io.BytesIO(sink.getvalue())).to_pylist() == [{"a": 1, "b": "x"}]


# -- blocks and row groups --------------------------------------------------------------------------------------------

def amc_rows(count: int, bad_at: int | None = None) -> str:
    lines = ["campaign,campaign_id,event_date,impressions,clicks,total_cost,filtered"]
    for i in range(1, count + 1):
        clicks = "n/a" if i == bad_at else str(i % 7)
        lines.append(f'"Campaign {i % 13}, ""EU""",{100_000 + i % 13},2024-01-{1 + i % 28:02d},{i * 10},{clicks},'
                     f'{i % 5}.{i % 100:02d},{"true" if i % 50 == 0 else "false"}')
    return "\n".join(lines) + "\n"


def test_types_are_fixed_by_the_first_block_and_a_later_bad_value_rejects_only_its_row(tmp_path: Path) -> None:
    result, table = run(tmp_path, amc_rows(3000, bad_at=2500), block_size=8 * 1024)

    assert table.schema.field("clicks").type == pa.int64()
    assert result.rows_read == 3000
    assert result.rejected == [convert.Rejected(2500, "clicks", "n/a", "clicks: expected a bigint, got 'n/a'")]
    assert result.rows_filtered == 60 - 1  # row 2500 is also a filtered one: counted as rejected
    assert result.rows_written == 3000 - 60
    written = table.column("impressions").to_pylist()
    assert 25000 not in written and 24990 in written and 25010 in written


def test_row_groups_accumulate_across_blocks(tmp_path: Path) -> None:
    data = amc_rows(10_000)
    result, _ = run(tmp_path, data, block_size=16 * 1024, row_group_rows=4000)  # about 40 blocks

    metadata = pq.ParquetFile(tmp_path / "out.parquet").metadata
    assert len(data) // (16 * 1024) >= 30
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [4000, 4000, 1800]
    assert metadata.row_group(0).column(0).compression == "SNAPPY"
    assert result.rows_written == 9800


def test_a_line_longer_than_a_block_is_read(tmp_path: Path) -> None:
    long = "x" * 5000
    _, table = run(tmp_path, f"a,b\n1,{long}\n2,y\n", block_size=1024)
    assert table.column("b").to_pylist() == [long, "y"]


# -- NDJSON ----------------------------------------------------------------------------------------------------------

def test_ndjson_nested_objects_are_flattened_and_missing_keys_are_null(tmp_path: Path) -> None:
    data = ndjson(
        {"date": "2024-05-01", "asin": "B0001", "salesByDate": {"orderedProductSales": {"amount": 12.5,
                                                                                       "currencyCode": "USD"}},
         "units": 3},
        {"date": "2024-05-02", "asin": "B0002", "units": None, "tags": ["a", "b"]},
        {"date": "2024-05-03", "salesByDate": {"orderedProductSales": {"amount": 1, "currencyCode": "EUR"}},
         "flag": True})
    result, table = run(tmp_path, data, "ndjson")

    assert table.column_names == ["date", "asin", "salesbydate_orderedproductsales_amount",
                                  "salesbydate_orderedproductsales_currencycode", "units", "tags", "flag"]
    assert [f.type for f in result.schema] == [pa.date32(), pa.string(), pa.float64(), pa.string(), pa.int64(),
                                               pa.string(), pa.bool_()]
    assert table.to_pylist() == [
        {"date": datetime.date(2024, 5, 1), "asin": "B0001", "salesbydate_orderedproductsales_amount": 12.5,
         "salesbydate_orderedproductsales_currencycode": "USD", "units": 3, "tags": None, "flag": None},
        {"date": datetime.date(2024, 5, 2), "asin": "B0002", "salesbydate_orderedproductsales_amount": None,
         "salesbydate_orderedproductsales_currencycode": None, "units": None, "tags": '["a","b"]', "flag": None},
        {"date": datetime.date(2024, 5, 3), "asin": None, "salesbydate_orderedproductsales_amount": 1.0,
         "salesbydate_orderedproductsales_currencycode": "EUR", "units": None, "tags": None, "flag": True}]


def test_ndjson_over_many_blocks_with_changing_kinds_new_keys_and_bad_lines(tmp_path: Path) -> None:
    rows = [{"campaignId": 1000 + i, "clicks": i % 9, "cost": i % 4, "when": "2024-01-02T03:04:05Z"}
            for i in range(1, 2001)]
    rows[1500]["clicks"] = "lots"  # a string where every earlier block had numbers
    rows[1700]["extra"] = {"note": "late"}  # a key first seen in a late block
    lines = ndjson(*rows).splitlines(keepends=True)
    lines.insert(1800, "not json\n")
    result, table = run(tmp_path, "".join(lines), "ndjson", block_size=4096, row_group_rows=500)

    types = {field.name: field.type for field in result.schema}
    assert types == {"campaignid": pa.string(), "clicks": pa.int64(), "cost": pa.float64(),
                     "when": convert.TIMESTAMP, "extra_note": pa.string()}
    assert [(r.row, r.column, r.value) for r in result.rejected] == [(1501, "clicks", "lots"), (1801, "", "not json")]
    assert (result.rows_read, result.rows_written) == (2001, 1999)
    assert table.column("campaignid").to_pylist()[:2] == ["1001", "1002"]
    assert table.column("cost").to_pylist()[:4] == [1.0, 2.0, 3.0, 0.0]
    notes = table.column("extra_note").to_pylist()
    assert notes.count("late") == 1 and notes[1699] == "late"  # widened after row groups were written
    assert pq.ParquetFile(tmp_path / "out.parquet").metadata.num_row_groups == 4


def test_ndjson_keeps_the_table_types(tmp_path: Path) -> None:
    data = ndjson({"campaignId": 5, "impressions": 10}, {"campaignId": 6, "impressions": 2.5})
    result, table = run(tmp_path, data, "ndjson",
                        table_schema=pa.schema([("campaignid", pa.int64()), ("impressions", pa.int64())]))

    assert table.to_pylist() == [{"campaignid": 5, "impressions": 10}]
    assert result.rejected[0].reason == "impressions: expected a bigint, got '2.5'"
    assert result.added == []
