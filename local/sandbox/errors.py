"""The error every sandbox API answers with; each API's state raises its own kind of it, and its routes shape the
body (``error_body``). Kept apart from the HTTP server so the state modules need no web framework."""

from __future__ import annotations

from typing import Any


class SandboxError(Exception):
    """Answer with ``status`` and the API's error body (``code``, ``message``) or an exact ``body``."""

    def __init__(self, status: int, message: str, code: str | None = None, body: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.body = status, message, code, body
        self.headers = headers or {}
