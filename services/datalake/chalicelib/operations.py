"""The data lake's requests: register and list datasets, and redrive what a stage gave up on."""

from __future__ import annotations

import json
import os
from typing import Any, Literal

from pydantic import Field

from chalicelib.datasets import Dataset, ListDatasets, RegisterDataset, registry
from chalicelib.pipeline import PENDING
from shared import aws
from shared.contracts import ContractError, FieldError, Request
from shared.lake import BUILTIN_STAGE_B, entry_point
from shared.requests import RequestContext
from shared.requests import redrive as redrive_dead_letters
from shared.service import Service
from shared.status import PLATFORM_TENANT, Status


class Redrive(Request):
    """Send what stage ``stage`` dead-lettered back through it (at most ``limit`` messages)."""

    request_type = "redrive"
    requestType: Literal["redrive"]
    stage: Literal["a", "b"]
    limit: int = Field(1000, ge=1, le=100_000)


def register(request: RegisterDataset, ctx: RequestContext, service: Service) -> None:
    """Register after checking that the transforms import: both are vendored with the app (stage A runs here; stage
    B in the Glue job, which gets the same package)."""
    missing = [FieldError(name, "an entry point vendored with the data lake app", f"{value} ({error})")
               for name, value in (("stageA", request.stageA), ("stageB", request.stageB))
               if value and (error := _unimportable(value))]
    if missing:
        raise ContractError(request.request_type, missing)
    dataset = Dataset(request.team, request.dataset, request.stageA, request.minItems, request.maxItems,
                      request.maxWaitSeconds, request.stageB or BUILTIN_STAGE_B)
    registry().put(dataset)
    database = dataset.database(os.environ["STAGE"])
    service.answer(ctx, PLATFORM_TENANT, Status.SUCCEEDED,
                   f"dataset {dataset.key} registered: files under s3://<raw bucket>/{dataset.team}/{dataset.name}/ "
                   f"go through {dataset.stage_a} and {dataset.stage_b} into {database}",
                   {"dataset": dataset.key, "database": database})


def _unimportable(name: str) -> str | None:
    """Why the entry point ``name`` cannot be loaded, or None when it can."""
    try:
        entry_point(name)
    except (ImportError, AttributeError) as missing:
        return str(missing)
    return None


def list_datasets(request: ListDatasets, ctx: RequestContext, service: Service) -> None:
    found = [{**d.to_item(), "database": d.database(os.environ["STAGE"])} for d in registry().all()]
    service.answer(ctx, PLATFORM_TENANT, Status.SUCCEEDED, f"{len(found)} datasets", {"datasets": found})


def redrive(request: Redrive, ctx: RequestContext, service: Service) -> None:
    sqs = aws.client("sqs")
    dead_letters = sqs.get_queue_url(QueueName=os.environ[f"DATALAKE_STAGE_{request.stage.upper()}_DLQ"])["QueueUrl"]
    if request.stage == "a":
        target = sqs.get_queue_url(QueueName=os.environ["DATALAKE_STAGE_A_QUEUE"])["QueueUrl"]

        def deliver(message: dict[str, Any]) -> None:
            sqs.send_message(QueueUrl=target, MessageBody=message["Body"])
    else:
        pipeline = aws.table(os.environ["DATALAKE_PIPELINE_TABLE"])

        def deliver(message: dict[str, Any]) -> None:
            _pending_again(pipeline, json.loads(message["Body"]))
    moved = redrive_dead_letters(sqs, dead_letters, deliver, request.limit).delivered
    service.answer(ctx, PLATFORM_TENANT, Status.SUCCEEDED, f"{moved} stage {request.stage.upper()} messages redriven",
                   {"stage": request.stage, "redriven": moved})


def _pending_again(pipeline: Any, item: dict[str, Any]) -> None:
    """A stage B dead letter is its pending item (and the reason): it waits for the next batch again."""
    kept = {k: v for k, v in item.items() if k not in ("reason", "runId", "processingRun", "claimedAt")}
    pipeline.put_item(Item={**kept, "status": PENDING, "attempts": 0})
