"""Request contracts: every message a service accepts is a typed, versioned model validated on the way in.

A rejected message gets a :class:`ContractError` whose lines name each field and what was expected, e.g.
``repeat: expected a number less than or equal to 5 (got 9)``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.logs import SECRET_KEY

C = TypeVar("C", bound="Contract")


@dataclass(frozen=True)
class FieldError:
    """One problem with one field: its dotted path, what was expected, and what was sent."""

    field: str
    expected: str
    got: Any = None

    def __str__(self) -> str:
        shown = self.got is not None and not SECRET_KEY.search(self.field)  # never echo a secret back
        got = f" (got {json.dumps(self.got, default=str)[:80]})" if shown else ""
        return f"{self.field}: expected {self.expected}{got}"


class ContractError(ValueError):
    """A message does not satisfy its contract; ``errors`` says field by field why."""

    def __init__(self, contract: str, errors: list[FieldError]) -> None:
        self.contract = contract
        self.errors = errors
        super().__init__(f"invalid {contract} request: " + "; ".join(str(e) for e in errors))

    def as_dict(self) -> dict[str, Any]:
        return {"contract": self.contract, "errors": [{"field": e.field, "expected": e.expected} for e in self.errors]}


REQUEST_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
# A tenant's id: it names stacks, rules (at most 64 characters), a schedule group and a database.
CUSTOMER_ID_PATTERN = r"^[a-z][a-z0-9-]{1,29}$"
AUTH_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # a credential set: its secret is AUTH_SECRET_PREFIX + authId


class Contract(BaseModel):
    """Base of every request contract: strict about unknown fields, immutable once parsed."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    request_type: ClassVar[str]
    version: ClassVar[int] = 1

    @classmethod
    def parse(cls: type[C], raw: Mapping[str, Any]) -> C:
        """Validate ``raw`` into this contract or raise ContractError naming every bad field."""
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ContractError(cls.request_type, [_field_error(e, cls) for e in exc.errors()]) from None

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The published JSON Schema of this contract, with its request type and version."""
        schema = cls.model_json_schema()
        schema["$id"] = f"amci:{cls.request_type}:v{cls.version}"
        return schema


def _field_error(error: Mapping[str, Any], contract: type[Contract]) -> FieldError:
    field = ".".join(str(part) for part in error["loc"]) or "(message)"
    kind = error["type"]
    if kind == "missing":
        return FieldError(field, "a value: the field is required")
    if kind == "extra_forbidden":
        allowed = ", ".join(f.alias or name for name, f in contract.model_fields.items())
        return FieldError(field, f"no such field (allowed: {allowed})")
    message = str(error["msg"])
    for prefix in ("Input should be ", "Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return FieldError(field, message[:1].lower() + message[1:], error.get("input"))


class Request(Contract):
    """A request on a service's request queue: ``requestId``, when given, is its idempotency key."""

    requestId: str | None = Field(None, pattern=REQUEST_ID_PATTERN)

    def fingerprint(self) -> str:
        """The request as sent, less its id: a redelivery has the same one; another request under the same id
        (a sender's mistake) has not."""
        sent = self.model_dump(exclude_none=True, exclude={"requestId"})
        return hashlib.sha256(json.dumps(sent, sort_keys=True, default=str).encode()).hexdigest()
