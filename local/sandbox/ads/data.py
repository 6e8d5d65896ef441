"""The rows of an Ads reporting v3 ``GZIP_JSON`` file: a gzip'd JSON array of flat objects, each with exactly
the requested columns (apis.md §6.1), generated deterministically from the request and streamed.

A report of N rows is laid out as a real one is: with ``timeUnit`` DAILY, about ``N / days`` entities (campaigns,
ad groups, search terms...) on each day; with SUMMARY, N entities over the whole range. Ids are JSON numbers,
dates follow the time unit, metrics have a few nulls. Values come from the column's name (``campaignId``,
``campaignName``, ``clicks``, ``cost``, ``clickThroughRate``...), so any column list works.

Memory does not depend on the size: rows are rendered a batch at a time (column by column, from small tables of
pre-rendered values) and compressed as they go; a 1 GB report streams in a few megabytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from local.sandbox.files import gzipped

BATCH_ROWS = 4096
COMPRESS_LEVEL = 1  # speed over size: the sandbox must outrun whatever downloads from it
DEFAULT_ENTITIES = 12  # rows per day (DAILY) or in all (SUMMARY) when no size is asked for
_ID_BASE = 10**14  # 15-digit ids, as Amazon's are (e.g. 158410630682987): JSON numbers well below 2**53

Values = Callable[[int, int, int], list[str]]  # (first entity, entities, day index) -> JSON texts


@dataclass(frozen=True)
class ReportSpec:
    """What a report file holds: its columns, dates, time unit and size; ``seed`` makes the values."""

    columns: tuple[str, ...]
    time_unit: str  # DAILY | SUMMARY
    start: date
    end: date
    rows: int
    group_by: tuple[str, ...] = ()
    currency: str = "USD"
    seed: int = 0

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1 if self.time_unit == "DAILY" else 1


def seed_of(*parts: object) -> int:
    """A stable seed from the request's identity (profile, dates, configuration)."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def default_rows(time_unit: str, start: date, end: date) -> int:
    days = (end - start).days + 1 if time_unit == "DAILY" else 1
    return DEFAULT_ENTITIES * days


def chunks(spec: ReportSpec) -> Iterator[bytes]:
    """The gzip file, as compressed chunks of a few tens of kilobytes."""
    return gzipped(_texts(spec), COMPRESS_LEVEL)


def size(spec: ReportSpec) -> int:
    """The compressed size, by generating the file once."""
    return sum(len(chunk) for chunk in chunks(spec))


def rows_for_bytes(spec: ReportSpec, uncompressed_bytes: int) -> int:
    """About how many rows make a file of ``uncompressed_bytes`` once decompressed."""
    sample = _batch(_Generator(spec), 0, BATCH_ROWS, 0)
    row_bytes = (len(sample) + 1) / max(1, sample.count("},{") + 1)
    return max(0, round(uncompressed_bytes / row_bytes))


def _texts(spec: ReportSpec) -> Iterator[str]:
    """``[``, the rows in batches joined by commas, ``]``; the rows spread evenly over the days."""
    yield "["
    generator, first = _Generator(spec), True
    per_day, longer_days = divmod(spec.rows, spec.days)
    for day in range(spec.days):
        day_rows, entity = per_day + (day < longer_days), 0
        while entity < day_rows:
            count = min(BATCH_ROWS, day_rows - entity)
            yield ("" if first else ",") + _batch(generator, entity, count, day)
            first, entity = False, entity + count
    yield "]"


def _batch(generator: _Generator, entity: int, count: int, day: int) -> str:
    columns = [values(entity, count, day) for values in generator.values]
    return ",".join(map(generator.template.__mod__, zip(*columns, strict=True)))


class _Generator:
    """A row template and, per column, the function that renders its values for a run of entities."""

    def __init__(self, spec: ReportSpec) -> None:
        self.spec = spec
        self.template = "{" + ",".join(f"{json.dumps(c)}:%s" for c in spec.columns) + "}"
        grouping = set(spec.group_by)
        self.campaign_fanout = 1 if grouping <= {"campaign"} else 8  # ad groups... per campaign
        self.ad_group_fanout = 1 if grouping <= {"campaign", "adGroup"} else 3
        self.values: list[Values] = [self._values_for(column) for column in spec.columns]

    def _values_for(self, column: str) -> Values:
        spec, name = self.spec, column.lower()
        salt = seed_of(spec.seed, column)
        if column == "date":
            return lambda e, n, d: [f'"{spec.start + timedelta(days=d)}"'] * n
        if column in ("startDate", "endDate"):
            text = f'"{spec.start if column == "startDate" else spec.end}"'
            return lambda e, n, d: [text] * n
        if column.endswith("Id"):
            return self._ids(column, salt)
        if name.endswith("name"):
            label = column[: -len("name")].capitalize() or "Name"
            return _cycled([json.dumps(f"{label} {i}") for i in range(509)], salt)
        if name.endswith("asin"):
            return _cycled([f'"B0{(salt + i * 7919) % 16**8:08X}"' for i in range(1021)], salt)
        if name.endswith("sku"):
            return _cycled([f'"SKU-{(salt + i) % 10**6:06d}"' for i in range(1019)], salt)
        if name in _TEXTS:
            return _cycled([json.dumps(text) for text in _TEXTS[name]], salt)
        if name.endswith("status"):
            return _cycled(['"ENABLED"'] * 7 + ['"PAUSED"', '"ARCHIVED"'], salt)
        if "currency" in name:
            return lambda e, n, d: [json.dumps(spec.currency)] * n
        return _cycled(_metric(name, salt), salt)

    def _ids(self, column: str, salt: int) -> Values:
        base = _ID_BASE + salt % (8 * _ID_BASE)
        fanout = {"campaignid": self.campaign_fanout * self.ad_group_fanout,
                  "adgroupid": self.ad_group_fanout, "portfolioid": 100}.get(column.lower(), 1)
        if fanout == 1:
            return lambda e, n, d: list(map(str, range(base + e, base + e + n)))
        return lambda e, n, d: [str(base + i // fanout) for i in range(e, e + n)]


def _cycled(table: Sequence[str], salt: int) -> Values:
    """Values from ``table`` in turn, by entity and day, so rows differ without computing each value."""
    length = len(table)
    doubled = list(table) * (1 + BATCH_ROWS // length + 1)

    def values(entity: int, count: int, day: int) -> list[str]:
        start = (salt + entity + day * 31) % length
        return doubled[start:start + count]
    return values


def _metric(name: str, salt: int) -> list[str]:
    """A table of a metric's values: money with cents, rates with four decimals, else counts; a few nulls."""
    length = 4093 + salt % 97  # tables of different lengths, so rows do not repeat together
    state, values = salt or 1, []
    for i in range(length):
        state = (state * 6364136223846793005 + 1442695040888963407) % 2**64  # a fixed LCG: deterministic
        draw = (state >> 33) / 2**31
        if any(word in name for word in _RATE_WORDS):
            values.append("null" if i % 11 == 5 else f"{draw * 0.2:.4f}")
        elif any(word in name for word in _MONEY_WORDS):
            values.append("null" if i % 37 == 9 and name not in _NEVER_NULL else f"{draw * 250:.2f}")
        else:
            scale = 20000 if "impression" in name else 400 if "click" in name else 30
            values.append("null" if i % 37 == 9 and name not in _NEVER_NULL else str(int(draw * draw * scale)))
    return values


_RATE_WORDS = ("rate", "ctr", "acos", "roas", "percent", "share")
_MONEY_WORDS = ("cost", "sales", "spend", "budget", "amount", "cpc", "revenue", "price", "fee")
_NEVER_NULL = {"impressions", "clicks", "cost"}
_SEARCH_WORDS = ("running shoes", "water bottle", "yoga mat", "usb c cable", "coffee grinder", "desk lamp",
                 "phone case", "wireless earbuds", "dog leash", "kitchen scale", "hiking socks", "led strip")
_TEXTS: dict[str, list[str]] = {
    "searchterm": [f"{word} {size}" for word in _SEARCH_WORDS for size in ("", "small", "large", "2 pack")],
    "keyword": list(_SEARCH_WORDS),
    "keywordtext": list(_SEARCH_WORDS),
    "targeting": [*_SEARCH_WORDS, "close-match", "loose-match", "substitutes", "complements",
                  'asin="B07XJ8C8F5"', 'category="1055398"'],
    "matchtype": ["BROAD", "PHRASE", "EXACT", "TARGETING_EXPRESSION", "TARGETING_EXPRESSION_PREDEFINED"],
    "keywordtype": ["BROAD", "PHRASE", "EXACT", "TARGETING_EXPRESSION", "TARGETING_EXPRESSION_PREDEFINED"],
    "placementclassification": ["Top of Search on-Amazon", "Detail Page on-Amazon", "Other on-Amazon"],
    "campaignbiddingstrategy": ["legacy", "autoForSales", "manual"],
    "campaignbudgettype": ["DAILY_BUDGET"],
    "adkeywordstatus": ["ENABLED", "PAUSED"],
    "costtype": ["CPC", "VCPM"],
}
