"""Structured JSON logging: one line per event, carrying the service and the request's correlation id.

Modules log with ``logging.getLogger(__name__)`` and pass fields as ``extra``; :func:`bind` adds fields to
every line logged inside it. Values under secret-looking keys are masked, so a token never reaches a log.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

_context: ContextVar[Mapping[str, Any]] = ContextVar("amci_log_context", default={})  # noqa: B039 (never mutated)
SECRET_KEY = re.compile(r"secret|token|password|authorization|credential|refresh|api_?key|signature", re.I)
# What gives a secret away inside free text (a library's debug line, an error message, a response body):
_SCRUBS = [
    (re.compile(r"(X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature)=[^&\s\"'\\]+", re.I), r"\1=***"),
    (re.compile(r"\bAtz[ar]\|[^\s\"'\\,&]+"), "Atz*|***"),  # Login with Amazon access and refresh tokens
    (re.compile(r"\b(Bearer)\s+[^\s\"'\\,]+", re.I), r"\1 ***"),
    # "client_secret": "...", however deeply its quotes are escaped (a JSON body inside a repr inside a message)
    (re.compile(r"((?:\\*[\"'])?[\w.-]*(?:secret|token|password|credential)[\w.-]*(?:\\*[\"'])?\s*[:=]\s*"
                r"\\*[\"'])[^\"'\\]*", re.I), r"\1***"),
    (re.compile(r"\b((?:client_secret|refresh_token|access_token|code)=)[^&\s\"']+", re.I), r"\1***"),  # forms
]
_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
MASK = "***"


def redact(value: Any) -> Any:
    """A copy of ``value`` with secret-looking keys masked and pre-signed URL signatures removed."""
    if isinstance(value, Mapping):
        return {k: MASK if SECRET_KEY.search(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return scrub(value)
    return value


def scrub(text: str) -> str:
    """``text`` with tokens, secrets and pre-signed signatures masked wherever they appear."""
    for pattern, replacement in _SCRUBS:
        text = pattern.sub(replacement, text)
    return text


@contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (e.g. ``correlation_id``, ``service``) to every line logged in this block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object; never raises, whatever the record holds."""

    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # bad %-arguments: keep the template rather than lose the line
            message = str(record.msg)
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,  # scrubbed with the rest of the line below
        }
        if self.service:
            line["service"] = self.service
        line.update(_context.get())
        line.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS and not k.startswith("_")})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(redact(line), default=str)


def configure(service: str | None = None, level: str | None = None, stream: Any = None,
              replace_all: bool = False) -> None:
    """Send all logging to ``stream`` (stdout) as JSON lines; call once, at the entry point.

    ``level`` defaults to ``LOG_LEVEL`` from the environment, else INFO. Calling again replaces our handler;
    ``replace_all`` removes every other root handler too (in Lambda, the runtime's).
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if replace_all or getattr(h, "amci", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.amci = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter(service))
    root.addHandler(handler)
    root.setLevel(level or os.environ.get("LOG_LEVEL", "INFO"))

