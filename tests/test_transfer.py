"""The streaming copy from a pre-signed URL into S3 (shared/amazon/transfer.py), through the real path: files served
by the sandbox over HTTP, objects stored in the local cloud's S3."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import traceback
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests

from local.cloud import LocalCloud
from local.sandbox.files import StoredFile
from shared import aws
from shared.amazon import transfer
from shared.amazon.errors import ServerError, Unauthorized
from shared.amazon.transfer import MiB, copy_to_s3, document_format

REPORT = json.dumps([{"date": "2024-05-01", "campaignId": 100 + i, "campaignName": f"Brand, \"{i % 7}\"",
                      "impressions": i * 37 % 1000, "cost": round(i * 0.37, 2)} for i in range(2000)]).encode()


Sent = list[dict[str, str]]


@pytest.fixture
def s3(cloud: LocalCloud) -> tuple[Any, Sent]:
    """An S3 client of its own, recording the Content-MD5 of every part and object it sends, and its body's MD5."""
    client = boto3.client("s3")
    sent: Sent = []

    def record(params: dict[str, Any], **_: Any) -> None:  # the request as serialised, before it is sent
        body = params["body"]  # botocore has made it a file object
        sent.append({"md5": params["headers"].get("Content-MD5"), "body_md5": _b64md5(body.getvalue())})

    client.meta.events.register("before-call.s3.UploadPart", record)
    client.meta.events.register("before-call.s3.PutObject", record)
    return client, sent


def _b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _serve(cloud: LocalCloud, stored: StoredFile, expires_s: int = 60) -> str:
    name = f"{uuid.uuid4().hex}.json.gz"
    cloud.sandbox.files.put(name, stored)
    return cloud.sandbox.files.url(name, expires_s)


def _serve_bytes(cloud: LocalCloud, data: bytes, piece: int = 64 * 1024, content_type: str = "application/x-gzip",
                 encoding: str | None = None) -> str:
    pieces = lambda: (data[i:i + piece] for i in range(0, len(data), piece))  # noqa: E731
    return _serve(cloud, StoredFile(pieces, content_type, encoding, len(data)))


def _stored(cloud: LocalCloud, key: str) -> tuple[bytes, dict[str, Any]]:
    got = aws.client("s3").get_object(Bucket=cloud.outputs["ReportsBucket"], Key=key)
    return got["Body"].read(), got


def _key() -> str:
    return f"test-transfer/{uuid.uuid4().hex}"


def _uploads_left(cloud: LocalCloud, key: str) -> list[Any]:
    return aws.client("s3").list_multipart_uploads(Bucket=cloud.outputs["ReportsBucket"], Prefix=key).get(
        "Uploads", [])


def _no_object(cloud: LocalCloud, key: str) -> bool:
    listed = aws.client("s3").list_objects_v2(Bucket=cloud.outputs["ReportsBucket"], Prefix=key)
    return listed["KeyCount"] == 0


def test_a_gzip_report_is_kept_compressed_byte_for_byte(cloud: LocalCloud, s3: tuple[Any, Sent]) -> None:
    client, sent = s3
    compressed = gzip.compress(REPORT)
    key = _key()

    copied = copy_to_s3(_serve_bytes(cloud, compressed), client, cloud.outputs["ReportsBucket"], key,
                        session=requests.Session())

    body, got = _stored(cloud, key)
    assert body == compressed and got["ContentType"] == "application/x-gzip" and "ContentEncoding" not in got
    assert (copied.size, copied.downloaded, copied.parts, copied.decompressed) == (len(compressed),) * 2 + (1, False)
    assert copied.sha256 == hashlib.sha256(compressed).hexdigest() and copied.etag_verified
    assert copied.etag == hashlib.md5(compressed).hexdigest() == got["ETag"].strip('"')
    assert [s["md5"] for s in sent] == [s["body_md5"] for s in sent] and len(sent) == 1  # S3 checks the MD5


def test_a_gzip_report_is_decompressed_on_the_fly(cloud: LocalCloud) -> None:
    key = _key()

    copied = copy_to_s3(_serve_bytes(cloud, gzip.compress(REPORT), piece=1000), aws.client("s3"),
                        cloud.outputs["ReportsBucket"], key, session=requests.Session(), decompress=True)

    body, got = _stored(cloud, key)
    assert body == REPORT and json.loads(body)[1]["campaignName"] == 'Brand, "1"'
    assert got["ContentType"] == "binary/octet-stream"  # not the server's application/x-gzip any more
    assert copied.decompressed and copied.size == len(REPORT) and copied.downloaded < len(REPORT) / 3


def test_a_large_file_goes_in_parts_each_checked_by_its_md5(cloud: LocalCloud, s3: tuple[Any, Sent]) -> None:
    client, sent = s3
    data = b"".join(hashlib.sha512(str(i).encode()).digest() for i in range(190_000))  # 12.2 MB, incompressible
    key = _key()

    copied = copy_to_s3(_serve_bytes(cloud, data, piece=300_000), client, cloud.outputs["ReportsBucket"], key,
                        session=requests.Session(), part_size=5 * MiB)

    body, got = _stored(cloud, key)
    assert body == data and copied.size == len(data) and copied.parts == 3 == len(sent)
    assert copied.etag == got["ETag"].strip('"') and copied.etag.endswith("-3") and copied.etag_verified
    assert all(s["md5"] and s["md5"] == s["body_md5"] for s in sent)
    assert copied.version_id == got["VersionId"]  # the reports bucket is versioned
    assert not _uploads_left(cloud, key)


def test_a_compressed_report_larger_than_a_part_is_decompressed_into_parts(cloud: LocalCloud) -> None:
    rows = b",".join(b'{"campaignId":%d,"impressions":%d}' % (i, i * 7 % 1000) for i in range(400_000))
    report = b"[" + rows + b"]"  # 13.6 MB, compresses about 10:1
    key = _key()

    copied = copy_to_s3(_serve_bytes(cloud, gzip.compress(report, 1)), aws.client("s3"),
                        cloud.outputs["ReportsBucket"], key, session=requests.Session(), decompress=True,
                        part_size=5 * MiB, concurrency=1)

    assert _stored(cloud, key)[0] == report
    assert (copied.parts, copied.size, copied.sha256) == (3, len(report), hashlib.sha256(report).hexdigest())


def test_an_empty_file_is_an_empty_object(cloud: LocalCloud) -> None:
    key = _key()

    copied = copy_to_s3(_serve(cloud, StoredFile(lambda: iter(()), "text/tab-separated-values", None, 0)),
                        aws.client("s3"), cloud.outputs["ReportsBucket"], key, session=requests.Session())

    body, got = _stored(cloud, key)
    assert body == b"" and got["ContentLength"] == 0 and got["ContentType"] == "text/tab-separated-values"
    assert (copied.size, copied.parts, copied.etag) == (0, 1, hashlib.md5(b"").hexdigest())


@pytest.mark.parametrize("decompress", [False, True])
def test_content_encoding_gzip_is_kept_as_the_servers_encoding_or_removed(cloud: LocalCloud,
                                                                           decompress: bool) -> None:
    compressed = gzip.compress(REPORT)
    url = _serve_bytes(cloud, compressed, content_type="application/json", encoding="gzip")
    key = _key()

    copied = copy_to_s3(url, aws.client("s3"), cloud.outputs["ReportsBucket"], key, session=requests.Session(),
                        decompress=decompress)

    body, got = _stored(cloud, key)
    assert got["ContentType"] == "application/json" and copied.downloaded == len(compressed)
    if decompress:
        assert body == REPORT and "ContentEncoding" not in got and copied.decompressed
    else:  # the same representation the server sent: any HTTP client decodes it as it would have from the server
        assert body == compressed and got["ContentEncoding"] == "gzip" and not copied.decompressed


def test_a_plain_file_asked_to_be_decompressed_is_stored_as_it_is(cloud: LocalCloud) -> None:
    key = _key()

    copied = copy_to_s3(_serve_bytes(cloud, REPORT, content_type="application/json"), aws.client("s3"),
                        cloud.outputs["ReportsBucket"], key, session=requests.Session(), decompress=True)

    assert _stored(cloud, key)[0] == REPORT and not copied.decompressed


def _breaks_after(size: int) -> Iterator[bytes]:
    block = hashlib.sha512(b"x").digest() * 16 * 1024  # 1 MiB
    for _ in range(size // len(block)):
        yield block
    raise ConnectionResetError("the server went away")


def test_a_download_that_breaks_off_aborts_the_multipart_upload(cloud: LocalCloud,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    url = _serve(cloud, StoredFile(lambda: _breaks_after(12 * MiB), "application/x-gzip", None, 20 * MiB))
    key = _key()

    with caplog.at_level(logging.DEBUG), pytest.raises(ServerError, match="broke off after") as caught:
        copy_to_s3(url, aws.client("s3"), cloud.outputs["ReportsBucket"], key, session=requests.Session(),
                   part_size=5 * MiB, concurrency=2)

    assert not _uploads_left(cloud, key) and _no_object(cloud, key)
    assert "multipart upload aborted" in caplog.text
    signature = url.rsplit("X-Amz-Signature=", 1)[1]
    for text in (caplog.text, str(caught.value), "".join(traceback.format_exception(caught.value))):
        assert signature not in text and "/files/" not in text  # neither the URL nor its signature


def test_a_body_shorter_than_its_content_length_is_an_error(cloud: LocalCloud) -> None:
    compressed = gzip.compress(REPORT)
    url = _serve(cloud, StoredFile(lambda: iter([compressed]), "application/x-gzip", None,
                                   len(compressed) + 1000))
    key = _key()

    with pytest.raises(ServerError, match=r"broke off|announced by Content-Length"):
        copy_to_s3(url, aws.client("s3"), cloud.outputs["ReportsBucket"], key, session=requests.Session())

    assert _no_object(cloud, key) and not _uploads_left(cloud, key)


def test_a_truncated_gzip_stream_is_an_error_when_decompressing(cloud: LocalCloud) -> None:
    rows = b",".join(b'{"id":%d}' % i for i in range(1_000_000))  # 10 MB: the first part is sent before the end
    cut = gzip.compress(rows, 1)[:-5000]
    key = _key()

    with pytest.raises(ServerError, match="truncated"):
        copy_to_s3(_serve_bytes(cloud, cut), aws.client("s3"), cloud.outputs["ReportsBucket"], key,
                   session=requests.Session(), decompress=True, part_size=5 * MiB)

    assert _no_object(cloud, key) and not _uploads_left(cloud, key)


def test_an_expired_url_is_refused_with_a_typed_error(cloud: LocalCloud) -> None:
    cloud.sandbox.files.put("expired.json.gz", StoredFile(lambda: iter([b"x"]), "application/x-gzip", None, 1))
    url = cloud.sandbox.files.url("expired.json.gz", -10)
    key = _key()

    with pytest.raises(Unauthorized) as caught:
        copy_to_s3(url, aws.client("s3"), cloud.outputs["ReportsBucket"], key, session=requests.Session(),
                   api="ads")

    assert (caught.value.status, caught.value.code, caught.value.api) == (403, "AccessDenied", "ads")
    assert str(caught.value) == "ads download: Request has expired (HTTP 403)"
    assert _no_object(cloud, key)


def test_an_unreachable_server_is_a_typed_error_that_does_not_name_the_url() -> None:
    signature = uuid.uuid4().hex
    with pytest.raises(ServerError, match="request failed: ConnectionError") as caught:
        copy_to_s3(f"http://127.0.0.1:9/files/r?X-Amz-Signature={signature}", None, "b", "k",
                   session=requests.Session())

    assert signature not in "".join(traceback.format_exception(caught.value))  # nor in a chained exception


class _TamperedEtag:
    """The real S3 client, except that a completed upload answers with another ETag."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def complete_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        return {**self._s3.complete_multipart_upload(**kwargs), "ETag": '"00000000000000000000000000000000-3"'}


def test_an_etag_that_does_not_match_the_parts_deletes_the_object(cloud: LocalCloud) -> None:
    s3 = aws.client("s3")
    plain_bucket = f"amci-test-transfer-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=plain_bucket)  # no default encryption: S3's multipart ETag is the parts' MD5s
    data = bytes(range(256)) * (12 * MiB // 256)
    url = _serve_bytes(cloud, data, piece=MiB)

    with pytest.raises(transfer.StoredObjectMismatch, match="the object was deleted"):
        copy_to_s3(url, _TamperedEtag(s3), plain_bucket, "k", session=requests.Session(), part_size=5 * MiB)

    assert s3.list_objects_v2(Bucket=plain_bucket)["KeyCount"] == 0
    s3.delete_bucket(Bucket=plain_bucket)


def test_under_sse_kms_an_etag_that_is_no_md5_is_not_an_error(cloud: LocalCloud) -> None:
    data = bytes(range(256)) * (12 * MiB // 256)
    key = _key()

    copied = copy_to_s3(_serve_bytes(cloud, data, piece=MiB), _TamperedEtag(aws.client("s3")),
                        cloud.outputs["ReportsBucket"], key, session=requests.Session(), part_size=5 * MiB)

    assert not copied.etag_verified and _stored(cloud, key)[0] == data  # as AWS answers under SSE-KMS


def test_an_object_is_encrypted_with_the_kms_key_given(cloud: LocalCloud) -> None:
    key_id = aws.client("kms").create_key(Description="transfer test")["KeyMetadata"]["Arn"]
    key = _key()

    copy_to_s3(_serve_bytes(cloud, gzip.compress(REPORT)), aws.client("s3"), cloud.outputs["ReportsBucket"], key,
               session=requests.Session(), kms_key_id=key_id)

    got = _stored(cloud, key)[1]
    assert (got["ServerSideEncryption"], got["SSEKMSKeyId"]) == ("aws:kms", key_id)


def test_a_part_smaller_than_s3_allows_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 5242880"):
        copy_to_s3("http://unused", None, "b", "k", session=requests.Session(), part_size=MiB)


def test_gunzip_joins_members_skips_padding_and_bounds_each_step() -> None:
    zeros = bytes(30 * MiB)  # a member that inflates 1000:1
    data = gzip.compress(zeros) + b"\x00" * 10 + gzip.compress(b"tail")
    pieces = (data[i:i + 7] for i in range(0, len(data), 7))

    out = list(transfer._Gunzip("files").stream(pieces))

    assert b"".join(out) == zeros + b"tail" and max(map(len, out)) <= transfer.READ_SIZE


# -- user metadata and keys named from the content ----------------------------------------------------------------

METADATA = {"report-id": "1234567", "source": "sp", "report-type": "GET_MERCHANT_LISTINGS_ALL_DATA"}


def test_metadata_is_stored_on_a_single_put(cloud: LocalCloud) -> None:
    key = _key()

    copied = copy_to_s3(_serve_bytes(cloud, gzip.compress(REPORT)), aws.client("s3"), cloud.outputs["ReportsBucket"],
                        key, session=requests.Session(), metadata=METADATA)

    assert copied.parts == 1 and _stored(cloud, key)[1]["Metadata"] == METADATA


def test_metadata_is_stored_on_a_multipart_upload(cloud: LocalCloud) -> None:
    data = bytes(range(256)) * (11 * MiB // 256)
    key = _key()

    copied = copy_to_s3(_serve_bytes(cloud, data, piece=MiB), aws.client("s3"), cloud.outputs["ReportsBucket"], key,
                        session=requests.Session(), part_size=5 * MiB, metadata=METADATA)

    body, got = _stored(cloud, key)
    assert copied.parts == 3 and body == data and got["Metadata"] == METADATA


def _naming(prefix: str, heads: list[bytes]) -> Any:
    """A key function that records the heads it is given and names the object by its content."""
    def name(head: bytes) -> str:
        heads.append(head)
        return f"{prefix}.{'json' if head.lstrip()[:1] in (b'[', b'{') else 'tsv'}"

    return name


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_a_key_function_sees_the_uncompressed_head_of_a_body_stored_compressed(cloud: LocalCloud,
                                                                             encoding: str | None) -> None:
    compressed = gzip.compress(REPORT)
    heads: list[bytes] = []
    prefix = _key()

    copied = copy_to_s3(_serve_bytes(cloud, compressed, piece=1000, encoding=encoding), aws.client("s3"),
                        cloud.outputs["ReportsBucket"], _naming(prefix, heads), session=requests.Session())

    assert heads == [REPORT[:transfer.HEAD_SIZE]] and len(REPORT) > transfer.HEAD_SIZE
    assert copied.key == f"{prefix}.json" and not copied.decompressed
    assert _stored(cloud, copied.key)[0] == compressed  # stored as it came: only the head was gunzipped
    assert _no_object(cloud, f"{prefix}.tsv")


def test_a_key_function_sees_the_head_of_a_plain_body(cloud: LocalCloud) -> None:
    tsv = b"sku\tasin\tprice\n" + b"".join(b"SKU-%d\tB0%08d\t%d.99\n" % (i, i, i % 90) for i in range(100))
    heads: list[bytes] = []
    prefix = _key()

    copied = copy_to_s3(_serve_bytes(cloud, tsv, piece=100, content_type="text/tab-separated-values"),
                        aws.client("s3"), cloud.outputs["ReportsBucket"], _naming(prefix, heads),
                        session=requests.Session())

    assert heads == [tsv] and copied.key == f"{prefix}.tsv" and _stored(cloud, copied.key)[0] == tsv


def test_a_key_function_is_called_once_before_anything_is_uploaded(cloud: LocalCloud) -> None:
    rows = b",".join(b'{"campaignId":%d,"impressions":%d}' % (i, i * 7 % 1000) for i in range(400_000))
    report = b"[" + rows + b"]"  # 13.6 MB uncompressed
    prefix = _key()
    calls: list[bool] = []

    def name(head: bytes) -> str:
        calls.append(_no_object(cloud, prefix) and not _uploads_left(cloud, prefix))
        assert head == report[:transfer.HEAD_SIZE]
        return f"{prefix}/report.json"

    copied = copy_to_s3(_serve_bytes(cloud, gzip.compress(report, 1)), aws.client("s3"),
                        cloud.outputs["ReportsBucket"], name, session=requests.Session(), decompress=True,
                        part_size=5 * MiB, metadata={"format": "json"})

    body, got = _stored(cloud, f"{prefix}/report.json")
    assert calls == [True] and copied.key == f"{prefix}/report.json" and copied.parts == 3
    assert body == report and got["Metadata"] == {"format": "json"}


def test_a_key_function_that_fails_stops_the_copy(cloud: LocalCloud) -> None:
    def refuse(head: bytes) -> str:
        raise LookupError("no name for this")

    with pytest.raises(LookupError):
        copy_to_s3(_serve_bytes(cloud, REPORT), aws.client("s3"), cloud.outputs["ReportsBucket"], refuse,
                   session=requests.Session())
    with pytest.raises(ValueError, match="not a key"):
        copy_to_s3(_serve_bytes(cloud, REPORT), aws.client("s3"), cloud.outputs["ReportsBucket"], lambda head: "",
                   session=requests.Session())


def test_the_head_of_a_truncated_gzip_is_what_decompresses() -> None:
    content = b"".join(hashlib.sha256(str(i).encode()).hexdigest().encode() + b"\n" for i in range(20_000))
    compressed = gzip.compress(content)

    for cut in (10, 100, 5000, 40_000):
        head = transfer._content_head(compressed[:cut], "files")
        assert head == content[:len(head)] and len(head) <= transfer.HEAD_SIZE
    assert transfer._content_head(compressed[:5000], "files")  # something came out before the cut
    assert transfer._content_head(compressed[:40_000], "files") == content[:transfer.HEAD_SIZE]


def test_the_head_of_a_gzip_is_bounded_and_joins_members() -> None:
    bomb = gzip.compress(bytes(30 * MiB))  # inflates 1000:1
    small = gzip.compress(b"first member\n") + b"\x00" * 5 + gzip.compress(b"second member\n")

    assert transfer._content_head(bomb, "files") == bytes(transfer.HEAD_SIZE)
    assert transfer._content_head(small, "files") == b"first member\nsecond member\n"
    assert transfer._content_head(b"\x1f\x8bnot gzip at all", "files") == b""
    assert transfer._content_head(b"x" * MiB, "files") == b"x" * transfer.HEAD_SIZE


# -- document formats ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("head", "extension"), [
    (b'{"reportSpecification": {"reportType": "GET_SALES_AND_TRAFFIC_REPORT"}}', "json"),
    (b'\n  [{"campaignId": 1, "cost": 0.5}, {"campaignId": 2', "json"),  # a head cut anywhere
    (b'\xef\xbb\xbf {"salesAndTrafficByDate": []}', "json"),
    (b"\xef\xbb\xbf[]", "json"),
    (b"amazon-order-id\tmerchant-order-id\tpurchase-date\n123-1\t\t2024-05-01, 10:00\n", "tsv"),
    (b"\xef\xbb\xbfsku\tprice\n", "tsv"),
    (b"\tsecond-column\n", "tsv"),  # an empty first field
    (b'date,campaignName,cost\r\n2024-05-01,"Brand\tA",0.5\r\n', "csv"),
    (b'<?xml version="1.0" encoding="UTF-8"?>\n<AmazonEnvelope>', "xml"),
    (b"\xef\xbb\xbf\r\n<report/>", "xml"),
    (b"Report processing failed: no data for the period\nplease retry, later", "txt"),
    (b"", "txt"),
])
def test_document_format_from_the_first_bytes(head: bytes, extension: str) -> None:
    assert document_format(head) == extension
