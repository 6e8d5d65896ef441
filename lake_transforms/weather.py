"""An example custom dataset: daily weather readings dropped into the raw bucket as
``<team>/weather/<station>/<YYYY-MM-DD>.csv`` with a header ``time,temperature_f,rain_mm``.

Its stage A keeps the rows as CSV, adds the station and converts Fahrenheit to Celsius, line by line (bounded
memory), and partitions by station and day; stage B types and catalogues them like any other dataset, then its own
stage B adds a ``frost`` flag to each typed batch. Register it with ``{"requestType": "registerDataset", "team":
"<team>", "dataset": "weather", "stageA": "lake_transforms.weather:stage_a", "stageB":
"lake_transforms.weather:stage_b"}`` on the data lake's request queue.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import IO, Any

HEADER = ["time", "temperature_f", "rain_mm"]


def stage_a(body: IO[bytes], source: Any) -> Iterator[dict[str, Any]]:
    """One pre-stage file (the data lake's ``PreStaged`` fields); a ValueError quarantines the object."""
    parts = source.key.split("/")
    if len(parts) != 4 or not parts[3].endswith(".csv"):
        raise ValueError("expected <team>/weather/<station>/<YYYY-MM-DD>.csv")
    station, day = parts[2], parts[3][:-4]
    yield {"table": "readings", "partition": {"station": station, "day": day}, "name": day, "file_format": "csv",
           "chunks": _rows(body, station), "metadata": {"station": station}}


def stage_b(batch: Any, context: dict[str, Any]) -> Any:
    """Each typed batch (a ``pyarrow.RecordBatch``) with ``frost``: true at or below 0 °C, null when unknown."""
    import pyarrow.compute as pc  # here: stage B runs where pyarrow is (Glue); the app's functions only import this

    return batch.append_column("frost", pc.less_equal(batch.column("temperature_c"), 0.0))


def _rows(body: IO[bytes], station: str) -> Iterator[bytes]:
    lines = io.TextIOWrapper(body, encoding="utf-8", newline="")
    reader = csv.reader(lines)
    if next(reader, None) != HEADER:
        raise ValueError(f"expected the header {','.join(HEADER)}")
    yield b"station,time,temperature_c,rain_mm\n"
    for time, fahrenheit, rain in reader:
        celsius = f"{(float(fahrenheit) - 32) * 5 / 9:.1f}" if fahrenheit else ""
        yield f"{station},{time},{celsius},{rain}\n".encode()
