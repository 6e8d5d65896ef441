"""Copy a report or result file from a URL (an Amazon pre-signed download URL) into S3, in constant memory.

The body is read from the wire in 1 MiB chunks and uploaded part by part (multipart upload, ``concurrency`` parts
uploading while the next one is read), so memory is bounded by the part size whatever the file's size: at most
``concurrency + 2`` parts are held at once. Each part carries ``Content-MD5``, so S3 checks it; the size read is
checked against ``Content-Length``, and the final ETag against the parts' MD5s wherever S3 makes it an MD5 (not
under SSE-KMS or SSE-C, where AWS's ETag is opaque and the parts' checks stand alone). Any failure aborts the
multipart upload: nothing is left behind. A file smaller than one part goes with a single ``put_object``.

Compression. The body is always read as the bytes on the wire (``response.raw.stream(decode_content=False)``,
never ``iter_content``, which would let urllib3 decode ``Content-Encoding`` with no bound on its output and
no way to count the bytes ``Content-Length`` speaks of). Then:

- ``decompress=False``: the object holds the bytes as they came: a ``.json.gz`` stays compressed, byte for
  byte. A body sent with ``Content-Encoding: gzip`` is stored encoded with the same ``ContentEncoding``, so
  the object is the same representation the server sent.
- ``decompress=True``: the object holds the uncompressed content. The ``Content-Encoding: gzip`` layer is
  removed, and a gzip body (recognised by its magic bytes) is gunzipped on the fly (``zlib``, ``wbits=31``,
  concatenated members included, output bounded per step); a plain body is stored as it is.

Naming and metadata. ``key`` is the object's key, or a function that names it from the content: it is called once,
before anything is uploaded, with the content's first bytes (up to ``HEAD_SIZE``, always uncompressed: a body
stored as gzip has just its head gunzipped for it, bounded, the stored bytes untouched; a truncated or corrupt gzip
head gives what decompresses before the break), so that a caller can name a file by what it holds (JSON or
tab-separated...) while streaming it; :attr:`Copied.key` is the key used. ``metadata`` is stored as the object's
user metadata (``x-amz-meta-*``), on a single ``put_object`` as on a multipart upload.

The URL is never logged nor put in an error: it carries the signature (``shared.logs`` would mask that much,
but the URL as a whole is nobody's business). Errors are typed (``shared.amazon.errors``): the server's
refusal by status (an expired URL is :class:`Unauthorized`), a dropped or short download :class:`ServerError`,
a corrupt gzip stream :class:`InvalidRequest`. Retries of a failed part are boto3's (its retry policy); a
dropped download is not retried here: the caller asks for a fresh URL and copies again (the copy overwrites).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
import urllib3

from shared.amazon.errors import AmazonApiError, InvalidRequest, ServerError, for_status

log = logging.getLogger(__name__)

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB  # S3's minimum for every part but the last
DEFAULT_PART_SIZE = 8 * MiB
READ_SIZE = 1 * MiB  # bytes per read from the wire, and at most per gunzip step
HEAD_SIZE = 64 * 1024  # at most this much of the content's start goes to a key function
PARTS_PER_STEP = 1000  # the part size doubles every 1,000 parts: S3 allows 10,000 parts, this reaches 5 TB
_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = b"\xef\xbb\xbf"
_GZIP_ENCODINGS = ("gzip", "x-gzip")
_OPAQUE_ETAG_ENCRYPTION = ("aws:kms", "aws:kms:dsse")  # S3's ETag is then not an MD5 of the data


@dataclass(frozen=True)
class Copied:
    """What a copy stored."""

    bucket: str
    key: str
    size: int  # bytes stored
    parts: int  # 1 for a single put_object
    etag: str
    sha256: str  # hex digest of the bytes stored
    downloaded: int  # bytes received from the server (the compressed size when it was compressed)
    decompressed: bool  # a gzip layer was removed
    etag_verified: bool  # False only where S3's ETag is no MD5 (SSE-KMS, SSE-C); each part's MD5 was still checked
    version_id: str | None = None


class StoredObjectMismatch(Exception):
    """S3's ETag for the completed object does not match the parts sent; the object version was deleted."""


def copy_to_s3(url: str, s3: Any, bucket: str, key: str | Callable[[bytes], str], *, session: requests.Session,
               decompress: bool = False, part_size: int = DEFAULT_PART_SIZE, kms_key_id: str | None = None,
               content_type: str | None = None, metadata: Mapping[str, str] | None = None, concurrency: int = 4,
               timeout: tuple[float, float] = (5.0, 60.0), api: str = "files") -> Copied:
    """Copy the file at ``url`` to ``s3://bucket/key``; see the module's documentation.

    ``key`` may be a function of the content's first bytes (uncompressed) that returns the key;
    ``part_size`` is at least 5 MiB; ``concurrency`` is how many parts upload while the next is read;
    ``kms_key_id`` stores the object with SSE-KMS under that key (else the bucket's default encryption
    applies); ``content_type`` defaults to the server's (when stored decompressed, unless that names gzip);
    ``metadata`` is the object's user metadata; ``api`` names the source in errors (``sp``, ``ads``...).
    """
    if part_size < MIN_PART_SIZE:
        raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum), got {part_size}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    started = time.monotonic()
    accept = "gzip" if decompress else "identity"  # keep mode: ask for the file itself, not an encoding of it
    with _get(session, url, accept, timeout, api) as response:
        source = _Source(response, api)
        encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
        encoding = None if encoding == "identity" else encoding
        extra = _object_arguments(response, decompress, encoding, content_type, kms_key_id, metadata)
        chunks, decompressed = _content(source.chunks(), encoding, decompress, api)
        parts = _parts(chunks, part_size)
        first = next(parts)  # read before the key is known: a key function names the object from it
        if callable(key):
            key = _named(key, _content_head(first, api))
        uploader = _Uploader(s3, bucket, key, extra, concurrency)
        copied = uploader.upload(first, parts, part_size, source, decompressed)
    seconds = time.monotonic() - started
    log.info("copied a file to S3", extra={
        "bucket": bucket, "key": key, "bytes": copied.size, "downloaded": copied.downloaded, "parts": copied.parts,
        "seconds": round(seconds, 2), "mb_per_s": round(copied.size / 1e6 / max(seconds, 1e-6), 1)})
    return copied


# -- download ----------------------------------------------------------------------------------------------------

def _get(session: requests.Session, url: str, accept: str, timeout: tuple[float, float],
         api: str) -> requests.Response:
    try:
        response = session.get(url, stream=True, timeout=timeout, headers={"Accept-Encoding": accept})
    except requests.RequestException as exc:  # its text names the URL: only its type goes on
        raise ServerError(api, "download", f"request failed: {type(exc).__name__}") from None
    if response.status_code >= 400:
        with response:
            raise _refusal(api, response)
    return response


def _refusal(api: str, response: requests.Response) -> AmazonApiError:
    """The typed error for a refused download, from S3's XML ``Code`` and ``Message`` only: S3's error body can
    echo the request (``SignatureProvided``, ``StringToSign``), so nothing else of it is kept."""
    body = next(response.iter_content(4096), b"").decode("utf-8", errors="replace")
    code = re.search(r"<Code>([^<]{1,100})</Code>", body)
    message = re.search(r"<Message>([^<]{1,300})</Message>", body)
    return for_status(response.status_code)(
        api, "download", message.group(1) if message else (response.reason or "refused"), response.status_code,
        code.group(1) if code else None, request_id=response.headers.get("x-amz-request-id"))


class _Source:
    """The response body as the bytes on the wire, counted, with failures turned into typed errors."""

    def __init__(self, response: requests.Response, api: str) -> None:
        self.response, self.api = response, api
        length = response.headers.get("Content-Length")
        self.expected = int(length) if length and length.isdigit() else None
        self.received = 0

    def chunks(self) -> Iterator[bytes]:
        try:
            for chunk in self.response.raw.stream(READ_SIZE, decode_content=False):
                self.received += len(chunk)
                yield chunk
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
            raise ServerError(self.api, "download", f"the download broke off after {self.received} bytes "
                                                   f"({type(exc).__name__})") from None
        if self.expected is not None and self.received != self.expected:
            raise ServerError(self.api, "download", f"received {self.received} bytes of the {self.expected} "
                                                    "announced by Content-Length")


class _Gunzip:
    """Streaming gunzip of a whole gzip file, concatenated members included, in steps of at most ``step`` bytes."""

    def __init__(self, api: str, step: int = READ_SIZE) -> None:
        self.api, self.step = api, step
        self._inflater = zlib.decompressobj(31)
        self._fed = False  # the current member has started

    def stream(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            yield from self._feed(chunk)
        if self._fed:
            raise ServerError(self.api, "download", "the gzip stream ends before its end: the file is truncated")

    def _feed(self, data: bytes) -> Iterator[bytes]:
        while True:
            if not self._fed:  # between members: zero padding may follow one (gzip(1) allows it)
                data = data.lstrip(b"\x00")
                if not data:
                    return
                self._fed = True
            try:
                out = self._inflater.decompress(data, self.step)
            except zlib.error as exc:
                raise InvalidRequest(self.api, "download", f"not a valid gzip stream: {exc}") from None
            if out:
                yield out
            if self._inflater.eof:  # a member ended: what follows is the next one
                data, self._inflater, self._fed = self._inflater.unused_data, zlib.decompressobj(31), False
                continue
            data = self._inflater.unconsumed_tail
            if not data and len(out) < self.step:  # all input used and no output held back
                return


def _content(chunks: Iterator[bytes], encoding: str | None, decompress: bool,
             api: str) -> tuple[Iterator[bytes], bool]:
    """The bytes to store, and whether a gzip layer was removed: as they came, or else without the
    ``Content-Encoding`` and, if what remains is gzip, gunzipped."""
    if not decompress:
        return chunks, False
    removed = encoding is not None
    if encoding is not None:
        if encoding not in _GZIP_ENCODINGS:
            raise InvalidRequest(api, "download", f"cannot decompress Content-Encoding {encoding!r}")
        chunks = _Gunzip(api).stream(chunks)
    head = b""
    for chunk in chunks:  # enough to see the magic bytes
        head += chunk
        if len(head) >= len(_GZIP_MAGIC):
            break
    chunks = _chain(head, chunks)
    if head.startswith(_GZIP_MAGIC):
        return _Gunzip(api).stream(chunks), True
    return chunks, removed


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _content_head(first: bytes, api: str) -> bytes:
    """The content's first HEAD_SIZE bytes (or fewer), uncompressed, from the first part as stored: a gzip part has
    just its start gunzipped (64 KiB in, 64 KiB out at a time), ``first`` untouched; a truncated or corrupt gzip
    stream gives what decompresses before the break."""
    if not first.startswith(_GZIP_MAGIC):
        return first[:HEAD_SIZE]
    head = bytearray()
    pieces = (first[i:i + HEAD_SIZE] for i in range(0, len(first), HEAD_SIZE))
    try:
        for out in _Gunzip(api, HEAD_SIZE).stream(pieces):
            head += out
            if len(head) >= HEAD_SIZE:
                break
    except (ServerError, InvalidRequest):  # truncated, or not gzip after all: the head is what came before
        pass
    return bytes(head[:HEAD_SIZE])


def _named(name: Callable[[bytes], str], head: bytes) -> str:
    key = name(head)
    if not isinstance(key, str) or not key:
        raise ValueError(f"the key function returned {key!r}, not a key")
    return key


def _parts(chunks: Iterable[bytes], part_size: int) -> Iterator[bytes]:
    """The content as parts of at least ``part_size`` bytes (the last one may be shorter), ``part_size``
    doubling every PARTS_PER_STEP parts so that no file needs more than S3's 10,000 parts."""
    pending: list[bytes] = []
    size = 0
    number = 1
    for chunk in chunks:
        pending.append(chunk)
        size += len(chunk)
        if size >= part_size * 2 ** ((number - 1) // PARTS_PER_STEP):
            yield _joined(pending)  # nothing of the part stays in this frame while the caller uploads it
            size, number = 0, number + 1
    if pending or number == 1:
        yield _joined(pending)


def _joined(pending: list[bytes]) -> bytes:
    joined = b"".join(pending)
    pending.clear()
    return joined


# -- upload ------------------------------------------------------------------------------------------------------

def _object_arguments(response: requests.Response, decompress: bool, encoding: str | None,
                      content_type: str | None, kms_key_id: str | None,
                      metadata: Mapping[str, str] | None) -> dict[str, Any]:
    served_type = response.headers.get("Content-Type")
    if content_type is None and served_type and not (decompress and "gzip" in served_type.lower()):
        content_type = served_type
    arguments: dict[str, Any] = {"ContentType": content_type} if content_type else {}
    if encoding is not None and not decompress:
        arguments["ContentEncoding"] = response.headers["Content-Encoding"]
    if kms_key_id:
        arguments.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key_id, BucketKeyEnabled=True)
    if metadata:
        arguments["Metadata"] = dict(metadata)
    return arguments


def _md5(data: bytes) -> bytes:
    return hashlib.md5(data, usedforsecurity=False).digest()


class _Uploader:
    def __init__(self, s3: Any, bucket: str, key: str, extra: dict[str, Any], concurrency: int) -> None:
        self.s3, self.bucket, self.key, self.extra, self.concurrency = s3, bucket, key, extra, concurrency
        self.sha256 = hashlib.sha256()
        self.size = 0

    def upload(self, first: bytes, rest: Iterator[bytes], part_size: int, source: _Source,
               decompressed: bool) -> Copied:
        """Store ``first`` and the ``rest`` of the parts: one ``put_object`` if ``first`` is short (the whole
        content), else a multipart upload."""
        self._count(first)
        if len(first) < part_size:
            md5 = _md5(first)
            response = self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=first,
                                          ContentMD5=base64.b64encode(md5).decode(), **self.extra)
            count, expected = 1, md5.hex()
        else:
            response, count, expected = self._multipart(_chain(first, rest))
        etag = response["ETag"].strip('"')
        verified = etag == expected
        if not verified and not _opaque_etag(response):
            self._delete(response.get("VersionId"))
            raise StoredObjectMismatch(f"s3://{self.bucket}/{self.key}: S3's ETag {etag} is not the {expected} "
                                       "of the parts sent; the object was deleted")
        return Copied(self.bucket, self.key, self.size, count, etag, self.sha256.hexdigest(), source.received,
                      decompressed, verified, response.get("VersionId"))

    def _count(self, data: bytes) -> None:
        self.sha256.update(data)
        self.size += len(data)

    def _multipart(self, parts: Iterator[bytes]) -> tuple[dict[str, Any], int, str]:
        upload_id = self.s3.create_multipart_upload(Bucket=self.bucket, Key=self.key, **self.extra)["UploadId"]
        try:
            done = self._upload_parts(upload_id, parts)
            response = self.s3.complete_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag, _ in done]})
        except BaseException as failure:
            self._abort(upload_id, failure)
            raise
        expected = hashlib.md5(b"".join(md5 for _, _, md5 in done), usedforsecurity=False).hexdigest()
        return response, len(done), f"{expected}-{len(done)}"

    def _upload_parts(self, upload_id: str, parts: Iterator[bytes]) -> list[tuple[int, str, bytes]]:
        """Upload every part, ``concurrency`` at a time while the next is read; all finished when it returns."""
        done: list[tuple[int, str, bytes]] = []
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="s3-part") as pool:
            in_flight: deque[Future[tuple[int, str, bytes]]] = deque()
            try:
                for number, body in enumerate(parts, start=1):
                    if number > 1:  # the first part was counted when it was read
                        self._count(body)
                    if len(in_flight) >= self.concurrency:
                        done.append(in_flight.popleft().result())
                    in_flight.append(pool.submit(self._upload_part, upload_id, number, body))
                    del body  # held by its upload only
                while in_flight:
                    done.append(in_flight.popleft().result())
            finally:
                for future in in_flight:  # a failure: let the others finish (the pool waits) before the abort
                    future.cancel()
        return done

    def _upload_part(self, upload_id: str, number: int, body: bytes) -> tuple[int, str, bytes]:
        md5 = _md5(body)
        response = self.s3.upload_part(Bucket=self.bucket, Key=self.key, UploadId=upload_id, PartNumber=number,
                                       Body=body, ContentMD5=base64.b64encode(md5).decode())
        return number, response["ETag"], md5

    def _abort(self, upload_id: str, failure: BaseException) -> None:
        try:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)
        except Exception as exc:  # the original failure is what the caller needs; the bucket's lifecycle rule
            log.warning("could not abort a multipart upload", extra={  # cleans up what is left
                "bucket": self.bucket, "key": self.key, "upload_id": upload_id, "error": type(exc).__name__})
        else:
            log.warning("copy to S3 failed; multipart upload aborted", extra={
                "bucket": self.bucket, "key": self.key, "error": type(failure).__name__})

    def _delete(self, version_id: str | None) -> None:
        versioned = {"VersionId": version_id} if version_id else {}
        self.s3.delete_object(Bucket=self.bucket, Key=self.key, **versioned)


def _opaque_etag(response: dict[str, Any]) -> bool:
    """S3's ETag is no MD5 of the data under SSE-KMS and SSE-C: a mismatch there proves nothing."""
    return response.get("ServerSideEncryption") in _OPAQUE_ETAG_ENCRYPTION or "SSECustomerAlgorithm" in response


def document_format(head: bytes) -> str:
    """A report document's file extension from its first bytes (uncompressed): ``json`` when the first byte that is
    not whitespace (after an optional UTF-8 byte order mark) is ``{`` or ``[``, ``xml`` when it is ``<``; else
    ``tsv`` when the first line holds a tab, ``csv`` when it holds a comma, and ``txt`` otherwise."""
    content = head.removeprefix(_UTF8_BOM)
    first = content.lstrip()[:1]
    if first in (b"{", b"["):
        return "json"
    if first == b"<":
        return "xml"
    line = content.lstrip(b"\r\n").split(b"\n", 1)[0]
    if b"\t" in line:
        return "tsv"
    if b"," in line:
        return "csv"
    return "txt"
