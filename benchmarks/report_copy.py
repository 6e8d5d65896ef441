"""Copying a gzip report from a pre-signed URL into S3: the streaming copy (shared/amazon/transfer.py) against what
a plain user writes (``requests.get(url)``, the whole body in memory, then ``s3.upload_fileobj``), in the same run;
and the Ads service's own download task end to end, on the same file.

The local cloud runs in this process; its sandbox serves each report from a generator (a gzip JSON array in the
Ads report's compact shape, made of a few pre-compressed blocks, so serving 1 GB costs the server almost nothing).
Every copy runs in a fresh subprocess that reaches the cloud over HTTP; its peak memory is the child's peak RSS
(``VmHWM``, reset with ``/proc/self/clear_refs`` once imports, clients and a first S3 call are done) less its RSS at
that point.

The Ads task (``ads-task``) is the production path for one report: the child imports
``services/ads_reporting/app.py`` with the ``report_download`` function's environment (stage ``local``, as the local
cloud gives it) and calls that Lambda handler, i.e. ``Reports.download``: it reads the job record from DynamoDB, asks
the Ads sandbox for the report (LWA token, ``GET /reporting/reports/{id}``) and its fresh URL, streams the file with
``copy_to_s3`` under the key the data lake expects with the request as metadata, and records the S3 URI. The parent
prepares what the state machine's earlier tasks would have left: a COMPLETED sandbox report and the job record with
its ``reportId`` (no state machine runs, so nothing else downloads it). The sandbox's report file is then replaced by
the benchmark's report, so every method copies the same bytes (the sandbox's own generator, ``bytes_per_report``,
renders and compresses the rows as it serves them, about 60 MB/s uncompressed on one core here: it would time the
sandbox, not the copy). The child counts as a warm Lambda container: before the baseline it has also read the record
(DynamoDB) and holds an access token (Secrets Manager, LWA), as an earlier invocation would leave it.

The emulator is the slow end (moto's S3 on the same two cores) and its speed varies from run to run, so each copy
is repeated (``--runs``, interleaved across methods) and the table shows the median time and the highest peak.

Usage: python benchmarks/report_copy.py [--sizes-mb 100 1000] [--runs 3] [--concurrency N] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import statistics
import sys
import time
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import machine, reset_peak, run_child, span, status_kb  # noqa: E402  (after the path)

ADS_SERVICE = "ads_reporting"
ADS_APP = ROOT / "services" / ADS_SERVICE
ADS_FUNCTION = "report_download"  # the state machine's download task
ADS_COLUMNS = ["date", "campaignId", "campaignName", "adGroupId", "impressions", "clicks", "cost", "purchases14d",
               "sales14d"]  # what the benchmark's report rows hold

MB = 1_000_000
BLOCK_ROWS = 5_000  # about 1.2 MB of JSON per block
POOL = 24  # distinct blocks; the report cycles through them

METHODS = {
    "stream": ("streaming copy (`copy_to_s3`)", False),
    "plain": ("`requests.get` + `upload_fileobj`", False),
    "ads-task": ("the Ads service's download task (`Reports.download`, streaming)", False),
    "stream-gunzip": ("streaming copy (`copy_to_s3`, `decompress=True`)", True),
    "plain-gunzip": ("`requests.get` + `gzip.decompress` + `upload_fileobj`", True),
}


# -- the report, served by the sandbox ---------------------------------------------------------------------------

def _rows(rng: random.Random, count: int) -> bytes:
    """Report rows: 400 campaigns of 5 ad groups each, random metrics (compresses about as Ads reports do)."""
    rows = []
    kinds = ("Sponsored Products", "Auto", "Exact", "Broad", "Phrase")
    for _ in range(count):
        campaign, group = rng.randint(1, 400), rng.randint(1, 5)
        impressions = rng.randint(0, 200_000)
        clicks = rng.randint(0, max(1, impressions // 50))
        cost, purchases, sales = clicks * rng.random() * 2, rng.randint(0, clicks), rng.random() * 500
        rows.append(
            f'{{"date":"2024-05-{rng.randint(1, 31):02d}","campaignId":"{283_000_000_000_000 + campaign * 7919}",'
            f'"campaignName":"Brand {campaign} - {kinds[campaign % 5]}, \\"Q{group}\\"",'
            f'"adGroupId":"{491_000_000_000_000 + campaign * 10 + group}","impressions":{impressions},'
            f'"clicks":{clicks},"cost":{cost:.2f},"purchases14d":{purchases},"sales14d":{sales:.2f}}}')
    return ",".join(rows).encode()


def _deflate(data: bytes, last: bool = False) -> bytes:
    """Raw deflate of ``data`` on its own (no back-references out of it), so blocks concatenate."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_FINISH if last else zlib.Z_FULL_FLUSH)


class Report:
    """A gzip JSON array of about ``size`` bytes uncompressed: ``[`` block ``,`` block ... ``]`` as one gzip
    member, from POOL distinct pre-compressed blocks. Its CRC-32 is computed as it streams."""

    def __init__(self, size: int) -> None:
        rng = random.Random(42)
        self.blocks = [_rows(rng, BLOCK_ROWS) for _ in range(POOL)]
        self.first = (b"[" + self.blocks[0], _deflate(b"[" + self.blocks[0]))
        self.pool = [(b"," + block, _deflate(b"," + block)) for block in self.blocks]
        self.last = (b"]", _deflate(b"]", last=True))
        self.count = max(0, round((size - len(self.first[0]) - 1) / len(self.pool[0][0])))
        self.size = len(self.first[0]) + sum(len(self.pool[i % POOL][0]) for i in range(self.count)) + 1
        self.compressed = 10 + len(self.first[1]) + sum(len(self.pool[i % POOL][1]) for i in range(self.count)) \
            + len(self.last[1]) + 8

    def pieces(self) -> Iterator[tuple[bytes, bytes]]:
        yield self.first
        for i in range(self.count):
            yield self.pool[i % POOL]
        yield self.last

    def chunks(self) -> Iterator[bytes]:
        yield b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # gzip header: deflate, no name, no mtime
        crc = 0
        for plain, deflated in self.pieces():
            crc = zlib.crc32(plain, crc)
            yield deflated
        yield crc.to_bytes(4, "little") + (self.size % 2**32).to_bytes(4, "little")


# -- one copy, in a fresh process --------------------------------------------------------------------------------

def child(method: str, url: str, bucket: str, key: str, concurrency: str) -> None:
    import gzip
    import io

    import requests

    from shared import aws
    from shared.amazon.transfer import copy_to_s3

    s3 = aws.client("s3")
    session = requests.Session()
    s3.head_bucket(Bucket=bucket)  # botocore loads its S3 model and endpoint rules on the first call
    baseline_kb = reset_peak()
    started = time.perf_counter()
    if method.startswith("stream"):
        copy_to_s3(url, s3, bucket, key, session=session, decompress=method.endswith("gunzip"),
                   concurrency=int(concurrency))
    else:
        body = requests.get(url, timeout=(5, 60)).content
        if method.endswith("gunzip"):
            body = gzip.decompress(body)
        s3.upload_fileobj(io.BytesIO(body), bucket, key)
    seconds = time.perf_counter() - started
    peak_kb = status_kb("VmHWM")
    print(json.dumps({"seconds": seconds, "baseline_mb": baseline_kb / 1024,
                      "peak_mb": (peak_kb - baseline_kb) / 1024}))


def child_task(state_json: str, bucket: str, function_json: str) -> None:
    """The Ads service's download task as Lambda runs it: the app module imported, its handler called with the
    state the poll task hands on, and a Lambda context with the function's timeout."""
    sys.path.insert(0, str(ADS_APP))  # the service's own directory first, as in its deployment package
    import app  # the service's Lambda module: Reports("ads_reporting", AdsSource()) and its handlers
    from chalice.local import LambdaContext

    from shared import aws
    from shared.amazon import accounts

    state, function = json.loads(state_json), json.loads(function_json)
    aws.client("s3").head_bucket(Bucket=bucket)  # as the other methods: S3's model and endpoint rules loaded
    record = app.reports.records.job(ADS_SERVICE, state["requestId"])  # a warm container: DynamoDB loaded...
    accounts.tokens(json.loads(record["request"]).get("authId")).access_token()  # ...and a token held
    baseline_kb = reset_peak()
    context = LambdaContext(function["name"], function["memory_mb"], max_runtime_ms=function["timeout_s"] * 1000)
    started = time.perf_counter()
    result = app.report_download(state, context)
    seconds = time.perf_counter() - started
    peak_kb = status_kb("VmHWM")
    print(json.dumps({"seconds": seconds, "baseline_mb": baseline_kb / 1024, "peak_mb": (peak_kb - baseline_kb) / 1024,
                      "s3Uri": result["s3Uri"], "size": result["size"], "outcome": result["outcome"]}))


def run_copy(cloud: Any, method: str, url: str, bucket: str, key: str, concurrency: int) -> dict[str, Any]:
    return _run_child(cloud, method, ["child", method, url, bucket, key, str(concurrency)])


def _run_child(cloud: Any, method: str, arguments: list[str], environment: Mapping[str, str] | None = None
               ) -> dict[str, Any]:
    """Run this script's ``arguments`` in a fresh interpreter against the cloud over HTTP (``environment``: a
    function's variables on top); its result is the last line it prints."""
    env = {**os.environ, **(environment or {}), "AWS_ENDPOINT_URL": cloud.aws_endpoint_url,
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    return run_child(__file__, method, arguments, env)


class AdsJobs:
    """Report jobs for the Ads service's download task, left as the report state machine's ``create`` and ``poll``
    tasks leave them: a COMPLETED sandbox report, serving the benchmark's file, and the job record naming it. No
    state machine is started, so the benchmark's child is the only one to download it."""

    def __init__(self, cloud: Any) -> None:
        from local.environ import function_environment
        from shared.reports import Reports

        self.cloud, self.ads = cloud, cloud.sandbox.ads
        self.function = cloud.apps[ADS_SERVICE].function(ADS_FUNCTION)
        module = f"amci_local_apps.{ADS_SERVICE}"  # where local/apps.py keeps the service's modules
        self.source = sys.modules[f"{module}.app"].reports.source  # the service's AdsSource
        self.contract = sys.modules[f"{module}.chalicelib.contracts"].AdsReportRequest
        self.profile = self.ads.add_profile("na")
        self.ads.timings.pending_s = self.ads.timings.processing_s = 0  # COMPLETED when first read
        with function_environment(self.function.environment):
            self.records = Reports(ADS_SERVICE, self.source).records

    def job(self, report: Report, request_id: str) -> dict[str, Any]:
        """A job whose report is ``report``; returns the state the download task is called with."""
        from local.sandbox.ads.state import COMPLETED, REPORT_CONTENT_TYPE
        from local.sandbox.files import StoredFile

        end = datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=1)
        raw = {"profileId": str(self.profile.profile_id), "region": "North America", "requestBody": {
            "name": request_id, "startDate": str(end - datetime.timedelta(days=6)), "endDate": str(end),
            "configuration": {"adProduct": "SPONSORED_PRODUCTS", "groupBy": ["campaign", "adGroup"],
                              "columns": ADS_COLUMNS, "reportTypeId": "spCampaigns", "timeUnit": "DAILY",
                              "format": "GZIP_JSON"}}}
        contract = self.contract.model_validate(raw)
        request = contract.resolved(datetime.datetime.now(datetime.UTC))  # as Reports.request stores it
        # create: the sandbox's report (Reports.create asks for it over HTTP; the state is the same)
        made = self.ads.state.create_report(self.profile, request["requestBody"], lambda: None)
        made = self.ads.state.get_report(self.profile, made.report_id)  # poll: COMPLETED, its file published
        assert made.status == COMPLETED and made.file_name, made
        self.cloud.sandbox.files.put(made.file_name, StoredFile(report.chunks, REPORT_CONTENT_TYPE, None,
                                                                report.compressed))
        made.file_size = report.compressed
        # the record, as Reports.submit, create and poll write it
        described = self.source.describe(request)
        self.records.add_job(ADS_SERVICE, request_id, request=json.dumps(request), fingerprint=contract.fingerprint(),
                             tableName=described.table, reportType=described.report_type,
                             startDate=described.start.isoformat(), endDate=described.end.isoformat())
        self.records.update_job(ADS_SERVICE, request_id, reportId=made.report_id, reportStatus=COMPLETED)
        return {"service": ADS_SERVICE, "requestId": request_id, "reportId": made.report_id, "pollSeconds": 5,
                "deadline": int(time.time()) + 3600, "terminal": False, "status": COMPLETED, "ready": True,
                "lastError": None, "message": None, "outcome": "SUCCEEDED", "details": {}}

    def run(self, state: dict[str, Any], bucket: str) -> dict[str, Any]:
        function = {"name": self.function.name, "memory_mb": self.function.memory_mb,
                    "timeout_s": self.function.timeout_s}
        return _run_child(self.cloud, "ads-task", ["child-task", json.dumps(state), bucket, json.dumps(function)],
                          self.function.environment)

    def check(self, result: Mapping[str, Any], state: Mapping[str, Any], s3: Any, bucket: str,
              report: Report) -> None:
        """The object is where the record says, named by the data lake's contract, with the request as metadata."""
        assert result["outcome"] == "SUCCEEDED" and result["size"] == report.compressed, result
        record = self.records.job(ADS_SERVICE, state["requestId"])
        assert record["s3Uri"] == result["s3Uri"], (record, result)
        found_bucket, key = result["s3Uri"].removeprefix("s3://").split("/", 1)
        assert found_bucket == bucket and key.startswith(f"adtech/ads_report/{record['tableName']}/report_date="), key
        assert key.endswith(f"/report-{state['reportId']}.json.gz"), key
        metadata = s3.head_object(Bucket=bucket, Key=key)["Metadata"]
        assert metadata["request-id"] == state["requestId"] and metadata["report-id"] == state["reportId"], metadata
        check_and_delete(s3, bucket, key, report.compressed, False)


def check_and_delete(s3: Any, bucket: str, key: str, expected_size: int, gunzipped: bool) -> None:
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == expected_size, (key, head["ContentLength"], expected_size)
    if gunzipped:
        first = s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-8")["Body"].read()
        last = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={expected_size - 2}-")["Body"].read()
        assert (first, last) == (b'[{"date":', b"}]"), (first, last)
    s3.delete_object(Bucket=bucket, Key=key, VersionId=head["VersionId"])  # frees the emulator's copy


# -- the table ---------------------------------------------------------------------------------------------------

def main() -> None:
    from shared.amazon.transfer import DEFAULT_PART_SIZE, copy_to_s3

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[100, 1000], help="uncompressed report sizes")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--runs", type=int, default=3, help="copies per size and method (median time, max peak)")
    parser.add_argument("--concurrency", type=int, default=copy_to_s3.__kwdefaults__["concurrency"],
                        help="parts the streaming copy uploads at once")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "report_copy.md")
    args = parser.parse_args()

    from local.cloud import LocalCloud
    from local.sandbox.files import StoredFile
    from shared import aws

    rows, baselines, task_baselines = [], [], []
    started = time.perf_counter()
    with LocalCloud(port=0) as cloud:
        s3, bucket = aws.client("s3"), cloud.outputs["ReportsBucket"]
        jobs = AdsJobs(cloud) if "ads-task" in args.methods else None
        for size_mb in args.sizes_mb:
            report = Report(size_mb * MB)
            name = f"report-{size_mb}mb.json.gz"
            cloud.sandbox.files.put(name, StoredFile(report.chunks, "application/x-gzip", None, report.compressed))
            results: dict[str, list[dict[str, Any]]] = {method: [] for method in args.methods}
            for run in range(args.runs):
                for method in args.methods:
                    if method == "ads-task":
                        assert jobs is not None
                        state = jobs.job(report, f"benchmark-{size_mb}mb-{run + 1}")
                        results[method].append(jobs.run(state, bucket))
                        jobs.check(results[method][-1], state, s3, bucket, report)
                        continue
                    key = f"benchmark/{name}-{method}"
                    url = cloud.sandbox.files.url(name, 3600)
                    results[method].append(run_copy(cloud, method, url, bucket, key, args.concurrency))
                    check_and_delete(s3, bucket, key, report.size if METHODS[method][1] else report.compressed,
                                     METHODS[method][1])
            for method, runs in results.items():
                title, gunzipped = METHODS[method]
                seconds = statistics.median(r["seconds"] for r in runs)
                (task_baselines if method == "ads-task" else baselines).extend(r["baseline_mb"] for r in runs)
                rows.append(f"| {report.size / MB:,.0f} MB ({report.compressed / MB:,.0f} MB gz) | {title} | "
                            f"{'JSON' if gunzipped else 'gzip'} | {seconds:.1f} | {report.size / MB / seconds:.0f} | "
                            f"{report.compressed / MB / seconds:.0f} | {max(r['peak_mb'] for r in runs):.0f} |")
                each = ", ".join(f"{r['seconds']:.1f}" for r in runs)
                print(rows[-1], f"(seconds: {each})", flush=True)

    table = "\n".join([
        "| report (uncompressed) | method | stored as | seconds | MB/s uncompressed | MB/s gz "
        "| peak MB over baseline |",
        "|---|---|---|---:|---:|---:|---:|", *rows])
    default_concurrency = copy_to_s3.__kwdefaults__["concurrency"]
    task = "" if jobs is None else (
        " The Ads task is the `report_download` Lambda handler of `services/ads_reporting/app.py`, imported in the "
        "child with the function's environment and called with the state the poll task hands on: it reads the job "
        "record (DynamoDB), gets the report's fresh URL from the Ads sandbox (whose file for it is the benchmark's, "
        f"so every method copies the same bytes) and streams it with `copy_to_s3` (its defaults: "
        f"{default_concurrency} parts uploading) to "
        "`adtech/ads_report/<table>/report_date=<date>/report-<reportId>.json.gz` with the request as metadata, "
        "then records the S3 URI; the parent leaves the COMPLETED report and the job record as the state machine's "
        "earlier tasks would, and starts no state machine. Its child is a warm container: its baseline, after "
        "importing the app, a first S3 call, a read of the record and an access token, is "
        f"{span(task_baselines)} MB.")
    note = (f"Machine: {machine()}. Streaming copy: {DEFAULT_PART_SIZE // 2**20} MiB parts, {args.concurrency} "
            "uploading while the next is read. Each copy runs in a fresh process against the local cloud in the "
            "benchmark's process (moto's S3 and the sandbox over loopback HTTP, on the same cores); median of "
            f"{args.runs} runs, interleaved; whole benchmark {time.perf_counter() - started:.0f} s. Peak memory is "
            "the child's highest peak RSS during the copy (`VmHWM`, reset when the copy starts) less its RSS after "
            f"imports, clients and a first S3 call ({span(baselines)} MB).{task} The streaming "
            f"copy holds at most {args.concurrency + 2} parts at once, whatever the size; a file of fewer parts "
            "(such as a small report kept compressed) holds less.")
    args.out.write_text(f"<!-- written by benchmarks/report_copy.py -->\n{table}\n\n{note}\n")
    print(f"\n{note}\nwritten to {args.out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(*sys.argv[2:7])
    elif len(sys.argv) > 1 and sys.argv[1] == "child-task":
        child_task(*sys.argv[2:5])
    else:
        main()
