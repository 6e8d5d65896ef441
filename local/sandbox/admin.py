"""The sandbox's own endpoints, under ``/_sandbox``: recorded requests, fault rules, token expiry, credentials;
and ``/files``, where pre-signed download URLs point."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request

from local.sandbox.faults import FaultRule
from local.sandbox.files import Files
from local.sandbox.http import Reply, SandboxError

if TYPE_CHECKING:
    from local.sandbox import Sandbox

_FAULT_FIELDS = set(FaultRule.__dataclass_fields__) - {"created"}


class AdminApi:
    name = "admin"
    prefix = "/_sandbox"
    routes = [("/requests", "GET", "listRequests"), ("/faults", "GET", "listFaults"),
              ("/faults", "POST", "addFault"), ("/faults", "DELETE", "clearFaults"),
              ("/tokens/expire", "POST", "expireTokens"), ("/credentials", "GET", "getCredentials")]

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def error_body(self, status: int, code: str | None, message: str) -> dict[str, Any]:
        return {"code": code or str(status), "message": message}

    def list_requests(self, request: Request) -> Reply:
        found = self.sandbox.requests.where(api=request.args.get("api"), operation=request.args.get("operation"))
        return Reply([asdict(r) for r in found])

    def list_faults(self, request: Request) -> Reply:
        return Reply(self.sandbox.faults.describe())

    def add_fault(self, request: Request) -> Reply:
        rule = request.get_json(silent=True)
        if not isinstance(rule, dict) or "api" not in rule or set(rule) - _FAULT_FIELDS:
            raise SandboxError(400, f"expected a JSON object with 'api' and any of {sorted(_FAULT_FIELDS)}")
        try:
            added = self.sandbox.faults.add(**rule)
        except ValueError as refused:  # an outcome the operation cannot end with
            raise SandboxError(400, str(refused)) from None
        return Reply(asdict(added), status=201)

    def clear_faults(self, request: Request) -> Reply:
        self.sandbox.faults.clear()
        return Reply({"cleared": True})

    def expire_tokens(self, request: Request) -> Reply:
        return Reply({"expired": self.sandbox.lwa.expire_all()})

    def get_credentials(self, request: Request) -> Reply:
        return Reply(self.sandbox.credentials)


_ACCESS_DENIED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                  b"<Message>Request has expired</Message></Error>")


class FilesApi:
    """Downloads behind pre-signed URLs; an expired or forged URL gets S3's 403."""

    name = "files"
    prefix = "/files"
    routes = [("/<path:file_name>", "GET", "download")]

    def __init__(self, files: Files) -> None:
        self.files = files

    def error_body(self, status: int, code: str | None, message: str) -> Any:
        return {"Code": code or str(status), "Message": message}

    def download(self, request: Request, file_name: str) -> Reply:
        stored = self.files.open(file_name, dict(request.args))
        if stored is None:
            raise SandboxError(403, "Request has expired", body=_ACCESS_DENIED.decode())
        headers = {"Content-Length": str(stored.size)} if stored.size is not None else {}
        if stored.content_encoding:
            headers["Content-Encoding"] = stored.content_encoding
        return Reply(iter(stored.chunks()), headers=headers, content_type=stored.content_type)
