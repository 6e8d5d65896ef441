"""The dataset registry: what the lake does with the objects of each dataset (``<team>-<dataset>``).

Three datasets are built in: ``adtech-amc`` (AMC results in each tenant's bucket), ``adtech-ads_report`` and
``adtech-sp_report`` (the reports bucket). Any other lives in the registry table (``DATALAKE_DATASETS_TABLE``),
registered with a ``registerDataset`` request, and takes its objects from the raw bucket under ``<team>/<dataset>/``.
A registered dataset names its stage A transform as a Python entry point (``package.module:function``, importable
by the function: vendored with the app), and may name a stage B transform the same way: stage B types every dataset's
files with the built-in converter (``builtin:convert``), then hands each typed batch to the dataset's own function.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from shared import aws
from shared.contracts import Request
from shared.lake import BUILTIN_STAGE_B, TRANSFORMS_PACKAGE

NAME = r"^[a-z][a-z0-9_]{1,39}$"  # team and dataset names: parts of Glue database names
ENTRY_POINT = rf"^{TRANSFORMS_PACKAGE}\.[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$"  # the vendored package only


@dataclass(frozen=True)
class Dataset:
    team: str
    name: str
    stage_a: str  # "builtin:<name>" or a Python entry point "package.module:function"
    min_items: int = 1  # stage B waits for this many files...
    max_items: int = 100  # ...takes at most this many in one run...
    max_wait_s: int = 300  # ...and runs anyway once the oldest has waited this long
    stage_b: str = BUILTIN_STAGE_B  # or an entry point "package.module:function" applied to each typed batch

    @property
    def key(self) -> str:
        return f"{self.team}-{self.name}"

    def database(self, stage: str) -> str:
        """The dataset's Glue database (AMC results go to each tenant's own)."""
        return re.sub(r"[^a-z0-9_]", "_", f"amci_{stage}_{self.team}_{self.name}")

    def to_item(self) -> dict[str, Any]:
        return {"dataset": self.key, **asdict(self)}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Dataset:
        return cls(item["team"], item["name"], item["stage_a"], int(item["min_items"]), int(item["max_items"]),
                   int(item["max_wait_s"]), item.get("stage_b", BUILTIN_STAGE_B))  # registered before stage B was


BUILTIN = {d.key: d for d in (Dataset("adtech", "amc", "builtin:amc_csv"),
                              Dataset("adtech", "ads_report", "builtin:ads_json"),
                              Dataset("adtech", "sp_report", "builtin:sp_report"))}


class RegisterDataset(Request):
    """Register (or change) a custom dataset fed through the raw bucket under ``<team>/<dataset>/``."""

    request_type = "registerDataset"
    requestType: Literal["registerDataset"]
    team: str = Field(pattern=NAME)
    dataset: str = Field(pattern=NAME)
    stageA: str = Field(pattern=ENTRY_POINT)
    stageB: str | None = Field(None, pattern=ENTRY_POINT)  # None: the built-in conversion alone
    minItems: int = Field(1, ge=1, le=1000)
    maxItems: int = Field(100, ge=1, le=1000)
    maxWaitSeconds: int = Field(300, ge=0, le=86400)

    @model_validator(mode="after")
    def _sensible(self) -> RegisterDataset:
        if self.minItems > self.maxItems:
            raise ValueError("minItems: at most maxItems")
        if f"{self.team}-{self.dataset}" in BUILTIN:
            raise ValueError(f"dataset: a name other than the built-in {self.team}-{self.dataset}")
        return self


class ListDatasets(Request):
    request_type = "listDatasets"
    requestType: Literal["listDatasets"]


def registry() -> Registry:
    """The registry of this function's stage (``DATALAKE_DATASETS_TABLE``)."""
    return Registry(aws.table(os.environ["DATALAKE_DATASETS_TABLE"]))


class Registry:
    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, key: str) -> Dataset | None:
        if key in BUILTIN:
            return BUILTIN[key]
        item = self._table.get_item(Key={"dataset": key}, ConsistentRead=True).get("Item")
        return Dataset.from_item(item) if item else None

    def put(self, dataset: Dataset) -> None:
        self._table.put_item(Item=dataset.to_item())

    def all(self) -> Iterator[Dataset]:
        yield from BUILTIN.values()
        yield from (Dataset.from_item(item) for item in aws.items(self._table.scan))
