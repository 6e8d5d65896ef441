"""The results an AMC execution delivers: a CSV whose columns are the ones the SQL selects, with plausible values.

The output columns come from the query's top-level ``SELECT`` list (the alias after ``AS``, else the item's last
identifier: ``t.campaign`` -> ``campaign``, ``SUM(impressions)`` -> ``impressions``). Each column's type and
values are guessed from its name: advertiser and campaign names (some with commas and double quotes, so readers
must honour CSV quoting), ids, dates, counts and money. Some cells are empty, as AMC's NULLs are. The workflow's
aggregation-threshold options add their columns: ``filteredMetricsDiscriminatorColumn`` (``true``/``false``; a
filtered row has its dimensions removed), ``distinctUserCountColumn`` and ``filteredReasonColumn``.

Everything is seeded from the query, time window and parameters, so the same execution gives the same file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

Generator = Callable[[random.Random, int], str]


@dataclass(frozen=True)
class OutputColumn:
    name: str
    column_type: str  # DIMENSION | METRIC
    data_type: str  # STRING | LONG | DOUBLE | DATE | BOOLEAN

    def to_api(self) -> dict[str, str]:
        return {"columnType": self.column_type, "dataType": self.data_type, "name": self.name}


@dataclass(frozen=True)
class Results:
    columns: list[OutputColumn]
    csv: bytes
    rows: int

    def metadata(self, execution: Mapping[str, Any], sql: str | None) -> bytes:
        """The metadata file served next to the CSV: what ran, over which window, and what came out."""
        return json.dumps({
            "workflowExecutionId": execution.get("workflowExecutionId"), "workflowId": execution.get("workflowId"),
            "sqlQuery": sql, "timeWindowStart": execution.get("timeWindowStart"),
            "timeWindowEnd": execution.get("timeWindowEnd"), "parameterValues": execution.get("parameterValues"),
            "outputColumns": [c.to_api() for c in self.columns], "rowCount": self.rows}, indent=2).encode()


# -- parsing the SELECT list ---------------------------------------------------------------------------------

_IDENT = re.compile(r'"(?:[^"]|"")+"|`[^`]+`|\[[^\]]+\]|[A-Za-z_][A-Za-z0-9_$]*')
_KEYWORDS = frozenset({
    "as", "distinct", "all", "case", "when", "then", "else", "end", "null", "true", "false", "and", "or", "not",
    "is", "in", "like", "between", "exists", "cast", "try_cast", "interval", "over", "partition", "by", "order",
    "asc", "desc", "nulls", "first", "last", "filter", "within", "group", "rows", "range", "unbounded", "preceding",
    "following", "current", "row", "varchar", "char", "string", "int", "integer", "bigint", "smallint", "tinyint",
    "double", "float", "real", "decimal", "boolean", "date", "timestamp", "time", "bool", "array", "map",
})


def select_columns(sql: str) -> list[str]:
    """The names of the columns the query's top-level SELECT returns (``_col{i}`` when none can be told)."""
    masked, depth = _mask(sql)
    select = _top_level(masked, depth, r"\bselect\b")
    if select is None:
        return []
    start = select + len("select")
    end = _top_level(masked, depth, r"\bfrom\b|;", start)
    end = len(sql) if end is None else end
    items = _split_commas(sql, masked, depth, start, end)
    names = []
    for position, (item, item_masked) in enumerate(items, start=1):
        if position == 1:
            lead = re.match(r"\s*(distinct|all)\b", item_masked, re.I)
            if lead:
                item, item_masked = item[lead.end():], item_masked[lead.end():]
        names.append(_column_name(item, item_masked) or f"_col{position}")
    return names


def _mask(sql: str) -> tuple[str, list[int]]:
    """``sql`` with comments and string literals blanked (same length) and each position's parenthesis depth."""
    out = list(sql)
    depth = [0] * len(sql)
    level, i, n = 0, 0, len(sql)
    while i < n:
        char = sql[i]
        if sql.startswith("--", i):
            stop = sql.find("\n", i)
            stop = n if stop < 0 else stop
            out[i:stop] = " " * (stop - i)
        elif sql.startswith("/*", i):
            stop = sql.find("*/", i + 2)
            stop = n if stop < 0 else stop + 2
            out[i:stop] = " " * (stop - i)
        elif char in "'\"`":
            stop = _closing_quote(sql, i)
            # a literal's text must not look like SQL; a quoted identifier stays one word (its commas hidden)
            out[i + 1:stop - 1] = (" " if char == "'" else "x") * max(0, stop - i - 2)
        else:
            level += char == "("
            depth[i] = level
            level -= char == ")"
            i += 1
            continue
        for k in range(i, stop):
            depth[k] = level
        i = stop
    return "".join(out), depth


def _closing_quote(sql: str, start: int) -> int:
    """The index just past the quoted text starting at ``start`` (a doubled quote is an escaped one)."""
    quote, i = sql[start], start + 1
    while i < len(sql):
        if sql[i] == quote:
            if i + 1 < len(sql) and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return len(sql)


def _top_level(masked: str, depth: list[int], pattern: str, start: int = 0) -> int | None:
    for match in re.finditer(pattern, masked[start:], re.I):
        index = start + match.start()
        if depth[index] == 0:
            return index
    return None


def _split_commas(sql: str, masked: str, depth: list[int], start: int, end: int) -> list[tuple[str, str]]:
    items, begin = [], start
    for i in range(start, end):
        if masked[i] == "," and depth[i] == 0:
            items.append((sql[begin:i], masked[begin:i]))
            begin = i + 1
    items.append((sql[begin:end], masked[begin:end]))
    return [(item, item_masked) for item, item_masked in items if item_masked.strip()]


def _column_name(item: str, masked: str) -> str | None:
    """The alias after the item's last top-level ``AS``, else its last identifier that is not a keyword."""
    level, alias_at = 0, None
    for match in re.finditer(r"[()]|\bas\b", masked, re.I):
        token = match.group().lower()
        level += {"(": 1, ")": -1}.get(token, 0)
        if token == "as" and level == 0:
            alias_at = match.end()
    if alias_at is not None:
        alias = _IDENT.search(masked, alias_at)
        if alias:
            return _unquote(item[alias.start():alias.end()])
    names = [m for m in _IDENT.finditer(masked) if m.group().lower() not in _KEYWORDS or m.group()[0] in "\"`["]
    return _unquote(item[names[-1].start():names[-1].end()]) if names else None


def _unquote(identifier: str) -> str:
    if identifier[:1] in "\"`[":
        return identifier[1:-1].replace('""', '"')
    return identifier


# -- values --------------------------------------------------------------------------------------------------

ADVERTISERS = ["Demo", "KitchenSmart", "Acme, Inc.", 'The "Good" Coffee Co.', "Northwind Traders", "Contoso"]
CAMPAIGNS = ["Always-On_Display_Amazon 2022", 'Holiday "Deals", Q4', "Brand Awareness - Video",
             "Retargeting, cart abandoners", "Prime Day 2024", "SP_Auto_Generic"]
WORDS = ["alpha", "beta", "gamma, delta", 'say "cheese"', "omega", "zeta"]
TIME_BUCKETS = ["1 - 10 MIN", "10 - 60 MIN", "1 - 6 HR", "6 - 24 HR", "1 - 7 DAY", "7 - 14 DAY"]
DEVICES = ["Phone", "Tablet", "PC", "TV", "Other"]
_LONG_RANGES = [("impression", (1_000, 500_000)), ("click", (10, 5_000)), ("reach", (100, 200_000)),
                ("user", (50, 100_000)), ("view", (100, 80_000)), ("purchase", (0, 600)), ("order", (0, 600)),
                ("conversion", (0, 900)), ("unit", (0, 1_200))]
_LONG_WORDS = ("impression", "click", "reach", "user", "view", "purchase", "order", "conversion", "unit", "count",
               "_cnt", "num_", "sessions", "households", "frequency")
_DOUBLE_WORDS = ("spend", "cost", "sales", "revenue", "amount", "price", "rate", "ctr", "cvr", "roas", "pct",
                 "percent", "ratio", "avg", "share", "cpm", "cpc", "ecpm", "budget", "value")


def column_for(name: str, first_day: date = date(2024, 1, 1)) -> tuple[OutputColumn, Generator]:
    """The column's type (from its name) and a generator of its values (dates from ``first_day`` on)."""
    lower = name.lower()
    if lower.endswith("_id") or lower in ("id", "asin") or lower.endswith("_asin"):
        return OutputColumn(name, "DIMENSION", "STRING"), _ids(lower)
    if "advertiser" in lower:
        return OutputColumn(name, "DIMENSION", "STRING"), _choice(ADVERTISERS)
    if "campaign" in lower or "line_item" in lower or "creative" in lower or "ad_group" in lower:
        return OutputColumn(name, "DIMENSION", "STRING"), _choice(CAMPAIGNS)
    if "time_to" in lower:
        return OutputColumn(name, "DIMENSION", "STRING"), _choice(TIME_BUCKETS)
    if "device" in lower:
        return OutputColumn(name, "DIMENSION", "STRING"), _choice(DEVICES)
    if "date" in lower or lower in ("day", "event_day") or lower.endswith("_day"):
        return OutputColumn(name, "DIMENSION", "DATE"), _dates(first_day)
    if lower.startswith(("is_", "has_")):
        return OutputColumn(name, "DIMENSION", "BOOLEAN"), lambda rng, _i: rng.choice(["true", "false"])
    if any(word in lower for word in _DOUBLE_WORDS):
        return OutputColumn(name, "METRIC", "DOUBLE"), _money(lower)
    if any(word in lower for word in _LONG_WORDS):
        low, high = next((bounds for word, bounds in _LONG_RANGES if word in lower), (1, 10_000))
        return OutputColumn(name, "METRIC", "LONG"), lambda rng, _i: str(rng.randint(low, high))
    return OutputColumn(name, "DIMENSION", "STRING"), _choice(WORDS)


def _choice(values: list[str]) -> Generator:
    return lambda rng, _i: rng.choice(values)


def _ids(lower: str) -> Generator:
    if "asin" in lower:
        return lambda rng, _i: "B0" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(8))
    return lambda rng, _i: str(rng.randint(10**12, 10**13 - 1))


def _money(lower: str) -> Generator:
    if any(word in lower for word in ("rate", "ctr", "cvr", "pct", "percent", "ratio", "share")):
        return lambda rng, _i: f"{rng.uniform(0, 1):.4f}"
    return lambda rng, _i: f"{rng.uniform(1, 5_000):.2f}"


def _dates(first_day: date) -> Generator:
    return lambda _rng, row: (first_day + timedelta(days=row % 28)).isoformat()


# -- the file ------------------------------------------------------------------------------------------------


def generate(sql: str | None, workflow: Mapping[str, Any], execution: Mapping[str, Any],
             rows: int | None = None) -> Results:
    """The results of ``execution`` (its API shape) of ``workflow`` (its definition)."""
    seed_text = json.dumps([sql, execution.get("timeWindowStart"), execution.get("timeWindowEnd"),
                            execution.get("parameterValues")], sort_keys=True, default=str)
    rng = random.Random(hashlib.sha256(seed_text.encode()).digest())
    names = select_columns(sql or "") or ["_col1"]
    first_day = _first_day(execution.get("timeWindowStart"))
    specs = [column_for(name, first_day) for name in names]
    count = rows if rows is not None else rng.randint(12, 30)
    table = [[generator(rng, row) if rng.random() > 0.05 else "" for _column, generator in specs]
             for row in range(count)]
    if count >= 3:
        table[2][-1] = ""  # always at least one NULL, so readers meet one
    columns = [column for column, _generator in specs]
    columns, table = _aggregation_columns(workflow, columns, table, rng)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([column.name for column in columns])
    writer.writerows(table)
    return Results(columns, out.getvalue().encode(), count)


def _first_day(window_start: Any) -> date:
    try:
        return date.fromisoformat(str(window_start)[:10])
    except ValueError:
        return date(2024, 1, 1)


def _aggregation_columns(workflow: Mapping[str, Any], columns: list[OutputColumn], table: list[list[str]],
                         rng: random.Random) -> tuple[list[OutputColumn], list[list[str]]]:
    """The columns AMC adds for the workflow's aggregation-threshold options."""
    discriminator = workflow.get("filteredMetricsDiscriminatorColumn")
    user_count = workflow.get("distinctUserCountColumn")
    reason = workflow.get("filteredReasonColumn")
    filtered = [bool(discriminator or reason) and (row % 7 == 5 or row == len(table) - 1) for row in range(len(table))]
    dimensions = [i for i, column in enumerate(columns) if column.column_type == "DIMENSION"]
    for row in (row for row, is_filtered in zip(table, filtered, strict=True) if is_filtered):
        for index in dimensions:  # below the threshold: identifying values removed, metrics kept (re-aggregated)
            row[index] = ""
    added: list[tuple[OutputColumn, Callable[[bool], str]]] = []
    if discriminator:
        added.append((OutputColumn(discriminator, "DIMENSION", "BOOLEAN"), lambda f: "true" if f else "false"))
    if user_count:
        added.append((OutputColumn(user_count, "METRIC", "LONG"),
                      lambda _f: str(min(100, rng.choice([2, 2, 17, 64, 100, 250])))))
    if reason:
        added.append((OutputColumn(reason, "DIMENSION", "STRING"),
                      lambda f: f"{rng.randint(2, 99)} 'dsp_impressions' users < 100 required" if f else ""))
    for row, is_filtered in zip(table, filtered, strict=True):
        row.extend(value(is_filtered) for _column, value in added)
    return [*columns, *(column for column, _value in added)], table
