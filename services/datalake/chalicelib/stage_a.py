"""Stage A, the light transform: one object in, line-oriented pre-stage files out (CSV, TSV or NDJSON), each with
its table and partition, streamed in bounded memory whatever the object's size.

Built-in transforms (the registry names them ``builtin:<name>``):

``amc_csv``    AMC results, ``workflow=<id>/schedule=<frequency>/<file>.csv`` in a tenant's bucket. The file name
               is ``<YYYY-MM-DDTHH:MM:SS.mmmZ>-<name>.csv`` (or ``<YYYY-MM-DD>-<name>.csv``), with an optional
               ``-verN`` version. Table ``<workflow>_<schedule>[_verN]``; partition ``tenant``, ``export_year``,
               ``export_month``, ``file_timestamp``. The bytes pass unchanged (quoting preserved). Runs of AMC's
               own UI (workflows ``analytics-<uuid>``) and empty results (a header and nothing else) are skipped.
``ads_json``   Amazon Ads reports, ``adtech/ads_report/<table>/report_date=<day>/report-<id>.json.gz``: the
               gzip'd JSON array becomes NDJSON (one object a line), partition ``report_date``.
``sp_report``  Selling Partner reports, ``adtech/sp_report/<table>/report_date=<day>/report-<id>.<json|tsv>[.gz]``:
               a flat file passes as TSV; a JSON document's top-level arrays each become a table
               ``<table>_<array>`` of NDJSON, its ``reportSpecification`` kept whole as metadata (stage B makes it
               the table's ``report_specification`` parameter).

A custom dataset's transform has the same signature as these: ``(body, source) -> Iterable[PreStaged]``, run
through :func:`custom` (its ``ValueError`` quarantines the object). Output names are stable (the source's name), so
a replay overwrites rather than adds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import re
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

import ijson

from shared.lake import REPORT_SPECIFICATION, normalise_name

CHUNK = 1024 * 1024
SPOOL_BYTES = 8 * 1024 * 1024  # a JSON array is spooled to disk beyond this
HEAD_BYTES = 64 * 1024  # enough to see a header and a first row (AMC writes a header alone for no rows)
_AMC_KEY = re.compile(r"^workflow=(?P<workflow>[^/]+)/schedule=(?P<schedule>[^/]+)/(?P<file>[^/]+)$")
_STAMPED = re.compile(r"^(?P<stamp>\d{4}-\d{2}-\d{2}T\d{2}[:-]\d{2}[:-]\d{2}(?:[.-]\d{1,3})?Z)-(?P<base>.+)\.csv$")
_DATED = re.compile(r"^(?P<stamp>\d{4}-\d{2}-\d{2})-(?P<base>.+)\.csv$")
_VERSION = re.compile(r"^(?P<base>.+)-ver(?P<n>\d+)$")
_UI_RUN = re.compile(r"^analytics-[0-9a-fA-F-]{36}$")
_REPORT_KEY = re.compile(r"^adtech/(?P<dataset>ads_report|sp_report)/(?P<table>[^/]+)/report_date=(?P<day>[0-9-]{10})/"
                         r"(?P<file>[^/]+)$")


class Skipped(Exception):
    """Nothing to stage, and nothing wrong (an empty result, a run of AMC's UI): recorded with the reason."""


class Malformed(Exception):
    """The object cannot be read as its dataset's files are: quarantined with the reason."""


@dataclass(frozen=True)
class Source:
    """The object being transformed, and what routing learned about it."""

    bucket: str
    key: str
    version_id: str
    customer_id: str | None  # the tenant whose bucket it is (AMC results)
    last_modified: datetime
    size: int
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class PreStaged:
    """One pre-stage file: its table and partition (in order), a stable name, format and content."""

    table: str
    partition: dict[str, str]
    name: str
    file_format: str  # csv | tsv | ndjson
    chunks: Iterable[bytes]
    metadata: dict[str, str] = field(default_factory=dict)

    def key(self, team: str, dataset: str) -> str:
        path = "/".join(f"{k}={v}" for k, v in self.partition.items())
        return f"pre-stage/{team}/{dataset}/{self.table}/{path + '/' if path else ''}{self.name}.{self.file_format}"


Transform = Callable[[IO[bytes], Source], Iterable[PreStaged]]


def amc_csv(body: IO[bytes], source: Source) -> Iterator[PreStaged]:
    found = _AMC_KEY.match(source.key)
    if found is None or not found["file"].endswith(".csv"):
        raise Skipped("not an AMC result: expected workflow=<id>/schedule=<frequency>/<file>.csv")
    if _UI_RUN.match(found["workflow"]):
        raise Skipped("a run of AMC's own UI")
    named = _STAMPED.match(found["file"]) or _DATED.match(found["file"])
    if named is None:
        raise Malformed(f"file name {found['file']!r}: expected <YYYY-MM-DDTHH:MM:SS.mmmZ>-<name>.csv")
    base, version = named["base"], None
    if versioned := _VERSION.match(base):
        base, version = versioned["base"], versioned["n"]
    stamp = re.sub(r"[^0-9A-Za-z]", "", named["stamp"])  # a partition value without ':' or '.'
    head = body.read(HEAD_BYTES)
    if len(head) >= source.size and len([line for line in head.splitlines() if line.strip()]) <= 1:
        raise Skipped("an empty result: a header and no rows")
    table = normalise_name("_".join([found["workflow"], found["schedule"], *([f"ver{version}"] if version else [])]))
    yield PreStaged(table, {"tenant": source.customer_id or "unknown", "export_year": named["stamp"][:4],
                            "export_month": named["stamp"][5:7], "file_timestamp": stamp},
                    f"{stamp}-{normalise_name(base)}", "csv", _chain(head, _chunks(body)),
                    {"workflow": found["workflow"], "schedule": found["schedule"], "version": version or ""})


def ads_json(body: IO[bytes], source: Source) -> Iterator[PreStaged]:
    found = _report_key(source)
    yield PreStaged(normalise_name(found["table"]), {"report_date": found["day"]}, _stem(found["file"]), "ndjson",
                    _json_array_lines(_content(body, found["file"])), _report_metadata(source))


def sp_report(body: IO[bytes], source: Source) -> Iterator[PreStaged]:
    found = _report_key(source)
    table, partition, stem = normalise_name(found["table"]), {"report_date": found["day"]}, _stem(found["file"])
    if ".tsv" in found["file"]:
        yield PreStaged(table, partition, stem, "tsv", _content(body, found["file"]), _report_metadata(source))
        return
    if ".json" not in found["file"]:
        raise Malformed(f"{found['file']}: expected a .json or .tsv report (named so by the reporting service)")
    yield from _json_document(body, found["file"], table, partition, stem, _report_metadata(source))


BUILTIN: dict[str, Transform] = {"amc_csv": amc_csv, "ads_json": ads_json, "sp_report": sp_report}


def custom(transform: Callable[[IO[bytes], Source], Iterable[Any]]) -> Transform:
    """A custom dataset's transform as the pipeline runs it. It says its data is wrong with a ``ValueError`` (it need
    not import this module), while yielding or while its content is read: that becomes :class:`Malformed` (the
    object is quarantined); any other error stays what it is (the message is retried). It may yield the
    :class:`PreStaged` fields as a dict."""
    def run(body: IO[bytes], source: Source) -> Iterator[PreStaged]:
        with _data_errors():
            for out in transform(body, source):
                pre = out if isinstance(out, PreStaged) else PreStaged(**out)
                yield dataclasses.replace(pre, chunks=_guarded(pre.chunks))
    return run


# -- helpers ---------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _data_errors() -> Iterator[None]:
    try:
        yield
    except ValueError as wrong:
        raise Malformed(f"{type(wrong).__name__}: {wrong}") from wrong


def _guarded(chunks: Iterable[bytes]) -> Iterator[bytes]:
    with _data_errors():
        yield from chunks


def _report_key(source: Source) -> re.Match[str]:
    found = _REPORT_KEY.match(source.key)
    if found is None:
        raise Skipped("not a report file: expected adtech/<dataset>/<table>/report_date=<day>/<file>")
    return found


def _report_metadata(source: Source) -> dict[str, str]:
    """The reporting service's metadata (request, report, profile or marketplaces), carried to stage B."""
    return {k: v for k, v in source.metadata.items() if k in (
        "request-id", "requested-at", "report-id", "report-type", "profile-id", "marketplace-ids", "customer-id")}


def _stem(file_name: str) -> str:
    return file_name.split(".", 1)[0]


def _chunks(body: IO[bytes]) -> Iterator[bytes]:
    while chunk := body.read(CHUNK):
        yield chunk


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _content(body: IO[bytes], file_name: str) -> Iterator[bytes]:
    """The object's content, gunzipped on the way when it is gzip (by name or by its first bytes)."""
    head = body.read(2)
    chunks = _chain(head, _chunks(body))
    if head != b"\x1f\x8b" and not file_name.endswith(".gz"):
        return chunks
    return _gunzip(chunks)


def _gunzip(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Gunzip in bounded steps; several members one after another (as ``cat a.gz b.gz``) are one content, and a
    file cut short is refused rather than staged in part."""
    inflate, fed = zlib.decompressobj(wbits=31), False
    try:
        for chunk in chunks:
            while chunk:
                fed = True
                yield inflate.decompress(chunk, CHUNK)
                if inflate.eof:  # a member ended: what follows, if anything, is the next member
                    chunk, inflate, fed = inflate.unused_data, zlib.decompressobj(wbits=31), False
                else:
                    chunk = inflate.unconsumed_tail
        yield inflate.flush()
    except zlib.error as exc:
        raise Malformed(f"not a valid gzip file: {exc}") from None
    if fed and not inflate.eof:
        raise Malformed("a gzip file cut short")


def _json_array_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """A JSON array of objects as NDJSON, parsed item by item (ijson): bounded by the largest object."""
    try:
        for item in ijson.items(readable(chunks), "item", use_float=True):
            yield json.dumps(item, separators=(",", ":")).encode() + b"\n"
    except ijson.JSONError as exc:
        raise Malformed(f"not a JSON array of objects: {exc}") from None


def _json_document(body: IO[bytes], file_name: str, table: str, partition: dict[str, str], stem: str,
                   metadata: dict[str, str]) -> Iterator[PreStaged]:
    """Each top-level array of the document its own table; ``reportSpecification`` as metadata. One pass: each item
    is built alone and written to its array's spooled file, so memory is bounded by the largest item."""
    spools: dict[str, IO[bytes]] = {}
    specification: Any = None
    with contextlib.ExitStack() as files:  # open while the caller reads each PreStaged's chunks
        try:
            for key, item, in_array in _top_level_items(readable(_content(body, file_name))):
                if key == "reportSpecification":
                    specification = item
                elif in_array and isinstance(item, dict):
                    if key not in spools:
                        spools[key] = files.enter_context(tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES))
                    spools[key].write(json.dumps(item, separators=(",", ":")).encode() + b"\n")
        except ijson.JSONError as exc:
            raise Malformed(f"not a JSON report document: {exc}") from None
        if not spools:
            raise Skipped("a report with no rows")
        if specification is not None:
            metadata = {**metadata, REPORT_SPECIFICATION: json.dumps(specification, separators=(",", ":"))}
        for name, spool in spools.items():
            spool.seek(0)
            yield PreStaged(f"{table}_{normalise_name(name)}", partition, stem, "ndjson", _chunks(spool), metadata)


def _top_level_items(reader: IO[bytes]) -> Iterator[tuple[str, Any, bool]]:
    """``(key, item, True)`` for each item of each top-level array, ``(key, value, False)`` for other top-level
    values; each built alone from ijson's events, so no array is ever held whole."""
    key, in_array, builder, depth = None, False, None, 0
    for prefix, event, value in ijson.parse(reader, use_float=True):
        if builder is None:
            if prefix == "":  # the document's own braces and keys
                key = value if event == "map_key" else key
                continue
            if prefix == key and event in ("start_array", "end_array"):
                in_array = event == "start_array"
                continue
            builder = ijson.ObjectBuilder()
        builder.event(event, value)
        depth += (event in ("start_map", "start_array")) - (event in ("end_map", "end_array"))
        if depth == 0:  # the value is whole
            yield str(key), builder.value, in_array
            builder = None


def readable(chunks: Iterable[bytes], buffer_size: int = CHUNK) -> IO[bytes]:
    """A buffered file over an iterator of byte chunks: ``read(n)`` gives ``n`` bytes (for ijson, and for
    ``upload_fileobj``, which uploads part by part only when its reads are filled)."""
    return io.BufferedReader(_ChunkStream(chunks), buffer_size=buffer_size)


class _ChunkStream(io.RawIOBase):
    """The raw stream under :func:`readable`."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks, self._pending = iter(chunks), b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size], self._pending = self._pending[:size], self._pending[size:]
        return size
