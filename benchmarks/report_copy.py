"""Copying a gzip report from a pre-signed URL into S3: the streaming copy (shared/amazon/transfer.py) against what
a plain user writes (``requests.get(url)``, the whole body in memory, then ``s3.upload_fileobj``), in the same run.

The local cloud runs in this process; its sandbox serves each report from a generator (a gzip JSON array in the
Ads report's compact shape, made of a few pre-compressed blocks, so serving 1 GB costs the server almost nothing).
Every copy runs in a fresh subprocess that reaches the cloud over HTTP; its peak memory is the child's peak RSS
(``VmHWM``, reset with ``/proc/self/clear_refs`` once imports, clients and a first S3 call are done) less its RSS at
that point.

The emulator is the slow end (moto's S3 on the same two cores) and its speed varies from run to run, so each copy
is repeated (``--runs``, interleaved across methods) and the table shows the median time and the highest peak.

Usage: python benchmarks/report_copy.py [--sizes-mb 100 1000] [--runs 3] [--concurrency N] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MB = 1_000_000
BLOCK_ROWS = 5_000  # about 1.2 MB of JSON per block
POOL = 24  # distinct blocks; the report cycles through them

METHODS = {
    "stream": ("streaming copy (`copy_to_s3`)", False),
    "plain": ("`requests.get` + `upload_fileobj`", False),
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
    baseline_kb = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the peak RSS starts again from here
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
    peak_kb = _status_kb("VmHWM")
    print(json.dumps({"seconds": seconds, "baseline_mb": baseline_kb / 1024,
                      "peak_mb": (peak_kb - baseline_kb) / 1024}))


def _status_kb(field: str) -> int:
    """A figure of /proc/self/status: VmHWM is the peak RSS of this process's own address space.
    (``ru_maxrss`` would not do: Linux carries the parent's peak into a child across fork and exec.)"""
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field))
    return int(line.split()[1])


def run_copy(cloud: Any, method: str, url: str, bucket: str, key: str, concurrency: int) -> dict[str, float]:
    env = {**os.environ, "AWS_ENDPOINT_URL": cloud.aws_endpoint_url, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    command = [sys.executable, __file__, "child", method, url, bucket, key, str(concurrency)]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{method} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_and_delete(s3: Any, bucket: str, key: str, expected_size: int, gunzipped: bool) -> None:
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == expected_size, (key, head["ContentLength"], expected_size)
    if gunzipped:
        first = s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-8")["Body"].read()
        last = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={expected_size - 2}-")["Body"].read()
        assert (first, last) == (b'[{"date":', b"}]"), (first, last)
    s3.delete_object(Bucket=bucket, Key=key, VersionId=head["VersionId"])  # frees the emulator's copy


# -- the table ---------------------------------------------------------------------------------------------------

def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} CPUs ({model}), {memory_gb:.0f} GiB RAM, Python {platform.python_version()}, "
            f"{datetime.date.today().isoformat()}")


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

    rows, baselines = [], []
    started = time.perf_counter()
    with LocalCloud(port=0) as cloud:
        s3, bucket = aws.client("s3"), cloud.outputs["ReportsBucket"]
        for size_mb in args.sizes_mb:
            report = Report(size_mb * MB)
            name = f"report-{size_mb}mb.json.gz"
            cloud.sandbox.files.put(name, StoredFile(report.chunks, "application/x-gzip", None, report.compressed))
            results: dict[str, list[dict[str, float]]] = {method: [] for method in args.methods}
            for _ in range(args.runs):
                for method in args.methods:
                    key = f"benchmark/{name}-{method}"
                    url = cloud.sandbox.files.url(name, 3600)
                    results[method].append(run_copy(cloud, method, url, bucket, key, args.concurrency))
                    check_and_delete(s3, bucket, key, report.size if METHODS[method][1] else report.compressed,
                                     METHODS[method][1])
            for method, runs in results.items():
                title, gunzipped = METHODS[method]
                seconds = statistics.median(r["seconds"] for r in runs)
                baselines += [r["baseline_mb"] for r in runs]
                rows.append(f"| {report.size / MB:,.0f} MB ({report.compressed / MB:,.0f} MB gz) | {title} | "
                            f"{'JSON' if gunzipped else 'gzip'} | {seconds:.1f} | {report.size / MB / seconds:.0f} | "
                            f"{report.compressed / MB / seconds:.0f} | {max(r['peak_mb'] for r in runs):.0f} |")
                each = ", ".join(f"{r['seconds']:.1f}" for r in runs)
                print(rows[-1], f"(seconds: {each})", flush=True)

    table = "\n".join([
        "| report (uncompressed) | method | stored as | seconds | MB/s uncompressed | MB/s gz "
        "| peak MB over baseline |",
        "|---|---|---|---:|---:|---:|---:|", *rows])
    note = (f"Machine: {machine()}. Streaming copy: {DEFAULT_PART_SIZE // 2**20} MiB parts, {args.concurrency} "
            "uploading while the next is read. Each copy runs in a fresh process against the local cloud in the "
            "benchmark's process (moto's S3 and the sandbox over loopback HTTP, on the same cores); median of "
            f"{args.runs} runs, interleaved; whole benchmark {time.perf_counter() - started:.0f} s. Peak memory is "
            "the child's highest peak RSS during the copy (`VmHWM`, reset when the copy starts) less its RSS after "
            f"imports, clients and a first S3 call ({min(baselines):.0f}-{max(baselines):.0f} MB). The streaming "
            f"copy holds at most {args.concurrency + 2} parts at once, whatever the size; a file of fewer parts "
            "(such as a small report kept compressed) holds less.")
    args.out.write_text(f"<!-- written by benchmarks/report_copy.py -->\n{table}\n\n{note}\n")
    print(f"\n{note}\nwritten to {args.out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(*sys.argv[2:7])
    else:
        main()
