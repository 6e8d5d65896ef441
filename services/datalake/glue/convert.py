"""Stage B of the data lake: one pre-stage file (CSV, TSV or NDJSON) becomes one typed, snappy Parquet file.

This is the data lake's only pyarrow module. From the repository it imports only ``shared.lake`` (names), and it uses
no pyarrow API newer than 20.0.0, the version Lambda's python3.11 runtime can package.

The AWS Solution's Glue job read each AMC CSV fully into pandas, twice. It wrote filtered rows and failed the whole file
on one bad value. Here, a file of any size streams through in memory bounded by ``block_size`` and the row group.
``benchmarks/stage_b.md`` has the figures: peak memory is flat from 100 MB to 1 GB inputs.

Reading
    The bytes are cut into slices of about ``block_size``, each ending at a newline, and each is parsed on its own.
    A parse thread reads, parses and types the next slice while the caller's thread writes the rows before it. What is
    held at once is one row group, the slice being parsed and the slice typed ahead, so memory depends on
    ``block_size`` and ``row_group_rows``, never on the file's size.

    * CSV: ``pyarrow.csv.read_csv`` (multi-threaded) parses each slice. ``open_csv`` is not used: it reads 32 blocks
      ahead and parses serially. The first line is the header. RFC 4180 quoting is honoured: a quoted field may hold
      commas and doubled quotes (``""``).

      **A newline inside a quoted value is not supported**, the same as pyarrow's default ``newlines_in_values=False``
      (turning it on costs 1.5x the parse time). Such a row parses correctly only if no slice or pyarrow block boundary
      falls inside it. Otherwise it is cut in two, and the parts are usually rejected.
    * TSV: tab-separated, with a header and no quoting at all. A ``"`` is an ordinary character.
    * NDJSON: one JSON object per line. ``pyarrow.json.read_json`` (2 MiB blocks, multi-threaded) parses each slice.
      ``open_json`` is not used: a type change or a new field in a later block aborts its stream. The fields' kinds are
      learnt from the slices before and given to pyarrow as an explicit schema.

      A slice that pyarrow cannot read is read again with inference only, which still fails on a number in one row and
      a string in another, or on a line that is not JSON. That slice is then parsed line by line in Python, and each
      line that is not a JSON object is rejected.

      Nested objects are flattened into columns whose names join the keys with ``_``:
      ``{"salesByDate": {"orderedProductSales": {"amount": 1.0}}}`` gives the column
      ``salesByDate_orderedProductSales_amount``, which becomes ``salesbydate_orderedproductsales_amount`` once
      normalised. An array is kept as its JSON text in a string column; this is done per row in Python, and only for
      array columns. A key missing from a line is null there.
    * Columns are taken in first-seen order. Blank lines are skipped and not counted. Rows are numbered from 1 among
      the data rows (the header is not a row). Invalid UTF-8 is replaced by U+FFFD.

Names
    ``normalise_name`` (``shared/lake.py``, the one rule stage A follows too) makes a name usable by Glue and Athena:
    * lower-case;
    * every run of characters other than ``a-z0-9`` becomes one ``_``, so ``Total Cost (USD)`` is ``total_cost_usd``;
    * ``_`` is stripped from both ends;
    * a leading digit gets a ``_`` in front.

    CamelCase is not split: ``campaignId`` becomes ``campaignid``. A name left empty becomes ``column_<position>``. A
    name already taken gets ``_2``, ``_3``, and so on. A file's column matches a column of the table when their
    normalised names are equal, and the table's name is the one written.

Types
    Every column is read as text first, so a bad value in a later block never aborts the file. The column is then typed:

    * If the table (``table_schema``) has the column, it keeps the table's type. Schema evolution only adds columns;
      it never changes a type.
    * Otherwise the type is ``column_type(source name, the first block's values)``. It is fixed from that block on, for
      the whole file. ``column_type`` applies the AWS Solution's rules by name first, then infers from the values (see
      its docstring).

    Values are read as Arrow reads each type:
    * an integer column also takes ``true``/``false`` as 1/0, as the AWS Solution stored booleans;
    * a boolean column takes true/false in any case, and 1/0;
    * a timestamp without a zone is taken as UTC, and a date alone as midnight UTC.

    An empty string (and, in NDJSON, a JSON null) is null, never ``-1`` and never ``""``.

Rejections
    A non-empty value that does not parse as its column's type rejects its whole row, which is not written. The rest of
    the file is written. Malformed rows are rejected the same way: a CSV row with the wrong number of fields, or an
    NDJSON line that is not an object.

    Values are checked vectorised, with ``pyarrow.compute`` casts on masked arrays. Python touches single rows only to
    describe the first ``MAX_REJECTED`` rejected rows, or to find values that pass the masking regex but that Arrow
    still refuses (such as ``2024-02-30``, or an integer out of range), which takes a few casts by halving.

Filtered rows
    AMC marks the rows that its privacy threshold filtered with ``filtered = true``. With ``drop_filtered`` those rows
    are removed and counted (``Converted.rows_filtered``). The column itself is kept.

Output
    Snappy Parquet, written in row groups of exactly ``row_group_rows`` rows (the last one shorter). Batches are held
    until a group is full, because a row group per block repeats dictionaries and makes the file larger.

    The file is written to a temporary file, which then replaces a path ``sink`` (a file object is copied into), so a
    failed conversion never leaves a partial file. An NDJSON column first seen after a row group was written widens
    the file: the groups already written are copied, one at a time, into a new file with the column added as nulls.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from shared.lake import normalise_name

FORMATS = ("csv", "tsv", "ndjson")
MAX_REJECTED = 100  # rejected rows described in Converted.rejected (all are counted)
TIMESTAMP = pa.timestamp("ms", tz="UTC")  # Athena's precision; values are instants in UTC
JSON_BLOCK_SIZE = 2 * 2**20  # read_json's block within a slice (perf.md: 2 MiB)

_INSTANT = pa.timestamp("us", tz="UTC")  # timestamps are parsed at this precision, then truncated to the column's
_MAX_TEXT = 200  # a rejected value or row is kept up to this many characters
_BOM = b"\xef\xbb\xbf"

# Name rules (on the name with camelCase split, normalised): the AWS Solution's Glue job's overrides.
_TEXT_NAME = re.compile(r"(^|_)(id|asin)$")
_DOUBLE_NAME = re.compile(r"(^|_)(fees?|rates?|scores?|percents?|pcts?)$|costs?$|(^|_)avg(_|$)|cpm$")

# Inference: every non-null value of the first block matches, and parses.
_INFERRED = (
    (pa.bool_(), r"^(?i:true|false)$"),
    (pa.int64(), r"^-?(0|[1-9][0-9]*)$"),
    (pa.float64(), r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$"),
    (pa.date32(), r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"),
    (TIMESTAMP, r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
                r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$"),
)

# Masks for reading a typed column: each admits at least what Arrow's cast reads, so they change nothing but speed.
_BOOL_TEXT = r"^(?i:true|false|1|0)$"
_INT_TEXT = r"^[+-]?(0[xX])?[0-9A-Fa-f]+$"
_NUMBER_TEXT = r"^[+-]?([0-9]*\.?[0-9]*([eE][+-]?[0-9]+)?|[A-Za-z]+)$"
_DATE_TEXT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_TIMESTAMP_TEXT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.,]+(Z|[+-][0-9:]+)$"
_ZONE = r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"


@dataclass(frozen=True)
class Rejected:
    """One row that could not be typed (or parsed), so it was not written."""

    row: int  # 1-based data row number in the source
    column: str  # "" for a malformed row
    value: str
    reason: str  # e.g. "cost: expected a double, got 'n/a'"


@dataclass
class Converted:
    """What one conversion wrote and left out: rows_read = rows_written + rows_filtered + rows_rejected."""

    schema: pa.Schema  # the schema written (existing columns in the table's order and types, then new columns)
    added: list[str]  # columns not in `table_schema` (all of them when there is no table)
    rows_read: int
    rows_written: int
    rows_filtered: int  # rows with filtered=true, removed
    rejected: list[Rejected]  # at most MAX_REJECTED kept, but `rows_rejected` counts all
    rows_rejected: int
    bytes_written: int
    absent: list[str] = field(default_factory=list)  # columns of `table_schema` the file lacks: written as nulls


def column_type(name: str, sample: pa.Array | pa.ChunkedArray | None) -> pa.DataType:
    """The type of a new column. The AWS Solution's rules by name come first: they are applied to the name with its
    camelCase split (``campaignId`` is ``campaign_id``).

    * A name that is ``id`` or ``asin``, or ends in ``_id`` or ``_asin``, is string. An id is a name, not a number.
    * A name that ends in ``fee(s)``, ``rate(s)``, ``score(s)``, ``percent(s)`` or ``pct(s)`` (as a word), ends in
      ``cost(s)`` or ``cpm`` (so ``ecpm`` too), or has ``avg`` as a word, is float64. Such a value is a fraction even
      when the first rows hold whole numbers.

    Otherwise the type is inferred from the sample: the first block's values, nulls left out.
    * boolean: true/false in any case;
    * int64: an integer as JSON writes one (no leading zeros; one too big for int64 is string);
    * float64: a number as JSON writes one;
    * date: ``YYYY-MM-DD``, a real day;
    * timestamp: ISO 8601 date and time, with or without a zone (UTC when none), stored in ms UTC;
    * otherwise, or when every value is null, string.

    A typed sample (NDJSON) gives its own type: integer, float, boolean or timestamp."""
    words = normalise_name(re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name))
    if _TEXT_NAME.search(words):
        return pa.string()
    if _DOUBLE_NAME.search(words):
        return pa.float64()
    if sample is None or pa.types.is_null(sample.type):
        return pa.string()
    if not (pa.types.is_string(sample.type) or pa.types.is_large_string(sample.type)):
        return _json_kind(sample.type)
    values = sample.drop_null()
    if len(values) == 0:
        return pa.string()
    first = values[0].as_py()
    for type_, pattern in _INFERRED:
        if re.fullmatch(pattern, first) and pc.all(pc.match_substring_regex(values, pattern)).as_py():
            if not _any_bad(_parse(values, type_)[1]):
                return type_
            if pa.types.is_integer(type_):  # an integer too big for int64: an identifier, kept exactly
                return pa.string()
    return pa.string()


def convert(source: BinaryIO, file_format: str, sink: BinaryIO | str, *, table_schema: pa.Schema | None = None,
            drop_filtered: bool = True, row_group_rows: int = 500_000, block_size: int = 16 * 2**20) -> Converted:
    """Stream ``source`` into one Parquet file at ``sink``, in memory bounded by ``block_size`` and the row group,
    whatever the file's size. ``source`` holds uncompressed bytes: CSV with a header, TSV with a header, or NDJSON.

    ``table_schema`` is the table's schema if the table exists. Its columns keep their types and order. Columns new
    to the table follow them (see ``Converted.added``). Rows that cannot be typed are rejected, not fatal."""
    if file_format not in FORMATS:
        raise ValueError(f"file_format must be one of {FORMATS}, not {file_format!r}")
    if row_group_rows < 1 or block_size < 1:
        raise ValueError("row_group_rows and block_size must be positive")
    reader: _TextReader | _JsonReader = (_JsonReader() if file_format == "ndjson"
                                         else _TextReader("," if file_format == "csv" else "\t", file_format == "csv"))
    conversion = _Conversion(table_schema, drop_filtered)
    with _Output(sink, row_group_rows) as output, ThreadPoolExecutor(1, "convert-parse") as parser:
        tables = _typed(conversion, reader.blocks(source, block_size))
        parsing = parser.submit(next, tables, None)
        while (table := parsing.result()) is not None:
            parsing = parser.submit(next, tables, None)  # the next slice is parsed and typed meanwhile
            output.add(table)
            del table
        bytes_written = output.finish(conversion.columns.schema())
    return conversion.result(bytes_written)


# -- reading: slices of bytes, parsed into blocks of columns -----------------------------------------------------

@dataclass
class _Block:
    """One slice's rows: columns by source name (text, or JSON's own types), and the rows that would not parse."""

    columns: dict[str, pa.ChunkedArray]
    rows: int  # rows in the columns
    first: int  # data row number of the slice's first row
    malformed: list[tuple[int, str, str]] = field(default_factory=list)  # (position in the slice, text, reason)

    @property
    def count(self) -> int:
        return self.rows + len(self.malformed)

    def row(self, index: int) -> int:
        """The data row number of the parsed row ``index``: the malformed rows before it count too."""
        position = index
        for skipped, _, _ in self.malformed:  # in order
            if skipped > position:
                break
            position += 1
        return self.first + position


def _typed(conversion: _Conversion, blocks: Iterator[_Block]) -> Iterator[pa.Table]:
    for block in blocks:
        table = conversion.typed(block)
        del block  # its text is freed before the next slice is parsed
        yield table
        del table


def _slices(source: BinaryIO, size: int, rest: bytes = b"") -> Iterator[memoryview]:
    """Slices of ``size`` bytes (unless the file ends), each cut after the last newline in them. A slice is read
    into a buffer of its own: pyarrow parses it in place, and the text it makes is its own copy."""
    while True:
        buffer = bytearray(max(size, 2 * len(rest)))  # a line longer than a slice doubles the next one
        filled = _fill(source, memoryview(buffer), rest)
        if filled < len(buffer):  # the end of the file
            if filled:
                yield memoryview(buffer)[:filled]
            return
        cut = buffer.rfind(b"\n") + 1
        rest = bytes(buffer[cut:])
        if cut:
            yield memoryview(buffer)[:cut]
        del buffer


def _fill(source: BinaryIO, view: memoryview, rest: bytes) -> int:
    """Fill ``view`` with ``rest`` then the source's next bytes; returns how many (fewer at the end of the file)."""
    view[:len(rest)] = rest
    filled = len(rest)
    readinto = getattr(source, "readinto", None)
    while filled < len(view):
        if readinto is not None:
            count = readinto(view[filled:])
        else:
            part = source.read(len(view) - filled)
            count = len(part)
            view[filled:filled + count] = part
        if not count:
            break
        filled += count
    return filled


def _first_line(source: BinaryIO, size: int) -> tuple[bytes | None, bytes]:
    """The header line (without its newline and any BOM) and the bytes read after it; None for an empty file."""
    data = b""
    while b"\n" not in data:
        part = source.read(min(size, 2**20))
        if not part:
            break
        data += part
    if not data.strip():
        return None, b""
    line, _, rest = data.partition(b"\n")
    return line.removeprefix(_BOM).rstrip(b"\r"), rest


def _unique(names: list[str]) -> list[str]:
    taken: set[str] = set()
    unique = []
    for name in names:
        candidate, number = name, 2
        while candidate in taken:
            candidate, number = f"{name}_{number}", number + 1
        taken.add(candidate)
        unique.append(candidate)
    return unique


class _TextReader:
    """CSV or TSV: the header, then each slice parsed by read_csv (multi-threaded), every column as text."""

    def __init__(self, delimiter: str, quoted: bool) -> None:
        self.delimiter, self.quoted = delimiter, quoted
        self.names: list[str] = []

    def blocks(self, source: BinaryIO, size: int) -> Iterator[_Block]:
        header, rest = _first_line(source, size)
        if header is None:
            return
        text = header.decode("utf-8", "replace")
        names = next(csv.reader([text], delimiter=self.delimiter)) if self.quoted else text.split(self.delimiter)
        self.names = _unique(names)
        first = 1
        for data in _slices(source, size, rest):
            block = self._block(data, first)
            del data
            first += block.count
            yield block
            del block
        if first == 1:  # a header alone still names the columns
            yield _Block({name: pa.chunked_array([], pa.string()) for name in self.names}, 0, 1)

    def _block(self, data: memoryview, first: int) -> _Block:
        table, malformed = self._parse(data)
        return _Block(dict(zip(self.names, table.columns, strict=True)), table.num_rows, first, malformed)

    def _parse(self, data: memoryview, threads: bool = True) -> tuple[pa.Table, list[tuple[int, str, str]]]:
        invalid: list[Any] = []

        def skip(row: Any) -> str:
            invalid.append(row)
            return "skip"

        ids = [f"c{i}" for i in range(len(self.names))]
        try:
            table = pacsv.read_csv(
                pa.BufferReader(pa.py_buffer(data)),
                read_options=pacsv.ReadOptions(column_names=ids, use_threads=threads),
                parse_options=pacsv.ParseOptions(delimiter=self.delimiter, quote_char='"' if self.quoted else False,
                                                 double_quote=True, invalid_row_handler=skip),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(ids, pa.string()),
                    null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True))
        except pa.ArrowInvalid as error:
            if "UTF8" not in str(error):
                raise
            return self._parse(memoryview(bytes(data).decode("utf-8", "replace").encode()), threads)
        if invalid and threads:  # pyarrow numbers the rows it skips only when it parses serially
            return self._parse(data, threads=False)
        return table, [(row.number - 1, row.text,
                        f"expected {row.expected_columns} fields, got {row.actual_columns}") for row in invalid]


class _JsonReader:
    """NDJSON: each slice parsed by read_json, its objects flattened into columns. Every field's kind (number, text,
    boolean, object) is learnt from the slices read and given to pyarrow as an explicit schema, so that text pyarrow
    would take for a timestamp stays text."""

    def __init__(self) -> None:
        self.hint: dict[str, Any] = {}  # field -> type, or a dict for an object

    def blocks(self, source: BinaryIO, size: int) -> Iterator[_Block]:
        start = source.read(len(_BOM))
        first = 1
        for data in _slices(source, size, b"" if start == _BOM else start):
            block = self._block(data, first)
            del data
            first += block.count
            yield block
            del block

    def _block(self, data: memoryview, first: int) -> _Block:
        try:
            table = _json_table(data, self.hint)
        except pa.ArrowInvalid:  # a field's kind differs from an earlier slice's: this slice on its own
            try:
                table = _json_table(data, {})
            except pa.ArrowInvalid:  # mixed kinds within the slice, or a line that is not an object
                return _python_block(data, first)
        _learn(self.hint, table.schema)
        columns: dict[str, pa.ChunkedArray] = {}
        for field_, column in zip(table.schema, table.columns, strict=True):
            _leaves(field_.name, column, columns)
        return _Block(columns, table.num_rows, first)


def _json_table(data: memoryview, hint: dict[str, Any]) -> pa.Table:
    """read_json with ``hint`` as its explicit schema (other fields inferred); fields that pyarrow infers as
    timestamps are read again as text, as written."""
    table = _read_json(data, hint)
    if _has_timestamp(table.schema):
        local = _copy(hint)
        _learn(local, table.schema)
        table = _read_json(data, local).select(table.column_names)  # in the order first seen
    return table


def _read_json(data: memoryview, hint: dict[str, Any]) -> pa.Table:
    schema = pa.schema([pa.field(name, _hint_type(kind)) for name, kind in hint.items() if kind != {}])
    return pajson.read_json(
        pa.BufferReader(pa.py_buffer(data)), read_options=pajson.ReadOptions(block_size=JSON_BLOCK_SIZE),
        parse_options=pajson.ParseOptions(explicit_schema=schema if len(schema) else None,
                                          unexpected_field_behavior="infer"))


def _hint_type(kind: Any) -> pa.DataType:
    if isinstance(kind, dict):
        return pa.struct([pa.field(name, _hint_type(sub)) for name, sub in kind.items() if sub != {}])
    return kind


def _copy(hint: dict[str, Any]) -> dict[str, Any]:
    return {name: _copy(kind) if isinstance(kind, dict) else kind for name, kind in hint.items()}


def _learn(hint: dict[str, Any], fields: Any) -> None:
    """Add the fields not yet known (never change one): objects as dicts, timestamps as text, no nulls or arrays."""
    for field_ in fields:
        kind = field_.type
        if pa.types.is_struct(kind):
            known = hint.setdefault(field_.name, {})
            if isinstance(known, dict):
                _learn(known, kind)
        elif field_.name not in hint and (pa.types.is_timestamp(kind) or kind in (
                pa.int64(), pa.float64(), pa.bool_(), pa.string())):
            hint[field_.name] = pa.string() if pa.types.is_timestamp(kind) else kind


def _has_timestamp(fields: Any) -> bool:
    return any(pa.types.is_timestamp(f.type) or (pa.types.is_struct(f.type) and _has_timestamp(f.type))
               for f in fields)


def _leaves(name: str, column: pa.ChunkedArray, out: dict[str, pa.ChunkedArray]) -> None:
    """Flatten objects into ``parent_child`` columns; arrays become their JSON text."""
    if pa.types.is_struct(column.type):
        for field_, child in zip(column.type, column.flatten(), strict=True):
            _leaves(f"{name}_{field_.name}", child, out)
    elif pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        texts = [None if value is None else _json_text(value) for value in column.to_pylist()]
        _put(out, name, pa.chunked_array([pa.array(texts, pa.string())]))
    else:
        _put(out, name, column)


def _put(out: dict[str, Any], name: str, value: Any) -> None:
    key, number = name, 2
    while key in out:  # {"a_b": 1, "a": {"b": 2}}
        key, number = f"{name}_{number}", number + 1
    out[key] = value


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _python_block(data: memoryview, first: int) -> _Block:
    """A slice pyarrow cannot read, line by line: each line that is an object is flattened to text values."""
    rows: list[dict[str, str | None]] = []
    malformed: list[tuple[int, str, str]] = []
    for line in bytes(data).split(b"\n"):
        text = line.decode("utf-8", "replace").strip()
        if not text:
            continue
        try:
            value = json.loads(text)
        except ValueError as error:
            malformed.append((len(rows) + len(malformed), text, f"not JSON: {error}"))
            continue
        if not isinstance(value, dict):
            malformed.append((len(rows) + len(malformed), text, "not a JSON object"))
            continue
        flat: dict[str, str | None] = {}
        _flatten(value, "", flat)
        rows.append(flat)
    names = dict.fromkeys(name for row in rows for name in row)
    columns = {name: pa.chunked_array([pa.array([row.get(name) for row in rows], pa.string())]) for name in names}
    return _Block(columns, len(rows), first, malformed)


def _flatten(value: dict[str, Any], prefix: str, out: dict[str, str | None]) -> None:
    for key, item in value.items():
        name = f"{prefix}_{key}" if prefix else key
        if isinstance(item, dict):
            _flatten(item, name, out)
        elif item is None or isinstance(item, str):
            _put(out, name, item)
        elif isinstance(item, bool):
            _put(out, name, "true" if item else "false")
        elif isinstance(item, int):
            _put(out, name, str(item))
        elif isinstance(item, float):  # as Arrow writes a double: 1.0 is "1"
            _put(out, name, repr(item).removesuffix(".0"))
        else:
            _put(out, name, _json_text(item))


# -- typing -------------------------------------------------------------------------------------------------------

def _json_kind(kind: pa.DataType) -> pa.DataType:
    """The column type for a value JSON typed itself."""
    if pa.types.is_integer(kind):
        return pa.int64()
    if pa.types.is_floating(kind):
        return pa.float64()
    if pa.types.is_boolean(kind):
        return pa.bool_()
    if pa.types.is_timestamp(kind):
        return TIMESTAMP
    return pa.string()


def _parse(values: pa.ChunkedArray | pa.Array, target: pa.DataType) -> tuple[Any, Any]:
    """``values`` as ``target``: (typed values, mask of the non-null values that do not parse, or None)."""
    if values.type == target:
        return values, None
    if pa.types.is_null(values.type):
        return pa.chunked_array([pa.nulls(len(values), target)], target), None
    text = _text(values)
    if pa.types.is_string(target) or pa.types.is_large_string(target):
        return pc.cast(text, target), None
    parse = _PARSERS.get(target.id)
    if parse is None:
        raise ValueError(f"a column of type {target} cannot be read from text")
    return parse(text, target)


def _text(values: pa.ChunkedArray | pa.Array) -> Any:
    """Text as it was written: a CSV column already is; JSON's numbers and booleans are cast."""
    if pa.types.is_string(values.type):
        return values
    if pa.types.is_large_string(values.type) or pa.types.is_integer(values.type) or \
            pa.types.is_floating(values.type) or pa.types.is_boolean(values.type):
        return pc.cast(values, pa.string())
    return pa.chunked_array([pa.array([None if v is None else str(v) for v in values.to_pylist()], pa.string())])


def _cast_text(text: Any, target: pa.DataType, mask: str,
               prepare: Callable[[Any], Any] | None = None) -> tuple[Any, Any]:
    """Cast; when Arrow refuses a value, cast the values that match ``mask`` (the others are bad), and find any value
    Arrow still refuses by halving, so that a bad value costs its row, not its block."""
    try:
        return pc.cast(text, target), None
    except pa.ArrowInvalid:
        pass
    if prepare is not None:
        text = prepare(text)
    candidates = pc.if_else(pc.match_substring_regex(text, mask), text, pa.scalar(None, pa.string()))
    typed = _cast_or_null(candidates, target)
    return typed, pc.and_(pc.is_valid(text), pc.is_null(typed))


def _cast_or_null(values: Any, target: pa.DataType) -> Any:
    try:
        return pc.cast(values, target)
    except pa.ArrowInvalid:
        if len(values) <= 1:
            return pa.chunked_array([pa.nulls(len(values), target)], target)
        half = len(values) // 2
        parts = [_cast_or_null(values.slice(0, half), target), _cast_or_null(values.slice(half), target)]
        return pa.chunked_array([chunk for part in parts for chunk in _chunks(part)], target)


def _chunks(values: Any) -> list[pa.Array]:
    return values.chunks if isinstance(values, pa.ChunkedArray) else [values]


def _parse_bool(text: Any, target: pa.DataType) -> tuple[Any, Any]:
    return _cast_text(text, target, _BOOL_TEXT)


def _parse_integer(text: Any, target: pa.DataType) -> tuple[Any, Any]:
    def booleans(text: Any) -> Any:  # the AWS Solution stored booleans as 1/0
        lower = pc.ascii_lower(text)
        return pc.if_else(pc.equal(lower, "true"), "1", pc.if_else(pc.equal(lower, "false"), "0", text))

    return _cast_text(text, target, _INT_TEXT, booleans)


def _parse_number(text: Any, target: pa.DataType) -> tuple[Any, Any]:
    return _cast_text(text, target, _NUMBER_TEXT)


def _parse_date(text: Any, target: pa.DataType) -> tuple[Any, Any]:
    typed, bad = _cast_text(text, pa.date32(), _DATE_TEXT)
    return pc.cast(typed, target), bad


def _parse_timestamp(text: Any, target: pa.DataType) -> tuple[Any, Any]:
    def zoned(text: Any) -> Any:  # no zone: UTC; a date alone: midnight UTC
        dated = pc.match_substring_regex(text, _DATE_TEXT)
        with_zone = pc.if_else(pc.match_substring_regex(text, _ZONE), text,
                               pc.binary_join_element_wise(text, "Z", ""))
        return pc.if_else(dated, pc.binary_join_element_wise(text, "T00:00:00Z", ""), with_zone)

    typed, bad = _cast_text(text, _INSTANT, _TIMESTAMP_TEXT, zoned)
    return pc.cast(typed, target, safe=False), bad  # to the column's unit (truncated) and zone (or none: UTC)


_PARSERS: dict[int, Callable[[Any, pa.DataType], tuple[Any, Any]]] = {
    **{t.id: _parse_integer for t in (pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(),
                                       pa.uint32(), pa.uint64())},
    **{t.id: _parse_number for t in (pa.float32(), pa.float64(), pa.decimal128(1, 0), pa.decimal256(1, 0))},
    pa.bool_().id: _parse_bool,
    pa.date32().id: _parse_date,
    pa.date64().id: _parse_date,
    TIMESTAMP.id: _parse_timestamp,
}


def _kind(type_: pa.DataType) -> str:
    """Athena's name for a type, for the reasons given."""
    names = {pa.int64(): "bigint", pa.int32(): "int", pa.int16(): "smallint", pa.int8(): "tinyint",
             pa.float64(): "double", pa.float32(): "float", pa.bool_(): "boolean", pa.date32(): "date"}
    if pa.types.is_timestamp(type_):
        return "timestamp"
    return names.get(type_, str(type_))


class _Columns:
    """The output's columns: the table's (its order, its types), then the file's new ones in first-seen order."""

    def __init__(self, table_schema: pa.Schema | None) -> None:
        self.fields = [pa.field(f.name, f.type) for f in table_schema or []]  # nullable, whatever the table says
        self.table: dict[str, int] = {}
        for index, field_ in enumerate(self.fields):
            self.table.setdefault(normalise_name(field_.name), index)
        self.taken = {field_.name for field_ in self.fields}
        self.index: dict[str, int] = {}  # source name -> field
        self.added: list[str] = []

    def resolve(self, source: str, sample: pa.ChunkedArray) -> int:
        """The field of a source column, fixed the first time it is seen."""
        if source in self.index:
            return self.index[source]
        name = normalise_name(source) or f"column_{len(self.index) + 1}"
        index = self.table.pop(name, None)  # a table column matches once
        if index is None:
            unique, number = name, 2
            while unique in self.taken:
                unique, number = f"{name}_{number}", number + 1
            self.taken.add(unique)
            index = len(self.fields)
            self.fields.append(pa.field(unique, column_type(source, sample)))
            self.added.append(unique)
        elif not _readable(self.fields[index].type):
            raise ValueError(f"column {self.fields[index].name}: the table's type {self.fields[index].type} "
                             "cannot be read from text")
        self.index[source] = index
        return index

    def schema(self) -> pa.Schema:
        return pa.schema(self.fields)


def _readable(type_: pa.DataType) -> bool:
    return pa.types.is_string(type_) or pa.types.is_large_string(type_) or type_.id in _PARSERS


class _Conversion:
    """Types each block, rejects the rows that do not type, drops filtered rows and keeps the counts."""

    def __init__(self, table_schema: pa.Schema | None, drop_filtered: bool) -> None:
        self.columns = _Columns(table_schema)
        self.drop_filtered = drop_filtered
        self.rows_read = self.rows_written = self.rows_filtered = self.rows_rejected = 0
        self.rejected: list[Rejected] = []

    def typed(self, block: _Block) -> pa.Table:
        """The block's rows to write, in the output's schema as it stands."""
        typed: dict[int, Any] = {}
        bad: list[tuple[pa.Field, Any, Any]] = []  # (column, values, mask) for the columns with a bad value
        for source, values in block.columns.items():
            index = self.columns.resolve(source, values)
            column = self.columns.fields[index]
            typed[index], mask = _parse(values, column.type)
            if _any_bad(mask):
                bad.append((column, values, mask))
        schema = self.columns.schema()
        table = pa.Table.from_arrays(
            [typed[i] if i in typed else pa.chunked_array([pa.nulls(block.rows, f.type)], f.type)
             for i, f in enumerate(schema)], schema=schema)
        rejected = _any(mask for _, _, mask in bad)
        filtered = self._filtered(table)
        self._count(block, rejected, filtered)
        self._describe(block, bad, rejected)
        drop = _any(mask for mask in (rejected, filtered) if mask is not None)
        return table if drop is None else table.filter(pc.invert(drop))

    def _filtered(self, table: pa.Table) -> Any:
        """Rows AMC filtered (``filtered`` true, or 1 in a table that stored booleans as integers)."""
        if not self.drop_filtered or "filtered" not in table.column_names:
            return None
        column = table.column("filtered")
        if pa.types.is_boolean(column.type):
            marked = column
        elif pa.types.is_integer(column.type):
            marked = pc.equal(column, 1)
        elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            marked = pc.equal(pc.ascii_lower(column), "true")
        else:
            return None
        return pc.fill_null(marked, False)

    def _count(self, block: _Block, rejected: Any, filtered: Any) -> None:
        rejected_count = 0 if rejected is None else pc.sum(rejected).as_py() or 0
        filtered_count = 0
        if filtered is not None:
            kept = filtered if rejected is None else pc.and_(filtered, pc.invert(rejected))
            filtered_count = pc.sum(kept).as_py() or 0
        self.rows_read += block.count
        self.rows_rejected += rejected_count + len(block.malformed)
        self.rows_filtered += filtered_count
        self.rows_written += block.rows - rejected_count - filtered_count

    def _describe(self, block: _Block, bad: list[tuple[pa.Field, Any, Any]], rejected: Any) -> None:
        """Rejected records for the first MAX_REJECTED rejected rows (the only per-row work)."""
        room = MAX_REJECTED - len(self.rejected)
        if room <= 0:
            return
        found = [Rejected(block.first + position, "", text[:_MAX_TEXT], reason)
                 for position, text, reason in block.malformed[:room]]
        indices = [] if rejected is None else pc.indices_nonzero(rejected).to_pylist()[:room]
        for index in indices:
            column, values, _ = next(item for item in bad if item[2][index].as_py())  # its first bad column
            value = _as_text(values[index].as_py())[:_MAX_TEXT]
            kind = _kind(column.type)
            reason = f"{column.name}: expected {'an' if kind[0] in 'aeiou' else 'a'} {kind}, got {value!r}"
            found.append(Rejected(block.row(index), column.name, value, reason))
        self.rejected.extend(sorted(found, key=lambda rejected: rejected.row)[:room])

    def result(self, bytes_written: int) -> Converted:
        return Converted(schema=self.columns.schema(), added=list(self.columns.added), rows_read=self.rows_read,
                         rows_written=self.rows_written, rows_filtered=self.rows_filtered, rejected=self.rejected,
                         rows_rejected=self.rows_rejected, bytes_written=bytes_written,
                         absent=[self.columns.fields[i].name for i in sorted(self.columns.table.values())])


def _any_bad(mask: Any) -> bool:
    return mask is not None and bool(pc.any(mask).as_py())


def _any(masks: Any) -> Any:
    combined = None
    for mask in masks:
        combined = mask if combined is None else pc.or_(combined, mask)
    return combined


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- writing ------------------------------------------------------------------------------------------------------

class _Output:
    """Row groups of exactly ``rows`` rows, into a temporary file that becomes the sink once the conversion succeeds.

    Rows are held here until a group is full, then encoded while the parse thread prepares one more slice: one group
    is held, whatever the file's size. (Encoding on a thread of its own, while the next group fills, was measured: it
    holds two groups at 1 GB, against one and a half at 100 MB, for little speed on two cores.)"""

    def __init__(self, sink: BinaryIO | str, rows: int) -> None:
        self.sink, self.rows = sink, rows
        directory = os.path.dirname(os.path.abspath(sink)) if isinstance(sink, str) else None
        handle, self.path = tempfile.mkstemp(prefix=".convert-", suffix=".parquet", dir=directory)
        os.close(handle)
        self.schema: pa.Schema | None = None
        self.writer: pq.ParquetWriter | None = None
        self.pending: list[pa.Table] = []
        self.pending_rows = 0

    def __enter__(self) -> _Output:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.writer is not None:
            self.writer.close()
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)

    def add(self, table: pa.Table) -> None:
        """Hold ``table`` (whose schema extends the last one's) and write every full row group."""
        if table.schema != self.schema:
            self._widen(table.schema)
        if table.num_rows:
            self.pending.append(table)
            self.pending_rows += table.num_rows
        while self.pending_rows >= self.rows:
            self._write(self.rows)

    def finish(self, schema: pa.Schema) -> int:
        """Write what is held, close, and move the file to the sink; returns its size in bytes."""
        if schema != self.schema:
            self._widen(schema)
        if self.pending_rows:
            self._write(self.pending_rows)
        self._writer().close()
        self.writer = None
        size = os.path.getsize(self.path)
        if isinstance(self.sink, str):
            os.replace(self.path, self.sink)
        else:
            with open(self.path, "rb") as written:
                shutil.copyfileobj(written, self.sink, 8 * 2**20)
        return size

    def _writer(self) -> pq.ParquetWriter:
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, self.schema, compression="snappy")
        return self.writer

    def _write(self, count: int) -> None:
        table = pa.concat_tables(self.pending)
        rest = table.slice(count)
        self.pending, self.pending_rows = ([rest] if rest.num_rows else []), rest.num_rows
        self._encode(table.slice(0, count))

    def _encode(self, group: pa.Table) -> None:
        self._writer().write_table(group, row_group_size=group.num_rows)

    def _widen(self, schema: pa.Schema) -> None:
        """A column first seen now: the held tables get it as nulls, and so does every row group already written."""
        self.schema = schema
        self.pending = [_widened(table, schema) for table in self.pending]
        if self.writer is None:
            return
        self.writer.close()
        self.writer = None
        previous = f"{self.path}.previous"
        os.replace(self.path, previous)
        try:
            with pq.ParquetFile(previous) as written:
                for group in range(written.num_row_groups):
                    self._encode(_widened(written.read_row_group(group), schema))
        finally:
            os.remove(previous)


def _widened(table: pa.Table, schema: pa.Schema) -> pa.Table:
    columns = [table.column(f.name) if f.name in table.column_names
               else pa.chunked_array([pa.nulls(table.num_rows, f.type)], f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)
