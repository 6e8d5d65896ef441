"""Stage B: an AMC-like CSV to Parquet with the data lake's converter (services/datalake/glue/convert.py), compared in
the same run with plain pyarrow (``pyarrow.csv.read_csv`` + ``pyarrow.parquet.write_table``) and with pandas
(``pandas.read_csv`` + ``DataFrame.to_parquet``), at 100 MB and 1 GB.

The CSV is generated deterministically and cached (``--data-dir``). Its 13 columns are modelled on AMC query results
(perf.md §2):
* ``advertiser``, ``campaign`` (a quarter of the names quoted because they hold commas, 3 % holding doubled quotes,
  2 % non-ASCII, 0.5 % empty), ``campaign_id`` (15 digits), ``ad_product_type``, ``event_date``;
* ``impressions``, ``clicks``, ``total_cost``, ``purchases`` (1 % empty), ``total_sales`` (2 % empty),
  ``conversion_rate`` (empty when clicks is 0), ``sales_amount_pct``;
* ``filtered`` (3 % true).

Rows are built in 128 blocks of 8 192 rows from ``random.Random(seed, block)``, and the file cycles through them, so
the 100 MB file is a prefix of the 1 GB one, and no row group of the output repeats itself.

Every conversion runs in a fresh subprocess. Its wall time and CPU time are measured around the conversion alone. Its
peak memory is the child's peak RSS during the conversion (``VmHWM``, reset with ``/proc/self/clear_refs`` once the
imports are done) less its RSS at that point. Runs are interleaved across methods; the table shows the median time and
the highest peak. pandas is not a dependency of the project: if it is missing, the benchmark installs it into this
interpreter's environment with pip (and says so).

Usage: python benchmarks/stage_b.py [--sizes-mb 100 1000] [--runs 3] [--methods ours pyarrow pandas]
                                    [--data-dir DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONVERT = ROOT / "services" / "datalake" / "glue" / "convert.py"
sys.path.insert(0, str(ROOT))  # convert.py's shared.lake, and the measures below

from benchmarks.measure import machine, reset_peak, run_child, span, status_kb  # noqa: E402  (after the path)

MB = 1_000_000
SEED = 20240101
BLOCK_ROWS = 8192
POOL = 128  # distinct blocks (about 130 MB); the file cycles through them
HEADER = ("advertiser,campaign,campaign_id,ad_product_type,event_date,impressions,clicks,total_cost,purchases,"
          "total_sales,conversion_rate,sales_amount_pct,filtered\n")

METHODS = {
    "ours": "stage B: `convert(open(path, 'rb'), 'csv', out)` (streaming, typed, filtered rows dropped)",
    "pyarrow": "plain pyarrow: `pyarrow.csv.read_csv` + `pyarrow.parquet.write_table` (in memory)",
    "pandas": "pandas: `pandas.read_csv` + `DataFrame.to_parquet` (in memory)",
}


# -- the CSV -------------------------------------------------------------------------------------------------------

_WORDS = ("Brand", "Summer", "Sale", "Kids", "Home", "Garden", "Sports", "Shoes", "Coffee", "Tea", "Books", "Toys",
          "Audio", "Video", "Prime", "Day", "Deals", "Always", "On", "Retarget", "Launch", "Q4")
_PRODUCTS = ("SPONSORED_PRODUCTS", "SPONSORED_BRANDS", "SPONSORED_DISPLAY", "DSP")


def _campaigns() -> list[tuple[str, str, str]]:
    """6 000 campaigns (CSV-ready name, 15-digit id, advertiser) of 40 advertisers."""
    rng = random.Random(SEED)
    advertisers = []
    for i in range(40):
        name = f"{rng.choice(_WORDS)} {rng.choice(_WORDS)} {i}"
        advertisers.append(f'"{name}, Inc."' if i % 7 == 0 else name)
    campaigns = []
    for i in range(6000):
        name = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 5))) + f" {i}"
        kind = rng.random()
        if kind < 0.25:
            name = f'"{name}, {rng.choice(_WORDS)}"'  # a comma: quoted
        elif kind < 0.28:
            name = f'"{name} ""{rng.choice(_WORDS)}"" edition"'  # doubled quotes
        elif kind < 0.30:
            name = f"{name} Café Ünïcode"
        campaigns.append((name, str(100_000_000_000_000 + rng.randrange(900_000_000_000_000)), advertisers[i % 40]))
    return campaigns


def _block(number: int, campaigns: list[tuple[str, str, str]]) -> bytes:
    rng = random.Random(SEED * 1000 + number)
    lines = []
    for _ in range(BLOCK_ROWS):
        name, campaign_id, advertiser = rng.choice(campaigns)
        name = "" if rng.random() < 0.005 else name
        impressions = int(rng.lognormvariate(6, 1.5))
        clicks = sum(1 for _ in range(min(impressions, 20)) if rng.random() < 0.05)
        cost = f"{clicks * rng.gammavariate(2, 0.6):.2f}"
        purchases = "" if rng.random() < 0.01 else str(int(clicks * rng.random() * 0.3))
        sales = "" if rng.random() < 0.02 else f"{rng.random() * 500:.2f}"
        rate = f"{rng.random() * 0.2:.6f}" if clicks else ""
        filtered = "true" if rng.random() < 0.03 else "false"
        day = datetime.date(2024, 1, 1) + datetime.timedelta(days=rng.randrange(366))
        lines.append(f"{advertiser},{name},{campaign_id},{_PRODUCTS[int(campaign_id) % 4]},{day},{impressions},"
                     f"{clicks},{cost},{purchases},{sales},{rate},{rng.random() * 100:.4f},{filtered}\n")
    return "".join(lines).encode()


def dataset(data_dir: Path, size_mb: int) -> tuple[Path, int]:
    """The CSV of about ``size_mb`` MB (whole rows) and its row count, generated once and cached."""
    path = data_dir / f"amc-{size_mb}mb.csv"
    rows_file = path.with_suffix(".rows")
    if path.exists() and rows_file.exists():
        return path, int(rows_file.read_text())
    data_dir.mkdir(parents=True, exist_ok=True)
    print(f"generating {path} ...", flush=True)
    campaigns = _campaigns()
    pool: dict[int, bytes] = {}
    size, rows, number = len(HEADER), 0, 0
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out:
        out.write(HEADER.encode())
        while size < size_mb * MB:
            key = number % POOL
            if key not in pool:
                pool[key] = _block(key, campaigns)
            block = pool[key]
            if size + len(block) > size_mb * MB:  # the last rows up to the size asked
                block = block[:block.rfind(b"\n", 0, size_mb * MB - size) + 1] or block[:block.find(b"\n") + 1]
            out.write(block)
            size, rows, number = size + len(block), rows + block.count(b"\n"), number + 1
    partial.replace(path)
    rows_file.write_text(str(rows))
    return path, rows


# -- one conversion, in a fresh process ----------------------------------------------------------------------------

def child(method: str, source: str, out: str) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    convert: Any = None
    pandas: Any = None
    if method == "ours":
        spec = importlib.util.spec_from_file_location("datalake_glue_convert", CONVERT)
        convert = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[spec.name] = convert  # type: ignore[union-attr]
        spec.loader.exec_module(convert)  # type: ignore[union-attr]
    elif method == "pandas":
        import pandas
    # pyarrow imports pandas, when installed, the first time it converts Python values (any method may): done here,
    # before the baseline, for every method; the Lambda that runs stage B has no pandas.
    pa.array([0])

    baseline_kb = reset_peak()
    cpu = _cpu()
    started = time.perf_counter()
    details: dict[str, Any] = {}
    if method == "ours":
        with open(source, "rb") as handle:
            result = convert.convert(handle, "csv", out)
        details = {"rows": result.rows_written, "filtered": result.rows_filtered, "rejected": result.rows_rejected}
    elif method == "pyarrow":
        table = pacsv.read_csv(source, convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
        pq.write_table(table, out, compression="snappy")
        details = {"rows": table.num_rows}
    else:
        frame = pandas.read_csv(source)
        frame.to_parquet(out, engine="pyarrow", compression="snappy", index=False)
        details = {"rows": len(frame), "pandas": pandas.__version__}
    seconds = time.perf_counter() - started
    cpu_seconds = _cpu() - cpu
    peak_kb = status_kb("VmHWM")
    metadata = pq.ParquetFile(out).metadata
    print(json.dumps({"seconds": seconds, "cpu": cpu_seconds, "baseline_mb": baseline_kb / 1024,
                      "peak_mb": (peak_kb - baseline_kb) / 1024, "output_bytes": os.path.getsize(out),
                      "row_groups": metadata.num_row_groups, "pyarrow": pa.__version__, **details}))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of the process
    return usage.ru_utime + usage.ru_stime


def run(method: str, source: Path, out: Path) -> dict[str, Any]:
    try:
        return run_child(__file__, method, ["child", method, str(source), str(out)])
    finally:
        out.unlink(missing_ok=True)


def ensure_pandas() -> str:
    """pandas is no dependency of the project: installed into this environment on first use."""
    if importlib.util.find_spec("pandas") is None:
        print(f"pandas is not installed: installing it into {sys.prefix} with pip", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "pandas"], check=True)
        return "installed by this run with pip"
    return "in this environment; the benchmark installs it with pip when it is missing"


# -- the table -----------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[100, 1000], help="CSV sizes")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--runs", type=int, default=3, help="conversions per size and method (median time, max peak)")
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "amci-benchmarks" / "stage_b",
                        help="where the generated CSVs are cached (and outputs written)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "stage_b.md")
    args = parser.parse_args()

    pandas_note = ensure_pandas() if "pandas" in args.methods else ""
    rows, baselines, versions, peaks = [], [], {}, {}
    started = time.perf_counter()
    for size_mb in args.sizes_mb:
        source, source_rows = dataset(args.data_dir, size_mb)
        size = source.stat().st_size
        results: dict[str, list[dict[str, Any]]] = {method: [] for method in args.methods}
        for _ in range(args.runs):
            for method in args.methods:
                results[method].append(run(method, source, args.data_dir / f"out-{method}.parquet"))
        for method, runs in results.items():
            check(method, runs, source_rows)
            seconds = statistics.median(r["seconds"] for r in runs)
            baselines.append(runs[0]["baseline_mb"])
            versions.update({key: runs[0][key] for key in ("pyarrow", "pandas") if key in runs[0]})
            last = runs[-1]
            if method == "ours":
                peaks[size_mb] = max(r["peak_mb"] for r in runs)
            written = f"{last['rows']:,}" + (f" ({last['filtered']:,} filtered out)" if "filtered" in last else "")
            rows.append(f"| {size / MB:,.0f} MB ({source_rows:,} rows) | {METHODS[method]} | {seconds:.1f} | "
                        f"{size / MB / seconds:.0f} | {statistics.median(r['cpu'] for r in runs):.1f} | "
                        f"{max(r['peak_mb'] for r in runs):.0f} | {last['output_bytes'] / MB:.1f} | "
                        f"{last['row_groups']} | {written} |")
            each = ", ".join(f"{r['seconds']:.1f} s/{r['peak_mb']:.0f} MB" for r in runs)
            print(rows[-1], f"(runs: {each})", flush=True)

    table = "\n".join([
        "| input CSV | method | seconds | MB/s | CPU s | peak MB over baseline | output MB | row groups "
        "| rows written |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|", *rows])
    installed = f", pandas {versions['pandas']} ({pandas_note})" if "pandas" in versions else ""
    flat = ", ".join(f"{size:,} MB: {peak:.0f} MB" for size, peak in peaks.items())
    note = "\n".join([
        f"Machine: {machine()}; pyarrow {versions.get('pyarrow')}{installed}. Median of {args.runs} runs, "
        f"interleaved across methods; whole benchmark {time.perf_counter() - started:.0f} s.",
        "",
        f"Stage B's peak memory by input size: {flat}.",
        "",
        "What is measured:",
        "- Each conversion runs in a fresh process, on a CSV in the page cache, and writes snappy Parquet to local "
        "disk.",
        "- *seconds* and *CPU s* (user + system, all threads) cover the conversion alone, not the interpreter's start "
        "or its imports. *MB/s* is input MB per second.",
        "- *peak MB over baseline* is the child's highest peak RSS during the conversion (`VmHWM`, reset when it "
        f"starts) less its RSS after imports ({span(baselines)} MB). The baseline includes pandas for every method: "
        "pyarrow imports it, when installed, on its first conversion of Python values, and a Lambda has none.",
        "- Stage B writes row groups of 500 000 rows and drops the rows AMC marked `filtered`. The others keep every "
        "row; pyarrow writes row groups of up to 1 Mi rows.",
        "- Stage B types columns by the AWS Solution's name rules (`campaign_id` string; `total_cost`, "
        "`conversion_rate`, `sales_amount_pct` double) and then from the first 16 MiB block. The others infer from "
        "the whole file (pandas: `purchases` float64, `event_date` text).",
    ])
    args.out.write_text(f"<!-- written by benchmarks/stage_b.py -->\n# Stage B: CSV to Parquet\n\n{table}\n\n{note}\n")
    print(f"\n{note}\nwritten to {args.out}")


def check(method: str, runs: list[dict[str, Any]], source_rows: int) -> None:
    """Every run wrote every row: stage B less the filtered ones, and it rejected none."""
    for result in runs:
        if method == "ours":
            assert result["rejected"] == 0 and result["rows"] + result["filtered"] == source_rows, result
        else:
            assert result["rows"] == source_rows, result


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(*sys.argv[2:5])
    else:
        main()
