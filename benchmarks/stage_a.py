"""Stage A: an Amazon Ads report (a gzip JSON array) to the data lake's pre-stage NDJSON by the lake's streaming
transform (``stage_a.ads_json``: gunzip in bounded steps, ijson item by item), compared in the same run with what a
user would write first (``json.loads(gzip.decompress(...))``, then a line per row), at 100 MB and 1 GB.

The report is the copy benchmark's (``benchmarks/report_copy.py``: Ads rows of 400 campaigns, deterministic), written
once to ``--data-dir``. Each transform runs in a fresh process on the file in the page cache and writes its NDJSON to
/dev/null; its time covers the transform alone, its peak memory is the child's peak RSS during it (``VmHWM``, reset
once the imports are done) less its RSS at that point. Runs are interleaved; the table shows the median time and the
highest peak.

Usage: python benchmarks/stage_a.py [--sizes-mb 100 1000] [--runs 3] [--data-dir DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import machine, reset_peak, run_child, span, status_kb  # noqa: E402  (after the path)
from benchmarks.report_copy import MB, Report  # noqa: E402

KEY = "adtech/ads_report/campaigns/report_date=2026-11-26/report-benchmark.json.gz"  # as the reports bucket names it
METHODS = {
    "ours": "stage A: `ads_json` (gunzip in steps, ijson item by item, NDJSON out)",
    "naive": "`json.loads(gzip.decompress(body))`, then a line per row",
}


def report_file(data_dir: Path, size_mb: int) -> tuple[Path, int]:
    """The gzip report of about ``size_mb`` MB uncompressed and that size, written once."""
    report = Report(size_mb * MB)
    path = data_dir / f"ads-{size_mb}mb.json.gz"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        with partial.open("wb") as out:
            for chunk in report.chunks():
                out.write(chunk)
        partial.replace(path)
    return path, report.size


def child(method: str, path: str) -> None:
    stage_a: Any = None
    if method == "ours":
        sys.path.insert(0, str(ROOT / "services" / "datalake"))
        from chalicelib import stage_a
    baseline_kb = reset_peak()
    started, rows = time.perf_counter(), 0
    with open(path, "rb") as body, open("/dev/null", "wb") as sink:
        if method == "ours":
            source = stage_a.Source("reports", KEY, "v1", None, datetime.now(UTC), Path(path).stat().st_size)
            for staged in stage_a.ads_json(body, source):
                for chunk in staged.chunks:
                    rows += chunk.count(b"\n")
                    sink.write(chunk)
        else:
            for row in json.loads(gzip.decompress(body.read())):
                sink.write(json.dumps(row, separators=(",", ":")).encode() + b"\n")
                rows += 1
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "rows": rows, "baseline_mb": baseline_kb / 1024,
                      "peak_mb": (status_kb("VmHWM") - baseline_kb) / 1024}))


def run(method: str, path: Path) -> dict[str, Any]:
    return run_child(__file__, method, ["child", method, str(path)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[100, 1000], help="uncompressed report sizes")
    parser.add_argument("--runs", type=int, default=3, help="transforms per size and method (median time, max peak)")
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "amci-benchmarks" / "stage_a")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "stage_a.md")
    args = parser.parse_args()
    began, rows, peaks, baselines = time.perf_counter(), [], {}, []
    for size_mb in args.sizes_mb:
        path, size = report_file(args.data_dir, size_mb)
        runs: dict[str, list[dict[str, Any]]] = {method: [] for method in METHODS}
        for _ in range(args.runs):  # interleaved, so that a busy moment of the machine falls on every method
            for method in METHODS:
                runs[method].append(run(method, path))
        counted = {r["rows"] for method in METHODS for r in runs[method]}
        if len(counted) != 1:
            raise SystemExit(f"{size_mb} MB: the methods wrote different row counts {sorted(counted)}")
        label = f"{size / MB:,.0f} MB ({path.stat().st_size / MB:,.0f} MB gz, {counted.pop():,} rows)"
        for method, done in runs.items():
            seconds = statistics.median(r["seconds"] for r in done)
            peak = max(r["peak_mb"] for r in done)
            peaks.setdefault(method, []).append(f"{size / MB:,.0f} MB: {peak:.0f} MB")
            baselines += [r["baseline_mb"] for r in done]
            rows.append(f"| {label} | {METHODS[method]} | {seconds:.1f} | {size / MB / seconds:.0f} | {peak:.0f} |")
            print(rows[-1], flush=True)
    table = "\n".join(["| report (uncompressed) | method | seconds | MB/s | peak MB over baseline |",
                       "|---|---|---:|---:|---:|", *rows])
    args.out.write_text(f"""<!-- written by benchmarks/stage_a.py -->
# Stage A: an Ads report to pre-stage NDJSON

{table}

Machine: {machine()}. Median of {args.runs} runs, interleaved; whole benchmark {time.perf_counter() - began:.0f} s.
Peak memory by report size: {"; ".join(f"{METHODS[m].split(':')[0]}: {', '.join(p)}" for m, p in peaks.items())}.
Each transform runs in a fresh process on the file in the page cache and writes to /dev/null; *peak MB over
baseline* is its highest peak RSS during the transform (`VmHWM`, reset when it starts) less its RSS after imports
({span(baselines)} MB).
""")
    print(f"written to {args.out}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child(*sys.argv[2:])
    else:
        main()
