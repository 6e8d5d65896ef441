"""sp over HTTP (being built: routes, state and data come with this API's part of issue 3)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from local.sandbox import Sandbox


class SpApi:
    name = "sp"
    prefix = "/sp"
    routes: list[tuple[str, str, str]] = []

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def error_body(self, status: int, code: str | None, message: str) -> Any:
        return {"code": code or str(status), "details": message}
